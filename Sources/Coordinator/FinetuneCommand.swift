import ArgumentParser
import Augmentation
import CLI
import DistributedTuning
import FineTuning
import Foundation
import ImageInput
import Logging
import TopModel
import VGG16
import Wire

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune VGG16's block5 together with a trained top model on augmented images.",
        discussion: """
            The Keras recipe's second script: the layers up to block4_pool frozen, block5 and the top model \
            trained with SGD and momentum on images augmented on the fly. Image size, preprocessing and \
            interpolation come from the top model, which must have been trained on block5_pool features of \
            the same weights. Writes FINETUNED.h5 in tf_keras' save_weights layout for \
            Model(base.input, top(base.output)), and the history next to it. A checkpoint \
            (OUTPUT.checkpoint.h5) is written after each epoch; running the same command again resumes from \
            it. With --workers or --bind, the frozen pass and block5 + top forward/backward of each batch's \
            chunks run on worker processes; the model is the same bytes for any number of workers, and equal \
            to the one-process run with the same --chunk-size.
            """)

    @Option(name: .long, help: "Training image tree (one directory per class).")
    var train: String

    @Option(name: .long, help: "Validation image tree, with the training tree's classes.")
    var validation: String?

    @Option(name: .long, help: "VGG16 weights the top model's features were extracted with.")
    var weights: String

    @Option(name: .long, help: "Top model written by `train` on block5_pool features.")
    var topModel: String

    @Option(name: .long, help: "Where to write the fine-tuned model (.h5).")
    var output: String

    @Option(name: .long, help: "Epochs.")
    var epochs = 50

    @Option(name: .long, help: "Images per batch.")
    var batchSize = 32

    @Option(name: .long, help: "SGD learning rate.")
    var learningRate = 1e-4

    @Option(name: .long, help: "SGD momentum.")
    var momentum = 0.9

    @Option(name: .long, help: "First trainable layer; the block5 layers before it stay frozen.")
    var trainableFrom = TrainableFrom.block5_conv1

    @Option(
        name: .long,
        help: """
            Augmentation, Keras' ImageDataGenerator names: rotation, width-shift, height-shift, shear (degrees), \
            zoom, horizontal-flip, vertical-flip, fill-mode, cval; or 'none'. An integer shift is whole pixels, as \
            Keras treats an int.
            """)
    var augment = "shear=0.2,zoom=0.2,horizontal-flip"

    @Option(name: .long, help: "Seed of the shuffling, augmentation and dropout; the same seed gives the same model.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Stop after this many epochs without a better val_loss, and keep the best weights.")
    var earlyStopping: Int?

    @Option(
        parsing: .unconditional,
        help: "Images per gradient chunk, the unit of work; part of what decides the model's bytes (not --workers).")
    var chunkSize = 8

    @OptionGroup var distribution: TuningWorkerOptions

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if chunkSize < 1 || chunkSize > 4096 { throw ValidationError("--chunk-size must be 1...4096") }
        try distribution.validate()
        do { _ = try AugmentationSettings(parsing: augment) } catch let error as AugmentationError {
            throw ValidationError("--augment \(error.message)")
        }
        if earlyStopping != nil, validation == nil {
            throw ValidationError("--early-stopping watches val_loss: give --validation")
        }
    }

    func run() throws {
        common.bootstrapLogging()
        common.chooseBLASKernels()
        var options = FineTuningOptions()
        options.epochs = epochs
        options.batchSize = batchSize
        options.learningRate = learningRate
        options.momentum = momentum
        options.augmentation = try AugmentationSettings(parsing: augment)
        options.seed = seed
        options.earlyStoppingPatience = earlyStopping
        options.chunkSize = chunkSize
        options.frozenBlockLayers = trainableFrom.frozenBlockLayers
        let top = try TopModel.load(topModel)
        let vgg = try VGG16Weights.load(path: weights)
        guard vgg.sha256 == top.provenance.weightsSHA256 else {
            throw FineTuningError.structure(
                "\(weights) is not the weights file \(topModel) was trained with (SHA-256 \(vgg.sha256), "
                    + "expected \(top.provenance.weightsSHA256))")
        }
        let tuner = try FineTuner(weights: vgg, topModel: top, options: options)
        let p = top.provenance
        guard let interpolation = Interpolation(rawValue: p.interpolation) else {
            throw FineTuningError.structure("\(topModel): unknown interpolation '\(p.interpolation)'")
        }
        let trainScan = try DirectoryScan.scan(directory: train)
        guard trainScan.classNames == top.classNames else {
            throw FineTuningError.structure(
                "\(train) has classes [\(trainScan.classNames.joined(separator: ", "))], the top model "
                    + "[\(top.classNames.joined(separator: ", "))]")
        }
        let trainImages = FineTuningImages.load(
            trainScan, height: p.imageHeight, width: p.imageWidth, interpolation: interpolation)
        let validationImages = try validation.map {
            FineTuningImages.load(
                try DirectoryScan.scan(directory: $0, classes: top.classNames), height: p.imageHeight,
                width: p.imageWidth, interpolation: interpolation)
        }
        for (filename, reason) in trainImages.skipped + (validationImages?.skipped ?? []) {
            emit("skipped \(filename): \(reason)")
        }
        emit(
            "fine-tuning \(top.classNames.count) classes on \(trainImages.count) images"
                + (validationImages.map { ", validating on \($0.count)" } ?? "")
                + ", \(p.imageHeight)×\(p.imageWidth), augmentation \(options.augmentation), "
                + "sgd(lr=\(learningRate), momentum=\(momentum))")
        var source: WorkerGradients?
        if distribution.isDistributed {
            let logger = Logger(label: "bottleneck.finetune")
            var setup = TuningWorkersSetup(
                weightsPath: weights, weightsSHA256: vgg.sha256, imageHeight: p.imageHeight, imageWidth: p.imageWidth,
                interpolation: p.interpolation, preprocessing: p.preprocess,
                frozenFeatureCount: tuner.frozenFeatureCount,
                tuning: TuningSpec(
                    augmentation: options.augmentation.description, seed: seed, dropoutRate: options.dropoutRate,
                    topInputs: top.weights.inputs, topHidden: top.weights.hidden, classes: top.weights.classes,
                    cacheFrozen: options.augmentation.isNone, frozenBlockLayers: options.frozenBlockLayers),
                localWorkers: distribution.workers ?? 0)
            setup.bindEndpoints = distribution.bind
            setup.insecure = distribution.curve.insecure
            setup.workerTimeout = distribution.workerTimeout
            setup.cacheDirectory = distribution.cacheDir
            setup.curve = try distribution.curve.serverSetup()
            source = try WorkerGradients(setup, logger: logger)
        }
        defer { source?.close() }
        let progress = ProgressRenderer()
        let checkpoint = output + ".checkpoint.h5"
        let (model, history) = try tuner.run(
            train: trainImages, validation: validationImages, checkpointPath: checkpoint, source: source,
            progress: progress.sink
        ) { record in progress.line(TrainingText.epochLine(record, epochs: epochs)) }
        progress.finish()
        if let traffic = source?.traffic {
            source?.close()
            emit(TuningTrafficText.summary(traffic))
        }
        try model.save(to: output)
        let files = try history.write(nextToModel: output)
        try? FileManager.default.removeItem(atPath: checkpoint)
        print("wrote \(output), \(files.csv), \(files.svg)")
    }
}

