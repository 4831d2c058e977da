/// Forward and backward passes of the top model over batches, with parameters and scratch buffers held in
/// buffers this object allocates (scratch sized for `maxBatch` rows). Owned by one thread at a time.
///
/// The hidden kernel is held transposed, `[hidden, inputs]`, so that its gradient, computed only from the
/// non-zero entries of the hidden layer's gradient, is written row by row (`weights` converts to and from Keras'
/// layout). Its rows are `kernelStride` floats apart, 64 bytes more than a multiple of 64: rows a multiple of
/// 4 KiB apart (8192 inputs: 32 KiB) fall into the same L1 cache sets, and OpenBLAS' packing, which walks many
/// rows at once, lost its cached lines to itself (its share of the epoch halved with the padding).
final class Network {
    let inputs: Int, hidden: Int, classes: Int
    /// Floats from one row of the transposed hidden kernel (and of its gradient) to the next; the padding is 0.
    let kernelStride: Int
    let maxBatch: Int
    let dropoutRate: Float
    /// Threads for the hidden layer's GEMMs (the large ones), split into fixed blocks: results do not depend
    /// on the thread count. Callers pin OpenBLAS to one thread (`BLASThreads.withFixedCount(1)`).
    let workers: GEMMWorkers

    // Parameters: the hidden kernel transposed, [hidden, inputs]; the others in Keras' layouts: [hidden],
    // [hidden, classes], [classes]. The optimizer's slots and gradients[0] share the hidden kernel's layout.
    private let hiddenKernelT: UnsafeMutableBufferPointer<Float>
    private let hiddenBias: UnsafeMutableBufferPointer<Float>
    private let outputKernel: UnsafeMutableBufferPointer<Float>
    private let outputBias: UnsafeMutableBufferPointer<Float>
    // Scratch, row-major: [maxBatch, hidden] and [maxBatch, classes].
    private let hiddenOut: UnsafeMutableBufferPointer<Float>
    private let dropoutMask: UnsafeMutableBufferPointer<Float>
    private let logits: UnsafeMutableBufferPointer<Float>
    /// Probabilities `[batch, classes]` of the last forward pass.
    let probabilities: UnsafeMutableBufferPointer<Float>
    private let losses: UnsafeMutableBufferPointer<Float>
    private let dLogits: UnsafeMutableBufferPointer<Float>
    private let dHidden: UnsafeMutableBufferPointer<Float>
    private let gradients: [UnsafeMutableBufferPointer<Float>]
    private let parameters: [UnsafeMutableBufferPointer<Float>]
    /// The non-zero entries of dHidden column by column: hidden + 1 offsets, room for maxBatch · hidden entries.
    private let sparse: SparseGradient
    private var allocations: [UnsafeMutableBufferPointer<Float>] = []

    /// The kernel gradient skips the zero entries of dHidden (`SparseGradient`), or is a dense OpenBLAS product.
    let skipsZeroGradients: Bool

    init(
        weights: TopModelWeights, maxBatch: Int, dropoutRate: Float = 0.5, threads: Int = 1,
        skipsZeroGradients: Bool = true
    ) {
        workers = GEMMWorkers(count: threads)
        self.skipsZeroGradients = skipsZeroGradients
        inputs = weights.inputs
        hidden = weights.hidden
        classes = weights.classes
        kernelStride = (weights.inputs + 15) / 16 * 16 + 16
        self.maxBatch = maxBatch
        self.dropoutRate = dropoutRate
        var allocations: [UnsafeMutableBufferPointer<Float>] = []
        func buffer(_ count: Int) -> UnsafeMutableBufferPointer<Float> {
            let b = UnsafeMutableBufferPointer<Float>.allocate(capacity: count)
            b.initialize(repeating: 0)
            allocations.append(b)
            return b
        }
        let (h, c) = (hidden, classes)
        hiddenKernelT = buffer(kernelStride * h)
        hiddenBias = buffer(h)
        outputKernel = buffer(h * c)
        outputBias = buffer(c)
        hiddenOut = buffer(maxBatch * h)
        dropoutMask = buffer(maxBatch * h)
        logits = buffer(maxBatch * c)
        probabilities = buffer(maxBatch * c)
        losses = buffer(maxBatch)
        dLogits = buffer(maxBatch * c)
        dHidden = buffer(maxBatch * h)
        gradients = [buffer(kernelStride * h), buffer(h), buffer(h * c), buffer(c)]
        parameters = [hiddenKernelT, hiddenBias, outputKernel, outputBias]
        sparse = SparseGradient(
            offsets: .allocate(capacity: h + 1), rows: .allocate(capacity: maxBatch * h), values: buffer(maxBatch * h))
        sparse.offsets.initialize(repeating: 0)
        sparse.rows.initialize(repeating: 0)
        self.allocations = allocations
        self.weights = weights
    }

