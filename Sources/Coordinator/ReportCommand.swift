import ArgumentParser
import CLI
import FileIntegrity
import Foundation
import Report
import Storage
import TopModel

struct ReportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "report",
        abstract: "Write one self-contained HTML page about a model on a feature file.",
        discussion: """
            The page holds the training history (MODEL.history.csv next to the model), the confusion
            matrix, per-class precision/recall/F1, thumbnails of the misclassified images with their true
            and predicted class, and the job's settings and provenance. It needs no network. Thumbnails
            are read from --images, the root of the evaluated split's image tree (the feature file stores
            file names relative to it).
            """)

    @Option(name: .long, help: "Feature file written by `extract`.")
    var features: String

    @Option(
        name: .long,
        help: "Model written by `train`, or by `finetune` (on features extracted with `extract --model` of it).")
    var model: String

    @Option(name: .long, help: "Where to write the page (.html).")
    var output: String

    @Option(name: .long, help: "Root of the evaluated split's image tree, for thumbnails of misclassified images.")
    var images: String?

    @Option(name: .long, help: "Split to evaluate on.")
    var split = "validation"

    @Option(name: .long, help: "Longer side of a thumbnail, in pixels.")
    var thumbnailSize = 96

    @Option(name: .long, help: "List at most this many misclassified images (the most confident first).")
    var maxMisclassified = 200

    @Flag(name: .long, help: "Overwrite --output even when it exists and is not an HTML page.")
    var force = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard thumbnailSize > 0, thumbnailSize <= 1024 else {
            throw ValidationError("--thumbnail-size takes 1…1024, got \(thumbnailSize)")
        }
        guard maxMisclassified >= 0 else { throw ValidationError("--max-misclassified must not be negative") }
    }

    func run() throws {
        try OutputCheck.check(
            output, kind: "HTML page",
            inputs: [.init(features, role: "feature file"), .init(model, role: "model")]
                + (images.map {
                    [.init($0, role: "image directory")]
                } ?? []),
            overwrite: force, recognises: ReportFile.isHTMLPage)
        common.bootstrapLogging()
        common.chooseBLASKernels()
        if let images {
            var isDirectory: ObjCBool = false
            guard FileManager.default.fileExists(atPath: images, isDirectory: &isDirectory), isDirectory.boolValue
            else { throw ReportedFailure("\(images): no such directory; expected the root of the image tree") }
        }
        let loaded = try ModelArgument(model)
        var classifier = ReportClassifier.topModel(loaded.top)
        if loaded.fineTuned != nil {
            classifier.kind =
                "fine-tuned model (VGG16 with block5 fine-tuned together with the top model; features extracted "
                + "with its own convolution weights)"
        }
        let file = try FeatureFile.open(features)
        var options = ReportContent.Options()
        options.split = split
        options.imagesDirectory = images
        options.thumbnailSide = thumbnailSize
        options.maxMisclassified = maxMisclassified
        let progress = ProgressRenderer()
        let content = try ReportContent.make(
            featureFile: file, modelPath: model, classifier: classifier, options: options,
            progress: progress.sink)
        progress.finish()
        try ReportFile.write(ReportHTML.render(content), to: output)
        let evaluation = content.evaluation
        print(
            "\(evaluation.count) rows, accuracy \(String(format: "%.4f", evaluation.accuracy)), "
                + "\(content.misclassifiedCount) misclassified")
        print("wrote \(output)")
    }
}
