import BLAS

// The trainable convolution block's layers as plain functions over HWC buffers, batch-major:
// a batch of feature maps is `[batch, height, width, channels]`, row-major. Kernels are Keras' HWIO
// `[3, 3, inChannels, outChannels]`, which read as a `[9·inChannels, outChannels]` matrix match the
// im2col column order (ky, kx, channel). Every sum runs in a fixed order (GEMMs on the caller's fixed
// OpenBLAS thread count): the same inputs give the same bits.

/// 3×3 convolution with 'same' padding and stride 1 (Keras' `Conv2D(..., (3, 3), padding="same")`).
public enum Conv3x3 {
    /// Unfolds `x[batch, height, width, channels]` into `columns[batch·height·width, 9·channels]`
    /// (zero outside the image).
    public static func im2col(
        _ x: UnsafePointer<Float>, batch: Int, height: Int, width: Int, channels: Int,
        into columns: UnsafeMutablePointer<Float>
    ) {
        let rowLength = 9 * channels
        for b in 0..<batch {
            let image = x + b * height * width * channels
            for y in 0..<height {
                for xx in 0..<width {
                    let row = columns + ((b * height + y) * width + xx) * rowLength
                    for ky in 0..<3 {
                        let sy = y + ky - 1
                        for kx in 0..<3 {
                            let sx = xx + kx - 1
                            let target = row + (ky * 3 + kx) * channels
                            if sy >= 0, sy < height, sx >= 0, sx < width {
                                target.update(from: image + (sy * width + sx) * channels, count: channels)
                            } else {
                                target.update(repeating: 0, count: channels)
                            }
                        }
                    }
                }
            }
        }
    }

    /// Folds `columns[batch·height·width, 9·channels]` back, summing: `dx[b, y, x, c]` is the sum of every
    /// column entry that `im2col` copied from that position (in row order), so `dx = im2colᵀ(columns)`.
    public static func col2im(
        _ columns: UnsafePointer<Float>, batch: Int, height: Int, width: Int, channels: Int,
        into dx: UnsafeMutablePointer<Float>
    ) {
        dx.update(repeating: 0, count: batch * height * width * channels)
        let rowLength = 9 * channels
        for b in 0..<batch {
            let image = dx + b * height * width * channels
            for y in 0..<height {
                for xx in 0..<width {
                    let row = columns + ((b * height + y) * width + xx) * rowLength
                    for ky in 0..<3 {
                        let sy = y + ky - 1
                        guard sy >= 0, sy < height else { continue }
                        for kx in 0..<3 {
                            let sx = xx + kx - 1
                            guard sx >= 0, sx < width else { continue }
                            let source = row + (ky * 3 + kx) * channels
                            let target = image + (sy * width + sx) * channels
                            for c in 0..<channels { target[c] += source[c] }
                        }
                    }
                }
            }
        }
    }

    /// `z[pixels, outChannels] = columns · kernel + bias`, where `pixels = batch·height·width` and `columns`
    /// comes from `im2col`.
    public static func forward(
        columns: UnsafePointer<Float>, pixels: Int, inChannels: Int, outChannels: Int,
        kernel: UnsafePointer<Float>, bias: UnsafePointer<Float>, z: UnsafeMutablePointer<Float>
    ) {
        for p in 0..<pixels { (z + p * outChannels).update(from: bias, count: outChannels) }
        sgemm(m: pixels, n: outChannels, k: 9 * inChannels, columns, kernel, beta: 1, z)
    }

    /// Gradients from `dz[pixels, outChannels]` (the gradient of the layer's pre-activation output):
    /// `dKernel = columnsᵀ · dz` `[9·inChannels, outChannels]`, `dBias = Σ_pixels dz` (in pixel order), and
    /// when asked `dColumns = dz · kernelᵀ` `[pixels, 9·inChannels]` (fold it with `col2im` to get the input's
    /// gradient).
    public static func backward(
        columns: UnsafePointer<Float>, dz: UnsafePointer<Float>, pixels: Int, inChannels: Int, outChannels: Int,
        kernel: UnsafePointer<Float>, dKernel: UnsafeMutablePointer<Float>, dBias: UnsafeMutablePointer<Float>,
        dColumns: UnsafeMutablePointer<Float>?
    ) {
        let depth = 9 * inChannels
        sgemm(transposeA: true, m: depth, n: outChannels, k: pixels, columns, dz, dKernel)
        dBias.update(repeating: 0, count: outChannels)
        for p in 0..<pixels {
            let row = dz + p * outChannels
            for o in 0..<outChannels { dBias[o] += row[o] }
        }
        if let dColumns {
            sgemm(transposeB: true, m: pixels, n: depth, k: outChannels, dz, kernel, dColumns)
        }
    }
}

/// Rectified linear unit.
public enum ReLU {
    /// In place: `z ← max(0, z)`.
    public static func forward(_ z: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count where !(z[i] > 0) { z[i] = 0 }
    }

    /// In place on the gradient: kept where the layer's output `a` is positive, else 0.
    public static func backward(output a: UnsafePointer<Float>, gradient d: UnsafeMutablePointer<Float>, count: Int) {
        for i in 0..<count where !(a[i] > 0) { d[i] = 0 }
    }
}

/// 2×2 max pooling with stride 2, 'valid' (Keras' `MaxPooling2D((2, 2), strides=(2, 2))`): an odd last
/// row or column is dropped.
public enum MaxPool2x2 {
    /// `y[batch, height/2, width/2, channels]` from `x[batch, height, width, channels]`.
    public static func forward(
        _ x: UnsafePointer<Float>, batch: Int, height: Int, width: Int, channels: Int,
        into y: UnsafeMutablePointer<Float>
    ) {
        let (oh, ow) = (height / 2, width / 2)
        for b in 0..<batch {
            let image = x + b * height * width * channels
            let out = y + b * oh * ow * channels
            for r in 0..<oh {
                for c in 0..<ow {
                    let p00 = image + ((2 * r) * width + 2 * c) * channels
                    let p01 = p00 + channels
                    let p10 = p00 + width * channels
                    let p11 = p10 + channels
                    let target = out + (r * ow + c) * channels
                    for k in 0..<channels { target[k] = max(max(p00[k], p01[k]), max(p10[k], p11[k])) }
                }
            }
        }
    }

    /// Routes `dy[batch, height/2, width/2, channels]` to the maximum of each window in `x` (the first in
    /// row-major order on ties, as TensorFlow's max-pool gradient); everything else in `dx` is 0.
    public static func backward(
        _ x: UnsafePointer<Float>, dy: UnsafePointer<Float>, batch: Int, height: Int, width: Int, channels: Int,
        into dx: UnsafeMutablePointer<Float>
    ) {
        dx.update(repeating: 0, count: batch * height * width * channels)
        let (oh, ow) = (height / 2, width / 2)
        for b in 0..<batch {
            let offset = b * height * width * channels
            let image = x + offset
            let gradient = dy + b * oh * ow * channels
            for r in 0..<oh {
                for c in 0..<ow {
                    let base = ((2 * r) * width + 2 * c) * channels
                    let candidates = (base, base + channels, base + width * channels, base + (width + 1) * channels)
                    for k in 0..<channels {
                        var best = candidates.0 + k
                        if image[candidates.1 + k] > image[best] { best = candidates.1 + k }
                        if image[candidates.2 + k] > image[best] { best = candidates.2 + k }
                        if image[candidates.3 + k] > image[best] { best = candidates.3 + k }
                        dx[offset + best] += gradient[(r * ow + c) * channels + k]
                    }
                }
            }
        }
    }
}