    deinit {
        workers.stop()
        for b in allocations { b.deallocate() }
        sparse.offsets.deallocate()
        sparse.rows.deallocate()
    }

    /// The parameters (copied in and out).
    var weights: TopModelWeights {
        get {
            var kernel = [Float](repeating: 0, count: inputs * hidden)
            for j in 0..<hidden {
                for i in 0..<inputs { kernel[i * hidden + j] = hiddenKernelT[j * kernelStride + i] }
            }
            return TopModelWeights(
                unchecked: inputs, hidden: hidden, classes: classes, hiddenKernel: kernel,
                hiddenBias: Array(hiddenBias), outputKernel: Array(outputKernel), outputBias: Array(outputBias))
        }
        set {
            precondition(newValue.inputs == inputs && newValue.hidden == hidden && newValue.classes == classes)
            newValue.hiddenKernel.withUnsafeBufferPointer { kernel in
                for j in 0..<hidden {
                    for i in 0..<inputs { hiddenKernelT[j * kernelStride + i] = kernel[i * hidden + j] }
                }
            }
            _ = hiddenBias.update(fromContentsOf: newValue.hiddenBias)
            _ = outputKernel.update(fromContentsOf: newValue.outputKernel)
            _ = outputBias.update(fromContentsOf: newValue.outputBias)
        }
    }

    /// Number of values of each tensor, in the optimizer's order (kernel, bias, kernel, bias); the hidden kernel's
    /// padding included (its gradient there is 0, so every optimizer leaves it 0).
    var tensorSizes: [Int] { [hiddenKernelT.count, hiddenBias.count, outputKernel.count, outputBias.count] }

    /// Hidden layer: `hiddenOut = relu(x · W1 + b1)`.
    private func hiddenForward(_ x: UnsafePointer<Float>, batch: Int) {
        let y = hiddenOut.baseAddress!
        for r in 0..<batch { (y + r * hidden).update(from: hiddenBias.baseAddress!, count: hidden) }
        workers.multiplyTransposedB(
            m: batch, n: hidden, k: inputs, x, hiddenKernelT.baseAddress!, ldw: kernelStride, beta: 1, y)
        ReLULayer.forward(hiddenOut.baseAddress!, count: batch * hidden)
    }

    /// Output layer: `logits = hiddenOut · W2 + b2`.
    private func outputForward(batch: Int) {
        DenseLayer.forward(
            x: hiddenOut.baseAddress!, batch: batch, inputs: hidden, outputs: classes,
            kernel: outputKernel.baseAddress!, bias: outputBias.baseAddress!, y: logits.baseAddress!)
    }

    /// Inference (dropout off): `probabilities[0..<batch·classes]` from `x[batch, inputs]`.
    func predict(_ x: UnsafePointer<Float>, batch: Int) {
        precondition(batch <= maxBatch)
        hiddenForward(x, batch: batch)
        outputForward(batch: batch)
        SoftmaxCrossEntropy.softmax(
            logits: logits.baseAddress!, batch: batch, classes: classes,
            probabilities: probabilities.baseAddress!)
    }

