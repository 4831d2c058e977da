import Augmentation
import FineTuning
import Foundation
import HDF5
import ImageInput
import TestSupport
import Testing
import TopModel
import VGG16

/// The single-process trainer: against tf_keras' three steps, checkpoints and resumption, FINETUNED.h5's layout.
@Suite("Fine-tuning trainer")
struct FineTunerTests {
    static let fixturePath = fixturesDirectory() + "/keras/finetune.h5"
    static let layoutPath = fixturesDirectory() + "/keras/finetune_keras_save_weights.h5"
    static let weightsPath = fixturesDirectory() + "/keras/weights/notop-official.h5"

    /// The fixture's images, labels and starting top model (48×48, caffe, nearest).
    static func fixture() throws -> (images: FineTuningImages, top: TopModel, weights: VGG16Weights) {
        let file = try HDF5File.open(fixturePath)
        defer { file.close() }
        func read(_ name: String) throws -> [Float] {
            try file.root.dataset("finetune/initial/\(name)").read(Float.self)
        }
        let (k1, b1, k2, b2) = try (
            read("dense/kernel"), read("dense/bias"), read("dense_1/kernel"), read("dense_1/bias")
        )
        let weights = try VGG16Weights.load(path: weightsPath)
        let top = try TopModel(
            classNames: ["a", "b", "c"], featureShape: [1, 1, 16],
            provenance: FeatureProvenance(
                featureLayer: "block5_pool", imageHeight: 48, imageWidth: 48, preprocess: "caffe",
                interpolation: "nearest", weightsSHA256: weights.sha256),
            weights: try TopModelWeights(
                inputs: 16, hidden: b1.count, classes: 3, hiddenKernel: k1, hiddenBias: b1, outputKernel: k2,
                outputBias: b2))
        let labels = try file.root.dataset("finetune/labels").read(Int32.self)
        let images = FineTuningImages(
            height: 48, width: 48, pixels: try file.root.dataset("finetune/pixels").read(UInt8.self), labels: labels,
            indices: Array(labels.indices))
        return (images, top, weights)
    }

    static var kerasSteps: FineTuningOptions {
        var options = FineTuningOptions()
        options.epochs = 3
        options.batchSize = 4
        options.augmentation = .none
        options.dropoutRate = 0
        options.shuffle = false
        return options
    }

    @Test("three epochs of one batch, without augmentation, dropout or shuffling, end within 1e-4 of tf_keras")
    func matchesKerasSteps() throws {
        let (images, top, weights) = try Self.fixture()
        let tuner = try FineTuner(weights: weights, topModel: top, options: Self.kerasSteps)
        var losses: [Double] = []
        let (model, history) = try tuner.run(train: images, validation: nil, checkpointPath: nil) {
            losses.append($0.loss)
        }
        #expect(history.records.map(\.epoch) == [1, 2, 3])
        let file = try HDF5File.open(Self.fixturePath)
        defer { file.close() }
        let kerasLosses = try file.root.dataset("finetune/train_on_batch_loss").read(Float.self)
        for (ours, theirs) in zip(losses, kerasLosses) { #expect(abs(ours - Double(theirs)) < 1e-4 * Double(theirs)) }
        let ours: [(String, [Float])] =
            model.convLayers.suffix(3).flatMap { [($0.name + "/kernel", $0.kernel), ($0.name + "/bias", $0.bias)] }
            + [
                ("dense/kernel", model.top.weights.hiddenKernel), ("dense/bias", model.top.weights.hiddenBias),
                ("dense_1/kernel", model.top.weights.outputKernel), ("dense_1/bias", model.top.weights.outputBias),
            ]
        for (name, values) in ours {
            let expected = try file.root.dataset("finetune/step3/\(name)").read(Float.self)
            let worst = zip(values, expected).map { abs($0 - $1) }.max() ?? .infinity
            #expect(worst < 1e-4, "\(name): \(worst)")
        }
        #expect(Array(model.convLayers.prefix(10).map(\.kernel)) == weights.layers.prefix(10).map(\.kernel))
    }

    @Test("a run resumed from its epoch-1 checkpoint ends with the same bytes as an uninterrupted run")
    func resumesBitIdentically() throws {
        let (images, top, weights) = try Self.fixture()
        let directory = try ImageFiles.temporaryDirectory("finetune-resume")
        defer { ImageFiles.removeTree(directory) }
        var options = FineTuningOptions()
        options.epochs = 3
        options.batchSize = 3
        options.augmentation = try AugmentationSettings(parsing: "rotation=20,shear=5,zoom=0.2,horizontal-flip")
        options.seed = 11
        let whole = try FineTuner(weights: weights, topModel: top, options: options).run(
            train: images, validation: images, checkpointPath: directory + "/whole.ckpt"
        ).model
        var first = options
        first.epochs = 1
        _ = try FineTuner(weights: weights, topModel: top, options: first).run(
            train: images, validation: images, checkpointPath: directory + "/resumed.ckpt")
        var epochs: [Int] = []
        let (resumed, history) = try FineTuner(weights: weights, topModel: top, options: options).run(
            train: images, validation: images, checkpointPath: directory + "/resumed.ckpt"
        ) { epochs.append($0.epoch) }
        #expect(history.records.map(\.epoch) == [1, 2, 3])
        #expect(history.records.allSatisfy { $0.valLoss != nil })
        #expect(epochs == [2, 3])
        try whole.save(to: directory + "/whole.h5")
        try resumed.save(to: directory + "/resumed.h5")
        #expect(resumed.top.weights.bytes == whole.top.weights.bytes)
        #expect(resumed.convLayers.map(\.kernel) == whole.convLayers.map(\.kernel))
        #expect(whole.top.weights != top.weights)
        // A checkpoint of other settings is refused, not silently resumed.
        var other = options
        other.seed = 12
        #expect(throws: FineTuningError.self) {
            _ = try FineTuner(weights: weights, topModel: top, options: other).run(
                train: images, validation: nil, checkpointPath: directory + "/resumed.ckpt")
        }
    }

