import COpenBLAS

/// A `ConvBase` that cannot be built for the requested image size or weights.
public struct ConvBaseError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { "VGG16 conv base: \(message)" }
}

/// The VGG16 convolutional base: 13 conv 3×3 'same' + bias + ReLU layers and a 2×2/2 'valid' max-pool after
/// each of the 5 blocks, up to the requested pooling layer, for images of one fixed size.
///
/// Layouts: the input image is HWC float32 (imageHeight × imageWidth × 3, already preprocessed); the output
/// is HWC float32 (outputHeight × outputWidth × outputChannels), row-major over (h, w, c) like Keras'
/// channels_last tensors and `Flatten`.
///
/// Not thread-safe: one instance per thread. It owns its scratch buffers (sized at init, nothing is
/// allocated per image), and `forward` writes them. Matrix products run in OpenBLAS, whose thread count is
/// process-wide (`ConvBase.setBLASThreads(_:)`): either one instance with N BLAS threads, or N instances
/// on N threads of your own with 1 BLAS thread each.
///
/// Each image is computed on its own, with exactly the same sequence of operations and matrix shapes
/// whatever the batch: an image's features are a function of the image, the weights, the image size and
/// the BLAS thread count only. Stacking a batch into one larger matrix product would make OpenBLAS choose
/// its blocking and thread partition from the batch size, and the rounding of a feature could then depend
/// on which other images travelled with it.
public final class ConvBase: @unchecked Sendable {
    /// Smallest accepted height and width (five halvings leave at least 1×1, as Keras requires).
    public static let minimumImageSize = 32

    public let imageHeight: Int
    public let imageWidth: Int
    public let output: PoolingLayer
    public let outputHeight: Int
    public let outputWidth: Int
    public let outputChannels: Int
    /// outputHeight · outputWidth · outputChannels floats per image.
    public var featureCount: Int { outputHeight * outputWidth * outputChannels }
    /// imageHeight · imageWidth · 3 floats per image.
    public var inputCount: Int { imageHeight * imageWidth * 3 }

