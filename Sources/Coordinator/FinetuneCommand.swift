import ArgumentParser
import Augmentation
import CLI
import FineTuning
import Foundation
import ImageInput
import TopModel
import VGG16

struct FinetuneCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "finetune",
        abstract: "Fine-tune VGG16's block5 together with a trained top model on augmented images (one process).",
        discussion: """
            The Keras recipe's second script: the layers up to block4_pool frozen, block5 and the top model \
            trained with SGD and momentum on images augmented on the fly. Image size, preprocessing and \
            interpolation come from the top model, which must have been trained on block5_pool features of \
            the same weights. Writes FINETUNED.h5 in tf_keras' save_weights layout for \
            Model(base.input, top(base.output)), and the history next to it. A checkpoint \
            (OUTPUT.checkpoint.h5) is written after each epoch; running the same command again resumes from \
            it. This version runs in this process only (no workers yet).
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

    @Option(name: .long, help: "First trainable layer (only block5_conv1 for now).")
    var trainableFrom = TrainableFrom.block5_conv1

    @Option(
        name: .long,
        help: """
            Augmentation, Keras' ImageDataGenerator names: rotation, width-shift, height-shift, shear (degrees), \
            zoom, horizontal-flip, vertical-flip, fill-mode, cval; or 'none'.
            """)
    var augment = "shear=0.2,zoom=0.2,horizontal-flip"

    @Option(name: .long, help: "Seed of the shuffling, augmentation and dropout; the same seed gives the same model.")
    var seed: UInt64 = 0

    @Option(name: .long, help: "Stop after this many epochs without a better val_loss, and keep the best weights.")
    var earlyStopping: Int?

    @OptionGroup var common: CommonOptions

    func validate() throws {
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
        let progress = ProgressRenderer()
        let checkpoint = output + ".checkpoint.h5"
        let (model, history) = try tuner.run(
            train: trainImages, validation: validationImages, checkpointPath: checkpoint, progress: progress.sink
        ) { record in progress.line(TrainingText.epochLine(record, epochs: epochs)) }
        progress.finish()
        try model.save(to: output)
        let files = try history.write(nextToModel: output)
        try? FileManager.default.removeItem(atPath: checkpoint)
        print("wrote \(output), \(files.csv), \(files.svg)")
    }
}

/// `finetune --trainable-from`: the first layer that is trained.
enum TrainableFrom: String, CaseIterable, ExpressibleByArgument {
    case block5_conv1
}