    @Test("early stopping ends with the best epoch's weights, also across a resumption")
    func earlyStopping() throws {
        let (images, top, weights) = try Self.fixture()
        let directory = try ImageFiles.temporaryDirectory("finetune-early")
        defer { ImageFiles.removeTree(directory) }
        var options = FineTuningOptions()
        options.epochs = 8
        options.batchSize = 2
        options.learningRate = 5e-4  // large enough to overshoot: val_loss falls for 3 epochs, then rises
        options.earlyStoppingPatience = 1
        options.seed = 5
        let (stopped, history) = try FineTuner(weights: weights, topModel: top, options: options).run(
            train: images, validation: images, checkpointPath: nil)
        let losses = history.records.compactMap(\.valLoss)
        let best = losses.indices.min { losses[$0] < losses[$1] }!
        print("early stopping: val_loss \(losses), best epoch \(best + 1)")
        #expect(history.records.count < options.epochs, "val_loss never rose: \(losses)")
        #expect(history.records.count == best + 2, "stops one epoch after the best, patience 1")
        // The weights after the best epoch, from a run that ends there.
        var plain = options
        plain.earlyStoppingPatience = nil
        plain.epochs = best + 1
        let reference = try FineTuner(weights: weights, topModel: top, options: plain).run(
            train: images, validation: nil, checkpointPath: nil
        ).model
        #expect(stopped.top.weights.bytes == reference.top.weights.bytes)
        #expect(stopped.convLayers.map(\.kernel) == reference.convLayers.map(\.kernel))
        // Interrupted after epoch 1, resumed: the same.
        var first = options
        first.epochs = 1
        _ = try FineTuner(weights: weights, topModel: top, options: first).run(
            train: images, validation: images, checkpointPath: directory + "/ckpt.h5")
        let resumed = try FineTuner(weights: weights, topModel: top, options: options).run(
            train: images, validation: images, checkpointPath: directory + "/ckpt.h5")
        #expect(resumed.model.top.weights.bytes == stopped.top.weights.bytes)
        #expect(resumed.history.records.map(\.epoch) == history.records.map(\.epoch))
    }

    @Test("FINETUNED.h5 has the groups, weight names and shapes of tf_keras' save_weights for the structure")
    func keraslayout() throws {
        let (images, top, weights) = try Self.fixture()
        _ = images
        let directory = try ImageFiles.temporaryDirectory("finetune-layout")
        defer { ImageFiles.removeTree(directory) }
        let model = try FineTunedModel(convLayers: weights.layers, top: top)
        try model.save(to: directory + "/FINETUNED.h5")
        let ours = try HDF5File.open(directory + "/FINETUNED.h5")
        let keras = try HDF5File.open(Self.layoutPath)
        defer {
            ours.close()
            keras.close()
        }
        let layers = try keras.root.attributes.strings("layer_names")
        #expect(try ours.root.attributes.strings("layer_names") == layers)
        for layer in layers + ["top_level_model_weights"] {
            let names = try keras.root.group(layer).attributes.strings("weight_names")
            #expect(try ours.root.group(layer).attributes.strings("weight_names") == names, "\(layer)")
            for name in names {
                let path = "\(layer)/\(name)"
                #expect(try ours.root.dataset(path).shape == keras.root.dataset(path).shape, "\(path)")
            }
        }
        #expect(try ours.root.attributes.strings("bottleneck_class_names") == ["a", "b", "c"])
        #expect(try ours.root.attributes.string("bottleneck_weights_sha256") == weights.sha256)
        #expect(
            try ours.root.dataset("block5_conv3/block5_conv3/kernel:0").read(Float.self) == weights.layers[12].kernel)
    }
}
