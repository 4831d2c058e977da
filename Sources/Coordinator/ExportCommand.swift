import ArgumentParser
import Export
import Foundation
import Storage

struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a feature file's splits as NumPy .npy files (or a CSV table) for Python scripts.",
        discussion: """
            --format npy writes, per split, bottleneck_features_<split>.npy (float32 (N, h, w, c)),
            labels_<split>.npy (int32 (N,); with --one-hot float32 (N, C)) and filenames_<split>.txt, and
            class_names.txt. --format csv writes <split>.csv with filename,class,label (no features).
            The directory is created when missing; each file appears only when whole.
            """)

    @Option(name: .long, help: "Feature file written by `extract`.")
    var features: String

    @Option(name: .long, help: "npy or csv.")
    var format = "npy"

    @Option(name: .long, help: "Output directory.")
    var output: String

    @Flag(name: .long, help: "Labels as one-hot float32 (N, C), as Keras' to_categorical gives (npy only).")
    var oneHot = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard ["npy", "csv"].contains(format) else {
            throw ValidationError("--format takes npy or csv, got '\(format)'")
        }
        if oneHot, format != "npy" { throw ValidationError("--one-hot applies to --format npy") }
    }

    func run() throws {
        common.bootstrapLogging()
        do {
            let file = try FeatureFile.open(features)
            let written: [String]
            if format == "csv" {
                written = try FeatureExport.csv(featureFile: file, to: output)
            } else {
                var line: ProgressLine?
                var currentFile = ""
                written = try FeatureExport.npy(featureFile: file, to: output, oneHot: oneHot) { progress in
                    if progress.file != currentFile {
                        line?.finish()
                        currentFile = progress.file
                        line = ProgressLine(label: (progress.file as NSString).lastPathComponent, unit: "rows")
                    }
                    line?.update(done: progress.rowsDone, total: progress.rows)
                }
                line?.finish()
            }
            for path in written { print("wrote \(path)") }
        } catch let error as StorageError {
            throw ReportedFailure(error.description)
        } catch let error as ExportError {
            throw ReportedFailure(error.description)
        }
    }
}
