import BLAS
import FineTuning
import Foundation
import HDF5
import TestSupport
import Testing
import TopModel
import VGG16

/// Checks the backward pass and the SGD+momentum steps against tf_keras on the fine-tuning structure
/// (Tests/Fixtures/keras/finetune.h5, group /finetune, written by gen_finetune.py): narrow VGG16 at 48×48,
/// block5 + Flatten → Dense(256, relu) → Dropout(0) → Dense(3, softmax), layers up to block4_pool frozen.
@Suite("Fine-tuning gradients and steps against tf_keras")
struct KerasFineTuningTests {
    static let path = fixturesDirectory() + "/keras/finetune.h5"
    static let weightsPath = fixturesDirectory() + "/keras/weights/notop-official.h5"
    static let trainable = ["block5_conv1", "block5_conv2", "block5_conv3", "dense", "dense_1"]

    struct Fixture {
        var block: TrainableBlock
        var input: [Float]
        var block4: [Float]
        var labels: [Int32]
        var batch: Int
        var file: HDF5File

        /// `[kernel, bias]` of every trainable layer in `group`, in Keras' order.
        func tensors(_ group: String) throws -> [[Float]] {
            try KerasFineTuningTests.trainable.flatMap { layer in
                try ["kernel", "bias"].map {
                    try file.root.dataset("finetune/\(group)/\(layer)/\($0)").read(Float.self)
                }
            }
        }
    }

    func fixture() throws -> Fixture {
        let file = try HDF5File.open(Self.path)
        let weights = try VGG16Weights.load(path: Self.weightsPath)
        let inputDataset = try file.root.dataset("finetune/input")
        let shape = inputDataset.shape
        let block4Dataset = try file.root.dataset("finetune/block4_pool")
        let b4 = block4Dataset.shape
        let initial = try KerasFineTuningTests.trainable.flatMap { layer in
            try ["kernel", "bias"].map { try file.root.dataset("finetune/initial/\(layer)/\($0)").read(Float.self) }
        }
        let convs = weights.layers.suffix(3)
        var layers: [ConvLayerWeights] = []
        for (i, layer) in convs.enumerated() {
            #expect(initial[2 * i] == layer.kernel, "the fixture starts from notop-official.h5's \(layer.name)")
            layers.append(layer)
        }
        let hidden = initial[7].count
        let classes = initial[9].count
        let top = try TopModelWeights(
            inputs: initial[6].count / hidden, hidden: hidden, classes: classes, hiddenKernel: initial[6],
            hiddenBias: initial[7], outputKernel: initial[8], outputBias: initial[9])
        let block = try TrainableBlock(
            convLayers: layers, top: top, inputHeight: b4[1], inputWidth: b4[2], inputChannels: b4[3])
        return Fixture(
            block: block, input: try inputDataset.read(Float.self), block4: try block4Dataset.read(Float.self),
            labels: try file.root.dataset("finetune/labels").read(Int32.self), batch: shape[0], file: file)
    }

    /// Largest |a − b| over the tensor, relative to the tensor's largest |b|.
    func relative(_ a: [Float], _ b: [Float]) -> Float {
        let scale = b.map(abs).max() ?? 0
        let worst = zip(a, b).map { abs($0 - $1) }.max() ?? .infinity
        return scale > 0 ? worst / scale : worst
    }

    @Test("the frozen base's block4_pool output, from Keras' preprocessed input, matches Keras")
    func frozenPass() throws {
        let f = try fixture()
        defer { f.file.close() }
        let weights = try VGG16Weights.load(path: Self.weightsPath)
        let base = try ConvBase(weights: weights, imageHeight: 48, imageWidth: 48, output: .block4_pool)
        let features = base.forward(images: f.input, count: f.batch)
        #expect(relative(features, f.block4) < 1e-4)
    }

    @Test("block5 and top-model gradients of a batch equal tf_keras' within 1e-4 relative")
    func gradients() throws {
        let f = try fixture()
        defer { f.file.close() }
        let expected = try f.tensors("gradients")
        let kerasLoss = try f.file.root.dataset("finetune/loss").read(Float.self)[0]
        let gradient = BLASThreads.withFixedCount(1) {
            f.block.batchGradient(input: f.block4, labels: f.labels, batch: f.batch)
        }
        print("fine-tuning loss \(gradient.loss), Keras \(kerasLoss)")
        #expect(abs(gradient.loss - kerasLoss) <= 1e-5 * max(1, abs(kerasLoss)))
        for (i, (ours, theirs)) in zip(gradient.tensors, expected).enumerated() {
            let name = "\(Self.trainable[i / 2]) \(i % 2 == 0 ? "kernel" : "bias")"
            #expect(ours.count == theirs.count, "\(name)")
            let r = relative(ours, theirs)
            print("gradient \(name): max |difference| / max |Keras| = \(r), max |Keras| = \(theirs.map(abs).max()!)")
            #expect(theirs.contains { $0 != 0 }, "\(name): the fixture's gradient is all zero")
            #expect(r < 1e-4, "\(name): \(r)")
        }
    }

    @Test("three SGD+momentum steps (lr from the fixture, momentum 0.9) end within 1e-4 of tf_keras' weights")
    func threeSteps() throws {
        let f = try fixture()
        defer { f.file.close() }
        let group = try f.file.root.group("finetune")
        let learningRate = try group.attributes.double("learning_rate")
        let momentum = try group.attributes.double("momentum")
        let kerasLosses = try f.file.root.dataset("finetune/train_on_batch_loss").read(Float.self)
        var block = f.block
        let initial = block.tensors
        let optimizer = TensorOptimizer(
            .sgd(learningRate: learningRate, momentum: momentum), tensorSizes: initial.map(\.count))
        for step in 1...3 {
            let gradient = BLASThreads.withFixedCount(1) {
                block.batchGradient(input: f.block4, labels: f.labels, batch: f.batch)
            }
            #expect(abs(gradient.loss - kerasLosses[step - 1]) <= 1e-5 * max(1, abs(kerasLosses[step - 1])))
            var tensors = block.tensors
            optimizer.step(parameters: &tensors, gradients: gradient.tensors)
            block.tensors = tensors
        }
        let expected = try f.tensors("step3")
        for (i, (ours, theirs)) in zip(block.tensors, expected).enumerated() {
            let name = "\(Self.trainable[i / 2]) \(i % 2 == 0 ? "kernel" : "bias")"
            let worst = zip(ours, theirs).map { abs($0 - $1) }.max() ?? .infinity
            // The change itself, relative to Keras' change: the weights alone would hide a wrong step.
            let update = relative(zip(ours, initial[i]).map { $0 - $1 }, zip(theirs, initial[i]).map { $0 - $1 })
            print("after 3 steps, \(name): max |w − w_keras| = \(worst), change relative error = \(update)")
            #expect(worst < 1e-4, "\(name): \(worst)")
            #expect(update < 1e-3, "\(name): change relative error \(update)")
        }
        #expect(optimizer.slots.iterations == 3)
    }
}