    /// Sets OpenBLAS' process-wide thread count (`openblas_set_num_threads`).
    public static func setBLASThreads(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// OpenBLAS' current process-wide thread count.
    public static var blasThreads: Int { Int(openblas_get_num_threads()) }

    /// Upper bound, in floats, of one im2col tile (a band of output rows); 1 Mi floats = 4 MiB.
    static let columnTileBudget = 1 << 20

    private let stages: [ConvStage]
    private let columns: UnsafeMutablePointer<Float>
    private let products: UnsafeMutablePointer<Float>
    private var allocations: [UnsafeMutableRawPointer] = []

    /// Prepares the conv base for images of `imageHeight` × `imageWidth` (each at least 32).
    ///
    /// Throws `ConvBaseError` for a smaller image or weights whose layers do not chain (first layer must
    /// take 3 channels, each layer the previous layer's width).
    public init(weights: VGG16Weights, imageHeight: Int, imageWidth: Int, output: PoolingLayer = .block5_pool) throws {
        guard imageHeight >= Self.minimumImageSize, imageWidth >= Self.minimumImageSize else {
            throw ConvBaseError(
                message: "image \(imageHeight)×\(imageWidth) is too small; VGG16 needs at least "
                    + "\(Self.minimumImageSize)×\(Self.minimumImageSize)")
        }
        let layerCount = output.convLayerCount
        guard weights.layers.count >= layerCount else {
            throw ConvBaseError(message: "weights have \(weights.layers.count) conv layers, \(output) needs \(layerCount)")
        }
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.output = output

        func allocate(_ count: Int) -> UnsafeMutablePointer<Float> {
            let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * 4, alignment: 64)
            raw.initializeMemory(as: Float.self, repeating: 0, count: max(1, count))
            return raw.assumingMemoryBound(to: Float.self)
        }
        var allocations: [UnsafeMutableRawPointer] = []
        var stages: [ConvStage] = []
        var height = imageHeight
        var width = imageWidth
        var inChannels = 3
        var maxColumns = 0
        var maxProducts = 0
        var layerIndex = 0
        for block in 0..<output.blockCount {
            for conv in 0..<VGG16Weights.convLayersPerBlock[block] {
                let layer = weights.layers[layerIndex]
                guard layer.inChannels == inChannels, layer.kernel.count == 9 * inChannels * layer.outChannels,
                    layer.bias.count == layer.outChannels
                else {
                    for allocation in allocations { allocation.deallocate() }
                    throw ConvBaseError(
                        message: "layer \(layer.name) has kernel (3,3,\(layer.inChannels),\(layer.outChannels)) and "
                            + "\(layer.bias.count) biases, expected (3,3,\(inChannels),out) and out biases")
                }
                let pools = conv == VGG16Weights.convLayersPerBlock[block] - 1
                let depth = 9 * inChannels
                let rowFloats = width * depth
                var tileRows = max(1, min(height, Self.columnTileBudget / max(1, rowFloats)))
                if pools { tileRows = max(2, tileRows & ~1) }
                let kernel = allocate(layer.kernel.count)
                layer.kernel.withUnsafeBufferPointer { kernel.update(from: $0.baseAddress!, count: $0.count) }
                let bias = allocate(layer.bias.count)
                layer.bias.withUnsafeBufferPointer { bias.update(from: $0.baseAddress!, count: $0.count) }
                let inputCount = (height + 2) * (width + 2) * inChannels
                let input = allocate(inputCount)
                allocations += [UnsafeMutableRawPointer(kernel), UnsafeMutableRawPointer(bias), UnsafeMutableRawPointer(input)]
                stages.append(
                    ConvStage(
                        name: layer.name, inChannels: inChannels, outChannels: layer.outChannels, height: height,
                        width: width, pools: pools, tileRows: tileRows, kernel: kernel, bias: bias, input: input))
                maxColumns = max(maxColumns, tileRows * rowFloats)
                maxProducts = max(maxProducts, tileRows * width * layer.outChannels)
                inChannels = layer.outChannels
                layerIndex += 1
            }
            height /= 2
            width /= 2
        }
        self.outputHeight = height
        self.outputWidth = width
        self.outputChannels = inChannels
        self.stages = stages
        self.columns = allocate(maxColumns)
        self.products = allocate(maxProducts)
        allocations += [UnsafeMutableRawPointer(columns), UnsafeMutableRawPointer(products)]
        self.allocations = allocations
    }

    deinit {
        for allocation in allocations { allocation.deallocate() }
    }

    /// Computes the features of one image.
    ///
    /// - Parameters:
    ///   - image: HWC float32, `imageHeight · imageWidth · 3` values, already preprocessed.
    ///   - output: receives `featureCount` values, HWC.
    public func forward(image: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>) {
        let first = stages[0]
        let paddedRow = (imageWidth + 2) * 3
        for y in 0..<imageHeight {
            (first.input + (y + 1) * paddedRow + 3).update(from: image + y * imageWidth * 3, count: imageWidth * 3)
        }
        for index in stages.indices {
            let stage = stages[index]
            if index + 1 < stages.count {
                let next = stages[index + 1]
                let rowStride = (next.width + 2) * next.inChannels
                stage.run(columns: columns, products: products, into: next.input + rowStride + next.inChannels, rowStride: rowStride)
            } else {
                stage.run(columns: columns, products: products, into: output, rowStride: outputWidth * outputChannels)
            }
        }
    }

    /// Computes the features of `count` images, NHWC in, NHWC out (`count · featureCount` values).
    /// Each image goes through `forward(image:into:)` on its own.
    public func forward(images: [Float], count: Int) -> [Float] {
        precondition(images.count == count * inputCount, "expected \(count)×\(imageHeight)×\(imageWidth)×3 floats, got \(images.count)")
        var features = [Float](repeating: 0, count: count * featureCount)
        images.withUnsafeBufferPointer { source in
            features.withUnsafeMutableBufferPointer { destination in
                for index in 0..<count {
                    forward(image: source.baseAddress! + index * inputCount, into: destination.baseAddress! + index * featureCount)
                }
            }
        }
        return features
    }
}

