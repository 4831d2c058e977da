import ArgumentParser
import CLI
import FileIntegrity
import Foundation
import Storage
import TopModel

struct TrainCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "train",
        abstract:
            "Train the softmax top model (Flatten → Dense 256 ReLU → Dropout 0.5 → Dense softmax) on a feature file.",
        discussion: """
            Validates after each epoch on the file's validation split when it has one. Writes MODEL.h5 in
            Keras' HDF5 weights layout (model.load_weights() works on the same Sequential) with the class
            names and feature provenance, and the history next to it as MODEL.history.csv and .svg.
            """)

    @Option(name: .long, help: "Feature file written by `extract`.")
    var features: String

    @Option(name: .long, help: "Where to write the model (.h5).")
    var output: String

    @Option(name: .long, parsing: .unconditional, help: "Epochs.")
    var epochs = 50

    @Option(name: .long, parsing: .unconditional, help: "Rows per batch.")
    var batchSize = 100

    @Flag(name: .long, help: "Overwrite --output even when it exists and is not a model file.")
    var force = false

    @Option(name: .long, help: "Optimizer, with Keras' defaults.")
    var optimizer = OptimizerName.sgd

    @Option(
        name: .long, parsing: .unconditional,
        help: "Learning rate (default: Keras' for the optimizer: sgd 0.01, rmsprop/adam 0.001).")
    var learningRate: Double?

    @Option(name: .long, parsing: .unconditional, help: "SGD momentum.")
    var momentum: Double = 0

    @Flag(name: .long, help: "SGD with Nesterov momentum.")
    var nesterov = false

    @Option(name: .long, help: "Seed of the initialisation, shuffling and dropout; the same seed gives the same model.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "'balanced' weighs each class by n_samples / (n_classes · count).")
    var classWeight: ClassWeightName?

    @Option(
        name: .long, parsing: .unconditional,
        help: "Stop after this many epochs without a better val_loss, and keep the best weights.")
    var earlyStopping: Int?

    @Option(name: .long, help: "Split to train on.")
    var split = "train"

    @Flag(name: .long, help: "Train without validation even when the file has a validation split.")
    var noValidation = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if epochs < 1 { throw ValidationError("--epochs \(epochs) is out of range: at least 1") }
        if batchSize < 1 { throw ValidationError("--batch-size \(batchSize) is out of range: at least 1") }
        if let learningRate, !(learningRate > 0 && learningRate.isFinite) {
            throw ValidationError("--learning-rate \(learningRate) is out of range: a positive number")
        }
        if !(momentum >= 0 && momentum.isFinite) {
            throw ValidationError("--momentum \(momentum) is out of range: 0 or more")
        }
        if let earlyStopping, earlyStopping < 0 {
            throw ValidationError("--early-stopping \(earlyStopping) is out of range: 0 or more")
        }
        if momentum != 0 || nesterov, optimizer != .sgd {
            throw ValidationError("--momentum and --nesterov apply to --optimizer sgd")
        }
    }

    func run() throws {
        let inputs = [OutputCheck.Input(features, role: "feature file")]
        try OutputCheck.check(
            output, kind: "top model file", inputs: inputs, overwrite: force, recognises: TopModel.isModelFile)
        let historyPaths = TrainingHistory.paths(nextToModel: output)
        for path in [historyPaths.csv, historyPaths.svg] {
            try OutputCheck.check(
                path, role: "training history", kind: "training history", inputs: inputs, overwrite: true,
                recognises: { _ in true })
        }
        common.bootstrapLogging()
        common.chooseBLASKernels()
        var options = TrainingOptions()
        options.epochs = epochs
        options.batchSize = batchSize
        options.seed = seed
        options.earlyStoppingPatience = earlyStopping
        if classWeight == .balanced { options.classWeighting = .balanced }
        options.optimizer = try OptimizerConfiguration.named(optimizer.rawValue, learningRate: learningRate)
        if case .sgd(let lr, _, _) = options.optimizer {
            options.optimizer = .sgd(learningRate: lr, momentum: momentum, nesterov: nesterov)
        }
        let file = try FeatureFile.open(features)
        let train = try file.split(split)
        emit(
            "training on \(features): \(train.count) rows of \(train.featureShape), \(file.classNames.count) classes, "
                + options.optimizer.summary)
        let progress = ProgressRenderer()
        let result = try TopModelTrainer.train(
            featureFile: file, trainSplit: split, validationSplit: noValidation ? .none : .automatic, options: options,
            onEpoch: { record in progress.line(TrainingText.epochLine(record, epochs: epochs)) },
            onBatch: { batch in progress.update(batch.report, text: TrainingText.progressLine(batch)) })
        progress.finish()
        try result.model.save(to: output)
        let history = try result.history.write(nextToModel: output)
        print(TrainingText.summary(result))
        print("wrote \(output), \(history.csv), \(history.svg)")
    }
}
