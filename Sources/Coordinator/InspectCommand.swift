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
            Keras' flow_from_directory reads it; or each --list FILE is one split, as for extract --train-list
            (a listed file that is missing is reported unreadable). Exits 1 when anything needs attention.
            """)

    @Argument(help: "Split directories, each with one sub-directory per class.")
    var directories: [String] = []

    @Option(
        name: .customLong("list"),
        help: "A split as a CSV image list ('filename' and 'class' columns), instead of directories (repeatable).")
    var lists: [String] = []

    @Option(help: "The directory the lists' filenames are relative to (default: they are paths as they stand).")
    var directory: String?

    func validate() throws {
        if directories.isEmpty == lists.isEmpty {
            throw ValidationError("give split directories or --list FILE (one or the other)")
        }
        if directory != nil && lists.isEmpty { throw ValidationError("--directory goes with --list") }
    }

    @Flag(name: .long, help: "Print the report as one JSON object.")
    var json = false

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.bootstrapLogging()
        let progress = ProgressRenderer()
        let report =
            lists.isEmpty
            ? try DataCheck().run(directories: directories, progress: progress.sink)
            : try DataCheck().run(lists: lists, directory: directory, progress: progress.sink)
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