/// One conv layer at a fixed spatial size, with its padded input buffer and, for the last conv of a block,
/// the max-pool fused into its output pass.
struct ConvStage {
    let name: String
    let inChannels: Int
    let outChannels: Int
    /// Spatial size of the layer's input and of its conv output (before pooling).
    let height: Int
    let width: Int
    /// Whether a 2×2/2 'valid' max-pool follows (last conv of a block).
    let pools: Bool
    /// Output rows per im2col tile (even when `pools`).
    let tileRows: Int
    /// HWIO, i.e. K × N row-major with K = 9·inChannels, N = outChannels.
    let kernel: UnsafeMutablePointer<Float>
    let bias: UnsafeMutablePointer<Float>
    /// HWC with a zero border of 1: (height + 2) × (width + 2) × inChannels. The border is never written.
    let input: UnsafeMutablePointer<Float>

    /// Runs the layer over its input and writes ReLU(conv + bias), pooled if `pools`, as HWC rows of
    /// `rowStride` floats starting at `destination` (which may be the interior of the next layer's padded
    /// input).
    func run(
        columns: UnsafeMutablePointer<Float>, products: UnsafeMutablePointer<Float>,
        into destination: UnsafeMutablePointer<Float>, rowStride: Int
    ) {
        let depth = 9 * inChannels
        let tapRow = 3 * inChannels
        let paddedRow = (width + 2) * inChannels
        let channels = outChannels
        // Rows past the last full pooling window are never used: floor semantics of 'valid' pooling.
        let rowsNeeded = pools ? (height / 2) * 2 : height
        var firstRow = 0
        while firstRow < rowsNeeded {
            let rows = min(tileRows, rowsNeeded - firstRow)
            // im2col: row (y, x) holds the 3×3×Cin patch in HWIO order; each of its three kernel rows is
            // 3·Cin contiguous floats of the padded input.
            for tileRow in 0..<rows {
                let y = firstRow + tileRow
                for x in 0..<width {
                    let patch = columns + (tileRow * width + x) * depth
                    for dy in 0..<3 {
                        (patch + dy * tapRow).update(from: input + (y + dy) * paddedRow + x * inChannels, count: tapRow)
                    }
                }
            }
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(rows * width), blasint(channels), blasint(depth), 1,
                columns, blasint(depth), kernel, blasint(channels), 0, products, blasint(channels))
            if pools {
                // max-pool then bias then ReLU equals bias, ReLU, then max-pool exactly: adding the same
                // bias and clamping at 0 are monotone, and rounding preserves order.
                for pair in 0..<(rows / 2) {
                    let top = products + 2 * pair * width * channels
                    let bottom = top + width * channels
                    let out = destination + (firstRow / 2 + pair) * rowStride
                    for px in 0..<(width / 2) {
                        let a = top + 2 * px * channels
                        let b = a + channels
                        let c = bottom + 2 * px * channels
                        let d = c + channels
                        let o = out + px * channels
                        for ch in 0..<channels {
                            var m = a[ch]
                            if b[ch] > m { m = b[ch] }
                            if c[ch] > m { m = c[ch] }
                            if d[ch] > m { m = d[ch] }
                            let v = m + bias[ch]
                            o[ch] = v > 0 ? v : 0
                        }
                    }
                }
            } else {
                for tileRow in 0..<rows {
                    let source = products + tileRow * width * channels
                    let out = destination + (firstRow + tileRow) * rowStride
                    for x in 0..<width {
                        let s = source + x * channels
                        let o = out + x * channels
                        for ch in 0..<channels {
                            let v = s[ch] + bias[ch]
                            o[ch] = v > 0 ? v : 0
                        }
                    }
                }
            }
            firstRow += rows
        }
    }
}