/// `finetune --trainable-from`: the first layer that is trained.
enum TrainableFrom: String, CaseIterable, ExpressibleByArgument {
    case block5_conv1, block5_conv2, block5_conv3

    /// Conv layers of block5 before this one, kept frozen.
    var frozenBlockLayers: Int {
        switch self {
        case .block5_conv1: 0
        case .block5_conv2: 1
        case .block5_conv3: 2
        }
    }
}

/// `finetune`'s worker options, as `extract`'s: local workers, endpoints for remote ones, CURVE.
struct TuningWorkerOptions: ParsableArguments {
    @Option(
        parsing: .unconditional,
        help: """
            Local worker processes computing the chunks (each on one core); 0 with --bind: remote workers only. \
            Without --workers and --bind, everything runs in this process.
            """)
    var workers: Int?

    @Option(
        help: """
            Also accept remote workers here, e.g. tcp://0.0.0.0:5555 (with --curve-key, or --insecure) or \
            ipc:///tmp/b.sock (repeatable).
            """)
    var bind: [String] = []

    @Option(parsing: .unconditional, help: "Seconds of silence after which a worker's chunks go to others.")
    var workerTimeout: Double = 10

    @Option(help: "Weights cache directory of the local workers.")
    var cacheDir: String?

    @OptionGroup var curve: CurveOptions

    var isDistributed: Bool { workers != nil || !bind.isEmpty }

    func validate() throws {
        if let workers, workers < 0 { throw ValidationError("--workers must be 0 or more") }
        if workers == 0 && bind.isEmpty { throw ValidationError("--workers 0 needs --bind ENDPOINT") }
        if !(workerTimeout > 0) { throw ValidationError("--worker-timeout must be positive") }
        try curve.validate(binding: bind)
    }
}

/// The closing line of a distributed `finetune`: what moved through the coordinator's socket.
enum TuningTrafficText {
    static func summary(_ t: TuningTraffic) -> String {
        func mb(_ bytes: Int) -> String { String(format: "%.2f MB", Double(bytes) / 1e6) }
        let steps = max(1, t.steps)
        return "traffic over \(t.steps) steps, \(t.chunks) chunks (\(t.reassigned) reassigned, "
            + "\(t.frozenAhead) nodes' frozen pass ahead of their weights): weights down "
            + "\(mb(t.weightsDown)) (\(mb(t.weightsDown / steps))/step), gradients up \(mb(t.gradientsUp)) "
            + "(\(mb(t.gradientsUp / steps))/step), images down \(mb(t.imagesDown)), other down \(mb(t.otherDown)), "
            + "other up \(mb(t.otherUp)); waited \(String(format: "%.2f", t.waitSeconds)) s for gradients and "
            + "\(String(format: "%.2f", t.validationSeconds)) s for validation; worker "
            + "compute summed over workers: frozen pass \(String(format: "%.2f", t.workerFrozenSeconds)) s, block5 + top "
            + "\(String(format: "%.2f", t.workerBlockSeconds)) s"
    }
}
