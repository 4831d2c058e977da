import ArgumentParser
import CLI
import Export
import Foundation
import Storage

/// `export --format`: what `export` writes.
enum ExportFormat: String, CaseIterable, ExpressibleByArgument {
    /// NumPy arrays, class and file-name lists.
    case npy
    /// A features-free table per split.
    case csv
}

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

    @Option(name: .long, help: "What to write.")
    var format = ExportFormat.npy

    @Option(name: .long, help: "Output directory.")
    var output: String

    @Flag(name: .long, help: "Labels as one-hot float32 (N, C), as Keras' to_categorical gives (npy only).")
    var oneHot = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if oneHot, format != .npy { throw ValidationError("--one-hot applies to --format npy") }
    }

    func run() throws {
        common.bootstrapLogging()
        let file = try FeatureFile.open(features)
        let written: [String]
        switch format {
        case .csv:
            written = try FeatureExport.csv(featureFile: file, to: output)
        case .npy:
            let progress = ProgressRenderer()
            written = try FeatureExport.npy(featureFile: file, to: output, oneHot: oneHot, progress: progress.sink)
            progress.finish()
        }
        for path in written { print("wrote \(path)") }
    }
}
