/// Forward and backward passes of the top model over batches, with scratch buffers sized for
/// `maxBatch` rows. Owned by one thread at a time (the trainer's or the caller's).
final class Network {
    var weights: TopModelWeights
    let maxBatch: Int
    let dropoutRate: Float

    // Scratch, row-major: hidden activations [maxBatch, hidden], logits/probabilities [maxBatch, classes].
    private var hiddenOut: [Float]
    private var dropoutMask: [Float]
    private var logits: [Float]
    private(set) var probabilities: [Float]
    private var losses: [Float]
    private var dLogits: [Float]
    private var dHidden: [Float]
    private var gHiddenKernel: [Float]
    private var gHiddenBias: [Float]
    private var gOutputKernel: [Float]
    private var gOutputBias: [Float]

    init(weights: TopModelWeights, maxBatch: Int, dropoutRate: Float = 0.5) {
        self.weights = weights
        self.maxBatch = maxBatch
        self.dropoutRate = dropoutRate
        let h = weights.hidden, c = weights.classes
        hiddenOut = [Float](repeating: 0, count: maxBatch * h)
        dropoutMask = [Float](repeating: 0, count: maxBatch * h)
        logits = [Float](repeating: 0, count: maxBatch * c)
        probabilities = [Float](repeating: 0, count: maxBatch * c)
        losses = [Float](repeating: 0, count: maxBatch)
        dLogits = [Float](repeating: 0, count: maxBatch * c)
        dHidden = [Float](repeating: 0, count: maxBatch * h)
        gHiddenKernel = [Float](repeating: 0, count: weights.inputs * h)
        gHiddenBias = [Float](repeating: 0, count: h)
        gOutputKernel = [Float](repeating: 0, count: h * c)
        gOutputBias = [Float](repeating: 0, count: c)
    }

    /// Inference (dropout off): `probabilities[0..<batch·classes]` from `x[batch, inputs]`.
    func predict(_ x: UnsafePointer<Float>, batch: Int) {
        precondition(batch <= maxBatch)
        let n = weights.inputs, h = weights.hidden, c = weights.classes
        hiddenOut.withUnsafeMutableBufferPointer { a in
            logits.withUnsafeMutableBufferPointer { z in
                weights.hiddenKernel.withUnsafeBufferPointer { k1 in
                    weights.hiddenBias.withUnsafeBufferPointer { b1 in
                        DenseLayer.forward(x: x, batch: batch, inputs: n, outputs: h, kernel: k1.baseAddress!,
                                           bias: b1.baseAddress!, y: a.baseAddress!)
                    }
                }
                ReLULayer.forward(a.baseAddress!, count: batch * h)
                weights.outputKernel.withUnsafeBufferPointer { k2 in
                    weights.outputBias.withUnsafeBufferPointer { b2 in
                        DenseLayer.forward(x: a.baseAddress!, batch: batch, inputs: h, outputs: c,
                                           kernel: k2.baseAddress!, bias: b2.baseAddress!, y: z.baseAddress!)
                    }
                }
                probabilities.withUnsafeMutableBufferPointer { p in
                    SoftmaxCrossEntropy.softmax(logits: z.baseAddress!, batch: batch, classes: c,
                                                probabilities: p.baseAddress!)
                }
            }
        }
    }

    /// Inference with loss: returns the per-row losses' sum (unweighted) and the number of rows whose
    /// argmax equals the label; probabilities stay in `probabilities`.
    func evaluate(_ x: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int) -> (lossSum: Double, correct: Int) {
        predict(x, batch: batch)
        let c = weights.classes
        var lossSum = 0.0
        var correct = 0
        logits.withUnsafeBufferPointer { z in
            probabilities.withUnsafeMutableBufferPointer { p in
                losses.withUnsafeMutableBufferPointer { l in
                    SoftmaxCrossEntropy.forward(logits: z.baseAddress!, labels: labels, batch: batch, classes: c,
                                                probabilities: p.baseAddress!, losses: l.baseAddress!)
                    for r in 0..<batch {
                        lossSum += Double(l[r])
                        if SoftmaxCrossEntropy.argmax(p.baseAddress! + r * c, count: c) == Int(labels[r]) { correct += 1 }
                    }
                }
            }
        }
        return (lossSum, correct)
    }