    /// Inference with loss: returns the per-row losses' sum (unweighted) and the number of rows whose
    /// argmax equals the label; probabilities stay in `probabilities`.
    func evaluate(_ x: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int) -> (
        lossSum: Double, correct: Int
    ) {
        precondition(batch <= maxBatch)
        hiddenForward(x, batch: batch)
        outputForward(batch: batch)
        SoftmaxCrossEntropy.forward(
            logits: logits.baseAddress!, labels: labels, batch: batch, classes: classes,
            probabilities: probabilities.baseAddress!, losses: losses.baseAddress!)
        var lossSum = 0.0
        var correct = 0
        for r in 0..<batch {
            lossSum += Double(losses[r])
            if SoftmaxCrossEntropy.argmax(probabilities.baseAddress! + r * classes, count: classes) == Int(labels[r]) {
                correct += 1
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
        let (n, h, c) = (inputs, hidden, classes)
        let a = hiddenOut.baseAddress!
        let p = probabilities.baseAddress!
        let mask = dropoutMask.baseAddress!
        let dropping = dropout != nil && dropoutRate > 0
        // Forward.
        hiddenForward(x, batch: batch)
        if let dropout, dropping {
            DropoutLayer.makeMask(mask, count: batch * h, rate: dropoutRate, random: &dropout.pointee)
            DropoutLayer.apply(a, mask: mask, count: batch * h)
        }
        outputForward(batch: batch)
        SoftmaxCrossEntropy.forward(
            logits: logits.baseAddress!, labels: labels, batch: batch, classes: c,
            probabilities: p, losses: losses.baseAddress!)
        var weighted: Float = 0
        var correct = 0
        for r in 0..<batch {
            weighted += losses[r] * (sampleWeights?[r] ?? 1)
            if SoftmaxCrossEntropy.argmax(p + r * c, count: c) == Int(labels[r]) { correct += 1 }
        }
        // Backward.
        SoftmaxCrossEntropy.backward(
            probabilities: p, labels: labels, weights: sampleWeights, batch: batch,
            classes: c, dLogits: dLogits.baseAddress!)
        DenseLayer.backward(
            x: a, dy: dLogits.baseAddress!, batch: batch, inputs: h, outputs: c,
            kernel: outputKernel.baseAddress!, dKernel: gradients[2].baseAddress!,
            dBias: gradients[3].baseAddress!, dx: dHidden.baseAddress!)
        if dropping { DropoutLayer.apply(dHidden.baseAddress!, mask: mask, count: batch * h) }
        // `a` holds the dropped-out output: dropped units are 0 there and their gradient is already 0.
        ReLULayer.backward(output: a, gradient: dHidden.baseAddress!, count: batch * h)
        // Update. Plain SGD folds the big kernel's update into its gradient product (W1ᵀ += −lr · dZ1ᵀ·x);
        // every other tensor goes through the optimizer after all gradients are known, as in Keras.
        let folded = optimizer.plainGradientStep
        let dKernel = folded == nil ? gradients[0].baseAddress! : hiddenKernelT.baseAddress!
        DenseLayer.biasGradient(dy: dHidden.baseAddress!, batch: batch, outputs: h, dBias: gradients[1].baseAddress!)
        // dZ1 is zero wherever ReLU was inactive or dropout dropped the unit: the product skips those terms.
        let alpha = folded.map { -$0 } ?? 1
        let beta: Float = folded == nil ? 0 : 1
        if skipsZeroGradients {
            sparse.compress(dHidden.baseAddress!, batch: batch, hidden: h)
            workers.run { part in
                sparse.product(
                    inputs: n, outputRows: workers.range(part, of: h), x: x, alpha: alpha, beta: beta, out: dKernel,
                    outStride: kernelStride)
            }
        } else {
            workers.multiplyTransposedA(
                m: h, n: n, k: batch, alpha: alpha, dHidden.baseAddress!, x, beta: beta, dKernel, ldc: kernelStride)
        }
        for i in parameters.indices where !(i == 0 && folded != nil) {
            optimizer.apply(tensor: i, parameters[i], UnsafeBufferPointer(gradients[i]))
        }
        optimizer.finishStep()
        return (weighted / Float(batch), correct)
    }
}
