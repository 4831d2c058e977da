import ArgumentParser
import CLI
import DataCheck
import Foundation

struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "Check image trees before training: counts, unreadable/corrupt/duplicate/leaked images.",
        discussion: """
            Each DIR is one split (e.g. data/train data/validation) holding one directory per class, as
            Keras' flow_from_directory reads it. Exits 1 when anything needs attention.
            """)

    @Argument(help: "Split directories, each with one sub-directory per class.")
    var directories: [String]

    @Flag(name: .long, help: "Print the report as one JSON object.")
    var json = false

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.bootstrapLogging()
        let progress = ProgressRenderer()
        let report = try DataCheck().run(directories: directories, progress: progress.sink)
        progress.finish()
        if json {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes]
            print(String(decoding: try encoder.encode(report), as: UTF8.self))
        } else {
            print(report.text())
        }
        if report.needsAttention { throw ExitCode(1) }
    }
}
