import BLAS
import Foundation

// The layers of the top model as plain functions over row-major buffers. A batch of `batch` rows is a
// `[batch, width]` matrix; kernels are `[inputs, outputs]` (Keras' Dense kernel layout), biases `[outputs]`.
// Callers own every buffer; nothing here allocates on the training path.

/// Fully connected layer: `y = x · W + b`.
enum DenseLayer {
    /// `y[batch, outputs] = x[batch, inputs] · kernel[inputs, outputs] + bias[outputs]`.
    static func forward(
        x: UnsafePointer<Float>, batch: Int, inputs: Int, outputs: Int,
        kernel: UnsafePointer<Float>, bias: UnsafePointer<Float>, y: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<batch { (y + r * outputs).update(from: bias, count: outputs) }
        sgemm(transposeA: false, transposeB: false, m: batch, n: outputs, k: inputs, x, kernel, beta: 1, y)
    }

    /// `dBias = Σ_rows dy`, summed over rows in order (deterministic).
    static func biasGradient(dy: UnsafePointer<Float>, batch: Int, outputs: Int, dBias: UnsafeMutablePointer<Float>) {
        dBias.update(repeating: 0, count: outputs)
        for r in 0..<batch {
            let row = dy + r * outputs
            for j in 0..<outputs { dBias[j] += row[j] }
        }
    }

    /// Gradients of a dense layer from the gradient `dy[batch, outputs]` of its output:
    /// `dKernel = xᵀ · dy` `[inputs, outputs]`, `dBias = Σ_rows dy` `[outputs]`, and if asked
    /// `dx = dy · Wᵀ` `[batch, inputs]`. The bias sum runs over rows in order (deterministic).
    /// With `kernelStep = lr`, `dKernel` is the kernel itself and receives `kernel − lr · xᵀ · dy` in the same
    /// GEMM (plain SGD folded into the gradient; no gradient buffer, no separate update pass).
    static func backward(
        x: UnsafePointer<Float>, dy: UnsafePointer<Float>, batch: Int, inputs: Int, outputs: Int,
        kernel: UnsafePointer<Float>, dKernel: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
        dx: UnsafeMutablePointer<Float>?, kernelStep: Float? = nil
    ) {
        if let dx {
            // Before a folded kernel update changes the kernel.
            sgemm(transposeA: false, transposeB: true, m: batch, n: inputs, k: outputs, dy, kernel, dx)
        }
        if let lr = kernelStep {
            sgemm(
                transposeA: true, transposeB: false, m: inputs, n: outputs, k: batch, alpha: -lr, x, dy, beta: 1,
                dKernel)
        } else {
            sgemm(transposeA: true, transposeB: false, m: inputs, n: outputs, k: batch, x, dy, dKernel)
        }
        biasGradient(dy: dy, batch: batch, outputs: outputs, dBias: dBias)
    }
}

/// Rectified linear unit, `max(0, z)`.
enum ReLULayer {
    /// In place: `z ← max(0, z)`.
    static func forward(_ z: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count where !(z[i] > 0) { z[i] = 0 }
    }

    /// In place on the gradient: `d ← d` where the layer's output `a` was positive, else 0.
    static func backward(output a: UnsafePointer<Float>, gradient d: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count where !(a[i] > 0) { d[i] = 0 }
    }
}

/// Inverted dropout: while training each unit is kept with probability `1 - rate` and scaled by
/// `1 / (1 - rate)` (as Keras' Dropout does); at inference the layer is the identity.
enum DropoutLayer {
    /// Fills `mask` with `1/(1-rate)` for kept units and 0 for dropped ones.
    static func makeMask(
        _ mask: UnsafeMutablePointer<Float>, count: Int, rate: Float, random: inout SeededRandom
    ) {
        let scale = 1 / (1 - rate)
        for i in 0..<count { mask[i] = random.unitFloat() < rate ? 0 : scale }
    }

    /// In place: `x ← x · mask` (the same for the gradient on the way back).
    static func apply(_ x: UnsafeMutablePointer<Float>, mask: UnsafePointer<Float>, count: Int) {
        for i in 0..<count { x[i] *= mask[i] }
    }
}

/// Softmax output with categorical cross-entropy, computed from the logits as Keras does for a
/// softmax Dense layer (`softmax_cross_entropy_with_logits`; no clipping of probabilities).
enum SoftmaxCrossEntropy {
    /// Writes `probabilities[batch, classes] = softmax(logits)` row by row (max-shifted).
    static func softmax(
        logits: UnsafePointer<Float>, batch: Int, classes: Int, probabilities: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<batch { _ = softmaxRow(logits + r * classes, classes: classes, into: probabilities + r * classes) }
    }

    /// One row of `softmax`; returns the row's maximum and the sum of the shifted exponentials.
    private static func softmaxRow(
        _ z: UnsafePointer<Float>, classes: Int, into p: UnsafeMutablePointer<Float>
    ) -> (max: Float, sum: Float) {
        var m = -Float.infinity
        for j in 0..<classes { m = max(m, z[j]) }
        var sum: Float = 0
        for j in 0..<classes {
            let e = expf(z[j] - m)
            p[j] = e
            sum += e
        }
        for j in 0..<classes { p[j] /= sum }
        return (m, sum)
    }

    /// Per-row loss `logΣexp(z) − z[label]` into `losses[batch]`; also writes the probabilities.
    static func forward(
        logits: UnsafePointer<Float>, labels: UnsafePointer<Int32>, batch: Int, classes: Int,
        probabilities: UnsafeMutablePointer<Float>, losses: UnsafeMutablePointer<Float>
    ) {
        for r in 0..<batch {
            let z = logits + r * classes
            let (m, sum) = softmaxRow(z, classes: classes, into: probabilities + r * classes)
            losses[r] = logf(sum) - (z[Int(labels[r])] - m)
        }
    }

    /// Gradient of the batch loss `L = Σ_r w_r · loss_r / batch` with respect to the logits:
    /// `dz[r, j] = w_r · (p[r, j] − [j = label_r]) / batch`. `weights` nil means all 1.
    static func backward(
        probabilities: UnsafePointer<Float>, labels: UnsafePointer<Int32>, weights: UnsafePointer<Float>?,
        batch: Int, classes: Int, dLogits: UnsafeMutablePointer<Float>
    ) {
        let inverseBatch = 1 / Float(batch)
        for r in 0..<batch {
            let w = (weights?[r] ?? 1) * inverseBatch
            let p = probabilities + r * classes
            let d = dLogits + r * classes
            let label = Int(labels[r])
            for j in 0..<classes { d[j] = (j == label ? p[j] - 1 : p[j]) * w }
        }
    }

    /// Index of the largest value in a row; the first on ties (as `argmax`).
    @inline(__always)
    static func argmax(_ row: UnsafePointer<Float>, count: Int) -> Int {
        var best = 0
        for j in 1..<max(count, 1) where row[j] > row[best] { best = j }
        return best
    }
}
