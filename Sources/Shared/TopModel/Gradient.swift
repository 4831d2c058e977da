import BLAS
import Foundation

/// The loss and gradients of the top model for one batch, without any update: what fine-tuning needs to
/// continue the backward pass into the convolution layers and to apply the step separately.
public struct TopModelBatchGradient: Sendable {
    /// Mean categorical cross-entropy over the batch (from the logits, as Keras for a softmax output).
    public var loss: Float
    /// Rows whose largest probability is at their label.
    public var correct: Int
    /// `d loss / d weights`, in the layouts of `TopModelWeights`.
    public var weights: TopModelWeights
    /// `d loss / d input`, `[batch, inputs]` row-major (the flattened features, HWC order).
    public var input: [Float]
}

extension TopModelWeights {
    /// Forward and backward pass of `Flatten → Dense(relu) → [Dropout] → Dense(softmax)` on
    /// `x[batch, inputs]` with integer `labels`, loss averaged over the batch (Keras' reduction).
    ///
    /// `dropoutMask`, when given, holds `[batch, hidden]` factors (0 for a dropped unit, `1/(1−rate)` for a
    /// kept one) applied after the hidden ReLU, as Keras' Dropout in training mode; nil means no dropout.
    /// The GEMMs run through OpenBLAS on the calling thread's settings; the bias sums run over rows in order.
    public func batchGradient(
        x: UnsafePointer<Float>, labels: [Int32], batch: Int, dropoutMask: UnsafePointer<Float>? = nil
    ) -> TopModelBatchGradient {
        precondition(batch > 0 && labels.count >= batch)
        let (n, h, c) = (inputs, hidden, classes)
        var a = [Float](repeating: 0, count: batch * h)
        var logits = [Float](repeating: 0, count: batch * c)
        var probabilities = [Float](repeating: 0, count: batch * c)
        var losses = [Float](repeating: 0, count: batch)
        var dLogits = [Float](repeating: 0, count: batch * c)
        var dHidden = [Float](repeating: 0, count: batch * h)
        var dx = [Float](repeating: 0, count: batch * n)
        var g1 = [Float](repeating: 0, count: n * h)
        var gb1 = [Float](repeating: 0, count: h)
        var g2 = [Float](repeating: 0, count: h * c)
        var gb2 = [Float](repeating: 0, count: c)
        var correct = 0
        var lossSum: Float = 0
        labels.withUnsafeBufferPointer { labels in
            let labels = labels.baseAddress!
            DenseLayer.forward(
                x: x, batch: batch, inputs: n, outputs: h, kernel: hiddenKernel, bias: hiddenBias, y: &a)
            ReLULayer.forward(&a, count: batch * h)
            if let dropoutMask { DropoutLayer.apply(&a, mask: dropoutMask, count: batch * h) }
            DenseLayer.forward(
                x: a, batch: batch, inputs: h, outputs: c, kernel: outputKernel, bias: outputBias, y: &logits)
            SoftmaxCrossEntropy.forward(
                logits: logits, labels: labels, batch: batch, classes: c, probabilities: &probabilities,
                losses: &losses)
            for r in 0..<batch {
                lossSum += losses[r]
                if probabilities.withUnsafeBufferPointer({
                    SoftmaxCrossEntropy.argmax($0.baseAddress! + r * c, count: c)
                }) == Int(labels[r]) {
                    correct += 1
                }
            }
            SoftmaxCrossEntropy.backward(
                probabilities: probabilities, labels: labels, weights: nil, batch: batch, classes: c,
                dLogits: &dLogits)
            DenseLayer.backward(
                x: a, dy: dLogits, batch: batch, inputs: h, outputs: c, kernel: outputKernel, dKernel: &g2,
                dBias: &gb2, dx: &dHidden)
            if let dropoutMask { DropoutLayer.apply(&dHidden, mask: dropoutMask, count: batch * h) }
            ReLULayer.backward(output: a, gradient: &dHidden, count: batch * h)
            DenseLayer.backward(
                x: x, dy: dHidden, batch: batch, inputs: n, outputs: h, kernel: hiddenKernel, dKernel: &g1,
                dBias: &gb1, dx: &dx)
        }
        let gradients = TopModelWeights(
            unchecked: n, hidden: h, classes: c, hiddenKernel: g1, hiddenBias: gb1, outputKernel: g2, outputBias: gb2)
        return TopModelBatchGradient(loss: lossSum / Float(batch), correct: correct, weights: gradients, input: dx)
    }

    /// The tensors in the optimizer's order: hidden kernel, hidden bias, output kernel, output bias.
    public var tensors: [[Float]] {
        get { [hiddenKernel, hiddenBias, outputKernel, outputBias] }
        set {
            precondition(newValue.count == 4 && zip(newValue, tensors).allSatisfy { $0.count == $1.count })
            hiddenKernel = newValue[0]
            hiddenBias = newValue[1]
            outputKernel = newValue[2]
            outputBias = newValue[3]
        }
    }
}

/// An optimizer over a fixed list of tensors, applied separately from the gradient computation
/// (`OptimizerConfiguration`'s tf_keras rules, float32). Holds its slots (momentum; Adam's moments) and
/// the step count, which a checkpoint can save and restore. Not thread-safe: one owner at a time.
public final class TensorOptimizer {
    private let state: OptimizerState
    public let tensorSizes: [Int]

    public init(_ configuration: OptimizerConfiguration, tensorSizes: [Int]) {
        state = OptimizerState(configuration, tensorSizes: tensorSizes)
        self.tensorSizes = tensorSizes
    }

    public var configuration: OptimizerConfiguration { state.configuration }

    /// Applies one step: `parameters[i]` updated with `gradients[i]` (sizes as `tensorSizes`).
    public func step(parameters: inout [[Float]], gradients: [[Float]]) {
        precondition(parameters.count == tensorSizes.count && gradients.count == tensorSizes.count)
        for i in parameters.indices {
            precondition(parameters[i].count == tensorSizes[i] && gradients[i].count == tensorSizes[i])
            parameters[i].withUnsafeMutableBufferPointer { p in
                gradients[i].withUnsafeBufferPointer { g in state.apply(tensor: i, p, g) }
            }
        }
        state.finishStep()
    }

    /// The optimizer's state: completed steps and the slots of each tensor (first: momentum or Adam's m;
    /// second: Adam's v, empty otherwise).
    public var slots: OptimizerSlots {
        get { state.slots }
        set { state.slots = newValue }
    }
}

/// The saved state of a `TensorOptimizer`.
public struct OptimizerSlots: Sendable, Equatable, Codable {
    public var iterations: Int
    public var first: [[Float]]
    public var second: [[Float]]

    public init(iterations: Int, first: [[Float]], second: [[Float]]) {
        self.iterations = iterations
        self.first = first
        self.second = second
    }
}
