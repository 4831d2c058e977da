import ArgumentParser
import BLAS
import CLI
import Extraction
import FileIntegrity
import Foundation
import ImageInput
import Logging
import Storage
import TopModel
import VGG16

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Loss, accuracy, per-class precision/recall/F1 and the confusion matrix of a model on a split.",
        discussion: """
            On a feature file (--features), or on a labelled image tree (--images, one directory per class, \
            the model's classes): its features are then extracted on the way by worker processes, as `extract` \
            does, into a temporary file that is removed afterwards. The model is a top model (MODEL.h5 from \
            `train`, with the VGG16 weights its features came from) or a fine-tuned model (FINETUNED.h5 from \
            `finetune`, which carries its own convolution weights).
            """)

    @Option(name: .long, help: "Feature file written by `extract`.")
    var features: String?

    @Option(name: .long, help: "Labelled image tree (one directory per class) to evaluate on instead of --features.")
    var images: String?

    @Option(name: .long, help: "Model written by `train` or by `finetune`.")
    var model: String

    @Option(
        name: .long,
        help: """
            With --images and a top model: the VGG16 weights its features came from (default: Keras' cache file, \
            fetched).
            """)
    var weights: String?

    @Option(
        name: .long, parsing: .unconditional,
        help: "With --images: local worker processes computing the features (default: one per core).")
    var workers: Int?

    @Option(name: .long, help: "With --images: weights cache directory of the local workers.")
    var cacheDir: String?

    @Option(name: .long, help: "Split of the feature file to evaluate on (default: validation).")
    var split: String?

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Option(name: .long, help: "Also draw the confusion matrix as an SVG heatmap here.")
    var plot: String?

    @Flag(name: .long, help: "Overwrite --plot even when it exists and is not an SVG file.")
    var force = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if (features == nil) == (images == nil) { throw ValidationError("give either --features or --images") }
        if images != nil, split != nil { throw ValidationError("--split chooses a split of --features") }
        if features != nil, weights != nil || workers != nil || cacheDir != nil {
            throw ValidationError("--weights, --workers and --cache-dir go with --images")
        }
        if let workers, workers < 1 { throw ValidationError("--workers must be at least 1") }
    }

    func run() throws {
        if let plot {
            let input: OutputCheck.Input =
                features.map { .init($0, role: "feature file") } ?? .init(images!, role: "image directory")
            try OutputCheck.check(
                plot, role: "plot", kind: "SVG file", inputs: [input, .init(model, role: "model")], overwrite: force,
                recognises: Evaluation.isSVGFile)
        }
        common.bootstrapLogging()
        common.chooseBLASKernels()
        let loaded = try ModelArgument(model)
        let evaluation: Evaluation
        if let features {
            let file = try FeatureFile.open(features)
            let differences = loaded.top.provenance.differences(from: file.attributes)
            if !differences.isEmpty {
                throw ReportedFailure(
                    "\(model) was trained on features made differently from \(features): "
                        + differences.joined(separator: "; "))
            }
            evaluation = try loaded.top.evaluate(featureFile: file, split: split ?? "validation")
        } else {
            evaluation = try evaluateImages(images!, loaded)
        }
        if let plot {
            do { try AtomicFile.write(Array(evaluation.confusionMatrixSVG.utf8), to: plot) } catch {
                throw ReportedFailure("\(error)")
            }
        }
        if json {
            print(String(decoding: try evaluation.jsonData(), as: UTF8.self))
        } else {
            print(evaluation.report)
            if let plot { print("confusion matrix drawn in \(plot)") }
        }
    }

    /// Extracts the tree's features with the model's weights and image settings by the distributed extraction
    /// (local workers) into a temporary directory of this run, then evaluates on them. The directory is removed
    /// whatever happens.
    private func evaluateImages(_ images: String, _ loaded: ModelArgument) throws -> Evaluation {
        let scan = try DirectoryScan.scan(directory: images)
        guard scan.classNames == loaded.top.classNames else {
            throw ReportedFailure(
                "\(images) has classes [\(scan.classNames.joined(separator: ", "))], \(model) "
                    + "[\(loaded.top.classNames.joined(separator: ", "))]; evaluate on a tree of the model's classes")
        }
        let (settings, layer) = try loaded.imageSettings()
        let weightsPath = try loaded.weightsPath(weights)
        var template = Array((FileManager.default.temporaryDirectory.path + "/bottleneck-evaluate-XXXXXX").utf8CString)
        guard let made = mkdtemp(&template) else {
            throw ReportedFailure("cannot create a temporary directory: \(String(cString: strerror(errno)))")
        }
        let directory = String(cString: made)
        defer { try? FileManager.default.removeItem(atPath: directory) }
        let output = directory + "/features.h5"
        let progress = ProgressRenderer()
        var request = ExtractionRequest(
            trainDirectory: images, weightsPath: weightsPath, outputPath: output, settings: settings, layer: layer,
            workers: workers, progress: progress.sink, cacheDirectory: cacheDir)
        // The model's features were computed at its recorded precision; so are the images'.
        guard let precision = ConvPrecision(rawValue: loaded.top.provenance.precision) else {
            throw ReportedFailure("\(model): unknown precision \(loaded.top.provenance.precision) in its attributes")
        }
        if precision == .bf16 { try CPUFeatures.requireBF16() }
        request.precision = precision
        // SIGINT / SIGTERM stop the extraction (its workers are told), so that the temporary directory is removed.
        let stop = ExtractionStop()
        request.stop = stop
        let signals = InterruptSignals { stop.request(signal: $0) }
        defer { signals.cancel() }
        let summary: ExtractionSummary
        do { summary = try extractDistributed(request, logger: Logger(label: "bottleneck.evaluate")) } catch {
            progress.finish()
            throw error
        }
        progress.finish()
        if summary.skipped > 0 {
            progress.message("\(summary.skipped) image(s) of \(images) could not be read and are not evaluated")
        }
        var evaluation = try loaded.top.evaluate(featureFile: try FeatureFile.open(output), split: "train")
        evaluation.source = images
        return evaluation
    }
}
