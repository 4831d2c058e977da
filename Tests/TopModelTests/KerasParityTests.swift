import Foundation
import HDF5
import TestSupport
import Testing

@testable import TopModel

/// Against tf_keras goldens (`Tests/Fixtures/keras/top_model.h5`, made by `Tests/Fixtures/gen_top_model.py`):
/// the Sequential Flatten(2,2,8) → Dense(256, relu) → Dropout → Dense(3, softmax) on a batch of 10.
@Suite("Keras parity")
struct KerasParityTests {
    let golden: HDF5File
    let x: [Float]
    let labels: [Int32]
    let initial: TopModelWeights

    init() throws {
        golden = try HDF5File.open(fixturesDirectory() + "/keras/top_model.h5")
        x = try golden.root.dataset("X").read(Float.self)
        labels = try golden.root.dataset("labels").read(Int32.self)
        initial = try Self.weights(golden.root.group("initial"))
    }

    static func weights(_ g: HDF5Group) throws -> TopModelWeights {
        try TopModelWeights(
            inputs: 32, hidden: 256, classes: 3, hiddenKernel: g.dataset("dense/kernel").read(Float.self),
            hiddenBias: g.dataset("dense/bias").read(Float.self),
            outputKernel: g.dataset("dense_1/kernel").read(Float.self),
            outputBias: g.dataset("dense_1/bias").read(Float.self))
    }

    func maxDifference(_ a: [Float], _ b: [Float]) -> Float {
        precondition(a.count == b.count)
        return zip(a, b).map { abs($0 - $1) }.max() ?? 0
    }

    func model(_ weights: TopModelWeights) throws -> TopModel {
        try TopModel(
            classNames: ["a", "b", "c"], featureShape: [2, 2, 8], provenance: testProvenance, weights: weights)
    }

    @Test("predictions, loss and accuracy match Keras' predict and evaluate within 1e-5")
    func inference() throws {
        let m = try model(initial)
        let expected = try golden.root.dataset("predictions").read(Float.self)
        #expect(maxDifference(try m.probabilities(features: x), expected) < 1e-5)
        let evaluation = try m.evaluate(try InMemoryFeatures(features: x, featureShape: [2, 2, 8], labels: labels))
        let loss = try golden.root.dataset("loss_evaluate").read(Float.self)[0]
        let accuracy = try golden.root.dataset("accuracy_evaluate").read(Float.self)[0]
        #expect(abs(evaluation.loss - Double(loss)) < 1e-5)
        #expect(abs(evaluation.accuracy - Double(accuracy)) < 1e-6)
        // Per-sample losses (Keras' probability path) agree with the logits path here.
        let perSample = try golden.root.dataset("loss_per_sample").read(Float.self)
        let network = Network(weights: initial, maxBatch: 10)
        var ours = [Float](repeating: 0, count: 10)
        for r in 0..<10 {
            let row = Array(x[(r * 32)..<(r * 32 + 32)])
            ours[r] = Float(network.evaluate(row, labels: [labels[r]], batch: 1).lossSum)
        }
        #expect(maxDifference(ours, perSample) < 1e-5)
    }

    @Test("the gradient of the mean loss matches tf.GradientTape's within 1e-5")
    func gradients() throws {
        let network = Network(weights: initial, maxBatch: 10)
        let sgd = OptimizerState(.sgd(learningRate: 1), tensorSizes: network.tensorSizes)
        _ = network.trainStep(x, labels: labels, sampleWeights: nil, batch: 10, dropout: nil, optimizer: sgd)
        let after = network.weights
        let expected = try Self.weights(golden.root.group("gradients"))
        func gradient(_ before: [Float], _ after: [Float]) -> [Float] { zip(before, after).map { $0 - $1 } }
        #expect(maxDifference(gradient(initial.hiddenKernel, after.hiddenKernel), expected.hiddenKernel) < 1e-5)
        #expect(maxDifference(gradient(initial.hiddenBias, after.hiddenBias), expected.hiddenBias) < 1e-5)
        #expect(maxDifference(gradient(initial.outputKernel, after.outputKernel), expected.outputKernel) < 1e-5)
        #expect(maxDifference(gradient(initial.outputBias, after.outputBias), expected.outputBias) < 1e-5)
    }

    static let optimizers: [(String, OptimizerConfiguration)] = [
        ("sgd", .sgd()),
        ("sgd_nesterov", .sgd(learningRate: 0.01, momentum: 0.9, nesterov: true)),
        ("rmsprop", .rmsprop()),
        ("adam", .adam()),
    ]

    @Test(
        "two training steps match Keras' train_on_batch weights and losses within 1e-5",
        arguments: ["sgd", "sgd_nesterov", "rmsprop", "adam"])
    func steps(name: String) throws {
        let configuration = try #require(Self.optimizers.first { $0.0 == name }?.1)
        let group = try golden.root.group(name)
        // The fixture's hyperparameters are the ones configured here (Keras' defaults but for SGD's momentum).
        #expect(try group.attributes.double("learning_rate") == configuration.learningRate)
        let network = Network(weights: initial, maxBatch: 10)
        let optimizer = OptimizerState(configuration, tensorSizes: network.tensorSizes)
        let kerasLosses = try group.dataset("train_on_batch_loss").read(Float.self)
        for step in 1...2 {
            let result = network.trainStep(
                x, labels: labels, sampleWeights: nil, batch: 10, dropout: nil, optimizer: optimizer)
            #expect(abs(result.loss - kerasLosses[step - 1]) < 1e-5, "\(name) step \(step) loss")
            let expected = try Self.weights(group.group("step\(step)"))
            let got = network.weights
            #expect(maxDifference(got.hiddenKernel, expected.hiddenKernel) < 1e-5, "\(name) step \(step) dense kernel")
            #expect(maxDifference(got.hiddenBias, expected.hiddenBias) < 1e-5, "\(name) step \(step) dense bias")
            #expect(
                maxDifference(got.outputKernel, expected.outputKernel) < 1e-5, "\(name) step \(step) dense_1 kernel")
            #expect(maxDifference(got.outputBias, expected.outputBias) < 1e-5, "\(name) step \(step) dense_1 bias")
        }
    }
}
