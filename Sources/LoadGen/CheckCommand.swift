import ArgumentParser
import CLI
import Foundation
import Storage

/// `bottleneck-loadgen check OUTPUT`: whether a feature file written from simulated workers holds, in row r of a
/// split, `Float(r % 4096)` everywhere (the split had no skipped image, so row r is the image at split index r).
struct CheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "check",
        abstract: "Check a feature file computed by simulated workers: row r holds Float(r % 4096) everywhere.",
        discussion: "Prints one JSON line per split; exit status 1 when a row is wrong or an image was skipped.")

    @Argument(help: "The feature file.")
    var output: String

    @Option(help: "Rows read at a time.")
    var chunkRows = 4096

    func run() throws {
        let file = try FeatureFile.open(output)
        var failures: [String] = []
        for name in file.splitNames {
            let split = try file.split(name)
            let skipped = try split.skipped().count
            let size = split.featureSize
            var wrong = 0
            var firstWrong: Int?
            var start = 0
            while start < split.count {
                let end = min(split.count, start + chunkRows)
                let values = try split.readFeatures(rows: start..<end)
                for row in start..<end {
                    let expected = Float(row % 4096)
                    let base = (row - start) * size
                    if values[base..<(base + size)].contains(where: { $0 != expected }) {
                        wrong += 1
                        if firstWrong == nil { firstWrong = row }
                    }
                }
                start = end
            }
            var line: [String: Any] = [
                "event": "check", "split": name, "rows": split.count, "skipped": skipped, "wrong_rows": wrong,
            ]
            if let firstWrong { line["first_wrong_row"] = firstWrong }
            let data = try JSONSerialization.data(withJSONObject: line, options: [.sortedKeys])
            emit(String(decoding: data, as: UTF8.self))
            if wrong > 0 || skipped > 0 {
                failures.append("\(name): \(wrong) wrong row(s), \(skipped) skipped image(s)")
            }
        }
        if !failures.isEmpty { throw ReportedFailure("\(output): " + failures.joined(separator: "; ")) }
    }
}
