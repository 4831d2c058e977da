import COpenBLAS
import Foundation

/// The VGG16 convolutional base: 13 conv 3×3 'same' + bias + ReLU layers and a 2×2/2 'valid' max-pool after
/// each of the 5 blocks, up to the requested pooling layer, for images of one fixed size.
///
/// Layouts: the input image is HWC float32 (imageHeight × imageWidth × 3, already preprocessed); the output
/// is HWC float32 (outputHeight × outputWidth × outputChannels), row-major over (h, w, c) like Keras'
/// channels_last tensors and `Flatten`.
///
/// Not thread-safe: one instance per thread. It owns its input and scratch buffers (sized at init, nothing
/// is allocated per image), and `forward` writes them; `init(sharingWeightsWith:)` makes the instance of
/// another thread without copying the kernels. Matrix products run in OpenBLAS (blocking; call `forward`
/// on threads you own, not on Swift's cooperative pool), whose thread count is process-wide
/// (`ConvBase.setBLASThreads(_:)`). Recommended: N instances on N threads with 1 BLAS thread each — on
/// 2 cores about 1.8× the throughput of one instance with 2 BLAS threads, whose small products spend
/// their time waking threads.
///
/// Determinism: each image is computed on its own, with exactly the same sequence of operations and matrix
/// shapes whatever the batch, so an image's features are a function of the image, the weights, the image
/// size, the algorithm, the build and the BLAS thread count only. Stacking a batch into one larger matrix
/// product would make OpenBLAS choose its blocking and thread partition from the batch size, and the
/// rounding of a feature could then depend on which other images travelled with it. The BLAS thread count
/// does change the last bits (OpenBLAS partitions the products differently), so every process that must
/// produce identical bytes has to use the same count — 1, as recommended above.
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

    /// How the convolutions after the first are computed.
    public let algorithm: ConvAlgorithm

    private let stages: [ConvStage]
    private let scratch: ConvScratch

    /// Prepares the conv base for images of `imageHeight` × `imageWidth` (each at least 32).
    ///
    /// `algorithm` chooses how the 3×3 convolutions after the first are computed (the first, with 3 input
    /// channels, always uses `.direct`); all agree to float rounding (see `ConvAlgorithm`). Transforming the
    /// kernels for Winograd takes about 1 s for full-width weights.
    ///
    /// Throws `ConvBaseError` for a smaller image or weights whose layers do not chain (first layer must
    /// take 3 channels, each layer the previous layer's width).
    public init(
        weights: VGG16Weights, imageHeight: Int, imageWidth: Int, output: PoolingLayer = .block5_pool,
        algorithm: ConvAlgorithm = .adaptive
    ) throws {
        guard imageHeight >= Self.minimumImageSize, imageWidth >= Self.minimumImageSize else {
            throw ConvBaseError(
                message: "image \(imageHeight)×\(imageWidth) is too small; VGG16 needs at least "
                    + "\(Self.minimumImageSize)×\(Self.minimumImageSize)")
        }
        let layerCount = output.convLayerCount
        guard weights.layers.count >= layerCount else {
            throw ConvBaseError(
                message: "weights have \(weights.layers.count) conv layers, \(output) needs \(layerCount)")
        }
        var height = imageHeight
        var width = imageWidth
        var inChannels = 3
        var layerIndex = 0
        var plans: [ConvStage.Plan] = []
        for block in 0..<output.blockCount {
            for conv in 0..<VGG16Weights.convLayersPerBlock[block] {
                let layer = weights.layers[layerIndex]
                guard layer.inChannels == inChannels, layer.kernel.count == 9 * inChannels * layer.outChannels,
                    layer.bias.count == layer.outChannels
                else {
                    throw ConvBaseError(
                        message: "layer \(layer.name) has kernel (3,3,\(layer.inChannels),\(layer.outChannels)) and "
                            + "\(layer.bias.count) biases, expected (3,3,\(inChannels),out) and out biases")
                }
                plans.append(
                    ConvStage.Plan(
                        layer: layer, height: height, width: width,
                        pools: conv == VGG16Weights.convLayersPerBlock[block] - 1,
                        algorithm: layerIndex == 0 ? .direct : algorithm.resolved(height: height, width: width)))
                inChannels = layer.outChannels
                layerIndex += 1
            }
            height /= 2
            width /= 2
        }
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.output = output
        self.algorithm = algorithm
        self.outputHeight = height
        self.outputWidth = width
        self.outputChannels = inChannels
        self.stages = plans.map(ConvStage.init(plan:))
        self.scratch = ConvScratch(floats: stages.map(\.scratchFloats).max() ?? 0)
    }

    /// Computes the features of one image.
    ///
    /// - Parameters:
    ///   - image: HWC float32, `imageHeight · imageWidth · 3` values, already preprocessed.
    ///   - output: receives `featureCount` values, HWC.
    public func forward(image: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>) {
        forward(image: image, into: output, after: nil)
    }

    private func forward(
        image: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, after: ((ConvStage) -> Void)?
    ) {
        let first = stages[0]
        for y in 0..<imageHeight {
            (first.interior + y * first.paddedRowFloats).update(from: image + y * imageWidth * 3, count: imageWidth * 3)
        }
        for index in stages.indices {
            let stage = stages[index]
            if index + 1 < stages.count {
                let next = stages[index + 1]
                stage.run(scratch: scratch, into: next.interior, rowStride: next.paddedRowFloats)
            } else {
                stage.run(scratch: scratch, into: output, rowStride: outputWidth * outputChannels)
            }
            after?(stage)
        }
    }

    /// Another conv base for another thread: same image size, output layer and algorithm, its own input and
    /// scratch buffers, and the read-only (transformed) kernels of `other` shared rather than copied —
    /// about 170 MiB saved per extra thread at full width. Its features are bit-identical to `other`'s.
    public init(sharingWeightsWith other: ConvBase) {
        imageHeight = other.imageHeight
        imageWidth = other.imageWidth
        output = other.output
        algorithm = other.algorithm
        outputHeight = other.outputHeight
        outputWidth = other.outputWidth
        outputChannels = other.outputChannels
        stages = other.stages.map(ConvStage.init(sharingWeightsOf:))
        scratch = ConvScratch(floats: other.scratch.count)
    }

    /// Time spent in one conv layer (pooling fused in) during `forwardProfiled`.
    public struct LayerTiming: Sendable {
        public let name: String
        /// Wall-clock time.
        public let seconds: Double
        /// CPU time of the calling thread (all of the work when OpenBLAS runs on 1 thread; robust to other
        /// processes sharing the cores).
        public let threadCPUSeconds: Double
        /// 2 · multiply-adds of the convolution (H · W · 9 · Cin · Cout · 2).
        public let flops: Double
        public var gflopsPerSecond: Double { flops / seconds / 1e9 }
    }

    /// `forward(image:into:)` with the time of each conv layer, for benchmarks. Same results, same bits.
    public func forwardProfiled(image: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>) -> [LayerTiming]
    {
        func threadCPUTime() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
        }
        var timings: [LayerTiming] = []
        var clock = ContinuousClock.now
        var cpu = threadCPUTime()
        forward(image: image, into: output) { stage in
            let now = ContinuousClock.now
            let nowCPU = threadCPUTime()
            let elapsed = now - clock
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            let flops = 2.0 * Double(stage.height * stage.width * 9 * stage.inChannels * stage.outChannels)
            timings.append(
                LayerTiming(name: stage.name, seconds: seconds, threadCPUSeconds: nowCPU - cpu, flops: flops))
            clock = now
            cpu = nowCPU
        }
        return timings
    }

    /// Computes the features of `count` images, NHWC in, NHWC out (`count · featureCount` values).
    /// Each image goes through `forward(image:into:)` on its own.
    public func forward(images: [Float], count: Int) -> [Float] {
        precondition(
            images.count == count * inputCount,
            "expected \(count)×\(imageHeight)×\(imageWidth)×3 floats, got \(images.count)")
        var features = [Float](repeating: 0, count: count * featureCount)
        images.withUnsafeBufferPointer { source in
            features.withUnsafeMutableBufferPointer { destination in
                for index in 0..<count {
                    forward(
                        image: source.baseAddress! + index * inputCount,
                        into: destination.baseAddress! + index * featureCount)
                }
            }
        }
        return features
    }
}