    /// One training step on `x[batch, inputs]`: forward with dropout (when `dropout` is given), loss
    /// `Σ w_r·loss_r / batch` (Keras' sum-over-batch-size reduction), backward, optimizer update.
    /// Returns the batch loss and the number of rows predicted right (training-mode outputs, unweighted,
    /// as Keras' accuracy metric).
    func trainStep(
        _ x: UnsafePointer<Float>, labels: UnsafePointer<Int32>, sampleWeights: UnsafePointer<Float>?, batch: Int,
        dropout: UnsafeMutablePointer<SeededRandom>?, optimizer: OptimizerState
    ) -> (loss: Float, correct: Int) {
        precondition(batch > 0 && batch <= maxBatch)
        let n = weights.inputs, h = weights.hidden, c = weights.classes
        var batchLoss: Float = 0
        var correct = 0
        let rate = dropoutRate
        hiddenOut.withUnsafeMutableBufferPointer { a in
        dropoutMask.withUnsafeMutableBufferPointer { mask in
        logits.withUnsafeMutableBufferPointer { z in
        probabilities.withUnsafeMutableBufferPointer { p in
        losses.withUnsafeMutableBufferPointer { l in
        dLogits.withUnsafeMutableBufferPointer { dz in
        dHidden.withUnsafeMutableBufferPointer { da in
        gHiddenKernel.withUnsafeMutableBufferPointer { gk1 in
        gHiddenBias.withUnsafeMutableBufferPointer { gb1 in
        gOutputKernel.withUnsafeMutableBufferPointer { gk2 in
        gOutputBias.withUnsafeMutableBufferPointer { gb2 in
            let a = a.baseAddress!, z = z.baseAddress!, p = p.baseAddress!
            // Forward.
            weights.hiddenKernel.withUnsafeBufferPointer { k1 in
                weights.hiddenBias.withUnsafeBufferPointer { b1 in
                    DenseLayer.forward(x: x, batch: batch, inputs: n, outputs: h, kernel: k1.baseAddress!,
                                       bias: b1.baseAddress!, y: a)
                }
            }
            ReLULayer.forward(a, count: batch * h)
            if let dropout, rate > 0 {
                DropoutLayer.makeMask(mask.baseAddress!, count: batch * h, rate: rate, random: &dropout.pointee)
                DropoutLayer.apply(a, mask: mask.baseAddress!, count: batch * h)
            }
            weights.outputKernel.withUnsafeBufferPointer { k2 in
                weights.outputBias.withUnsafeBufferPointer { b2 in
                    DenseLayer.forward(x: a, batch: batch, inputs: h, outputs: c, kernel: k2.baseAddress!,
                                       bias: b2.baseAddress!, y: z)
                }
            }
            SoftmaxCrossEntropy.forward(logits: z, labels: labels, batch: batch, classes: c, probabilities: p,
                                        losses: l.baseAddress!)
            var weighted: Float = 0
            for r in 0..<batch {
                weighted += l[r] * (sampleWeights?[r] ?? 1)
                if SoftmaxCrossEntropy.argmax(p + r * c, count: c) == Int(labels[r]) { correct += 1 }
            }
            batchLoss = weighted / Float(batch)
            // Backward.
            SoftmaxCrossEntropy.backward(probabilities: p, labels: labels, weights: sampleWeights, batch: batch,
                                         classes: c, dLogits: dz.baseAddress!)
            weights.outputKernel.withUnsafeBufferPointer { k2 in
                DenseLayer.backward(x: a, dy: dz.baseAddress!, batch: batch, inputs: h, outputs: c,
                                    kernel: k2.baseAddress!, dKernel: gk2.baseAddress!, dBias: gb2.baseAddress!,
                                    dx: da.baseAddress!)
            }
            if dropout != nil, rate > 0 {
                DropoutLayer.apply(da.baseAddress!, mask: mask.baseAddress!, count: batch * h)
            }
            // `a` holds the dropped-out output; dropped units are 0 there and their gradient is already 0.
            ReLULayer.backward(output: a, gradient: da.baseAddress!, count: batch * h)
            weights.hiddenKernel.withUnsafeBufferPointer { k1 in
                DenseLayer.backward(x: x, dy: da.baseAddress!, batch: batch, inputs: n, outputs: h,
                                    kernel: k1.baseAddress!, dKernel: gk1.baseAddress!, dBias: gb1.baseAddress!,
                                    dx: nil)
            }
            // Update.
            weights.hiddenKernel.withUnsafeMutableBufferPointer { k1 in
            weights.hiddenBias.withUnsafeMutableBufferPointer { b1 in
            weights.outputKernel.withUnsafeMutableBufferPointer { k2 in
            weights.outputBias.withUnsafeMutableBufferPointer { b2 in
                optimizer.apply(
                    parameters: [k1, b1, k2, b2],
                    gradients: [UnsafeBufferPointer(gk1), UnsafeBufferPointer(gb1), UnsafeBufferPointer(gk2),
                                UnsafeBufferPointer(gb2)])
            }}}}
        }}}}}}}}}}}
        return (batchLoss, correct)
    }

    /// Number of weight values of each tensor, in the optimizer's order (kernel, bias, kernel, bias).
    var tensorSizes: [Int] {
        [weights.hiddenKernel.count, weights.hiddenBias.count, weights.outputKernel.count, weights.outputBias.count]
    }
}
