import ArgumentParser
import CLI
import FileIntegrity
import Foundation
import Storage
import TopModel

struct EvaluateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "evaluate",
        abstract: "Loss, accuracy, per-class precision/recall/F1 and the confusion matrix of a model on a split.")

    @Option(name: .long, help: "Feature file written by `extract`.")
    var features: String

    @Option(name: .long, help: "Model written by `train`.")
    var model: String

    @Option(name: .long, help: "Split to evaluate on.")
    var split = "validation"

    @Flag(name: .long, help: "Print one JSON object.")
    var json = false

    @Option(name: .long, help: "Also draw the confusion matrix as an SVG heatmap here.")
    var plot: String?

    @Flag(name: .long, help: "Overwrite --plot even when it exists and is not an SVG file.")
    var force = false

    @OptionGroup var common: CommonOptions

    func run() throws {
        if let plot {
            try OutputCheck.check(
                plot, role: "plot", kind: "SVG file",
                inputs: [.init(features, role: "feature file"), .init(model, role: "model")], overwrite: force,
                recognises: Evaluation.isSVGFile)
        }
        common.bootstrapLogging()
        common.chooseBLASKernels()
        let topModel = try TopModel.load(model)
        let file = try FeatureFile.open(features)
        let differences = topModel.provenance.differences(from: file.attributes)
        if !differences.isEmpty {
            throw ReportedFailure(
                "\(model) was trained on features made differently from \(features): "
                    + differences.joined(separator: "; "))
        }
        let evaluation = try topModel.evaluate(featureFile: file, split: split)
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
}
