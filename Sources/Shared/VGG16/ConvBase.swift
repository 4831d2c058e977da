import BLAS
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
/// (`BLASThreads.set(_:)`). Recommended: N instances on N threads with 1 BLAS thread each; OpenBLAS' own
/// threads spend the small products' time waking up.
///
/// Determinism: the early layers compute each image on its own; the last, small-map layers of a conv base
/// built with `batch` > 1 compute a fixed-size group of `batch` images in one product per Winograd point
/// (empty slots hold left-over data), so the products' shapes never depend on how many images a call brings.
/// With the AVX-512 kernel sets a row's bits also do not depend on its place in a product, which is why
/// `recommendedBatch` groups only with them: an image's features are then a function of the image, the
/// weights, the image size, the algorithm, the build, the kernel set and the BLAS thread count, never of the
/// images it travelled with. The BLAS thread count changes the last bits (OpenBLAS partitions the products
/// differently), so every process that must produce identical bytes uses the same count — 1, as recommended.
public final class ConvBase {
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

    /// How the convolutions after the first are computed.
    public let algorithm: ConvAlgorithm

    /// The arithmetic of the matrix products (`.fp32` unless asked otherwise).
    public let precision: ConvPrecision

    /// Images computed together in the last layers (small maps, wide channels), where one image's tiles make
    /// matrix products too short to amortise OpenBLAS' packing of the kernel. 1 when no layer is grouped.
    /// `forward` always computes whole groups (missing images are left-over data), so the products' shapes,
    /// and with them an image's bits, do not depend on how many images a call brings.
    public let batch: Int

    /// Layers computed one image at a time.
    private let stages: [ConvStage]
    /// The grouped tail: `groupStages[l][slot]`, slot 0 owning the weights; empty when `batch == 1`.
    private let groupStages: [[ConvStage]]
    private let scratch: ConvScratch
    /// Output of the group slots that hold no image.
    private let padding: UnsafeMutablePointer<Float>

    deinit { padding.deallocate() }

    /// Prepares the conv base for images of `imageHeight` × `imageWidth` (each at least 32).
    ///
    /// `algorithm` chooses how the 3×3 convolutions after the first are computed (the first, with 3 input
    /// channels, always uses `.direct`); all agree to float rounding (see `ConvAlgorithm`). Transforming the
    /// kernels for Winograd takes about 1 s for full-width weights.
    ///
    /// `precision` `.bf16` (opt-in) rounds each product's inputs and weights to bf16 and sums in fp32; it
    /// throws `MissingCPUFeature` (naming the CPU flag) on a CPU without avx512_bf16. `.fp32` results do not
    /// depend on this option's existence: they are the same bits as before it.
    ///
    /// Throws `ConvBaseError` for a smaller image or weights whose layers do not chain (first layer must
    /// take 3 channels, each layer the previous layer's width).
    public init(
        weights: VGG16Weights, imageHeight: Int, imageWidth: Int, output: PoolingLayer = .block5_pool,
        algorithm: ConvAlgorithm = .adaptive, batch: Int = 1, precision: ConvPrecision = .fp32
    ) throws {
        if precision == .bf16 { try CPUFeatures.requireBF16() }
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
                let pools = conv == VGG16Weights.convLayersPerBlock[block] - 1
                let first = layerIndex == 0
                plans.append(
                    ConvStage.Plan(
                        layer: layer, height: height, width: width, pools: pools,
                        algorithm: first
                            ? .direct
                            : algorithm.resolved(
                                height: height, width: width, inChannels: inChannels, precision: precision),
                        precision: precision,
                        largeTiles: !first
                            && algorithm.tileSide(
                                height: height, width: width, inChannels: inChannels, pools: pools,
                                precision: precision) == 6
                    ))
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
        self.precision = precision
        self.outputHeight = height
        self.outputWidth = width
        self.outputChannels = inChannels
        // The grouped tail: the last layers whose transformed tiles, for `batch` images, fit one product each.
        let batch = max(1, batch)
        var groupedFrom = plans.count
        if batch > 1 {
            while groupedFrom > 1 {
                let plan = plans[groupedFrom - 1]
                guard plan.algorithm != .direct else { break }
                let side = plan.tileSide
                let tiles =
                    ((plan.pools ? plan.height / 2 * 2 : plan.height) + side - 1) / side
                    * (((plan.pools ? plan.width / 2 * 2 : plan.width) + side - 1) / side)
                let floats = (side + 2) * (side + 2) * tiles * max(plan.layer.inChannels, plan.layer.outChannels)
                guard batch * floats <= Self.groupTileBudget else { break }
                groupedFrom -= 1
            }
        }
        self.batch = groupedFrom < plans.count ? batch : 1
        self.stages = try plans[..<groupedFrom].map { try ConvStage(plan: $0) }
        let groupLeaders = try plans[groupedFrom...].map { plan in
            var plan = plan
            plan.group = batch
            return try ConvStage(plan: plan)
        }
        self.groupStages = groupLeaders.map { leader in
            [leader] + (1..<(groupLeaders.isEmpty ? 1 : batch)).map { _ in ConvStage(sharingWeightsOf: leader) }
        }
        self.scratch = ConvScratch(
            floats: (stages + groupLeaders).map(\.scratchFloats).max() ?? 0, precision: precision)
        self.padding = allocateFloats(groupedFrom < plans.count ? height * width * inChannels : 1)
    }

    /// Upper bound, in floats, of one side (transformed input or products) of a grouped layer's matrix
    /// products: 4 Mi floats = 16 MiB.
    static let groupTileBudget = 1 << 22

    /// The `batch` to use with the OpenBLAS kernels this process runs: 4 with the AVX-512 sets (SkylakeX and
    /// later), whose products give each row the same bits wherever it sits in the matrix (checked by
    /// GroupedLayersTests), so that an image's features do not depend on its group; 1 otherwise — the AVX2
    /// ("Haswell") kernels round a row differently depending on its place, which would make features depend on
    /// the batch composition.
    public static var recommendedBatch: Int { BLASKernels.avx512CoreNames.contains(BLASKernels.coreName) ? 4 : 1 }

    /// Computes the features of one image.
    ///
    /// - Parameters:
    ///   - image: HWC float32, `imageHeight · imageWidth · 3` values, already preprocessed.
    ///   - output: receives `featureCount` values, HWC.
    public func forward(image: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>) {
        forward(image: image, into: output, after: nil)
    }

    /// Computes the features of 1…`batch` images (each `inputCount` floats, HWC) into `outputs` (each
    /// `featureCount` floats, HWC). Same bits for an image whichever other images share the call.
    public func forward(images: [UnsafePointer<Float>], into outputs: [UnsafeMutablePointer<Float>]) {
        forward(images: images, into: outputs, after: nil)
    }

    private func forward(
        image: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>, after: ((ConvStage, Int) -> Void)?
    ) {
        forward(images: [image], into: [output], after: after)
    }

    /// `after(stage, images)` follows each layer: once per image for the ungrouped layers, once per group for
    /// the grouped ones.
    private func forward(
        images: [UnsafePointer<Float>], into outputs: [UnsafeMutablePointer<Float>],
        after: ((ConvStage, Int) -> Void)?
    ) {
        precondition(
            images.count == outputs.count && (1...batch).contains(images.count),
            "\(images.count) images for a conv base of batch \(batch)")
        for (slot, image) in images.enumerated() {
            let first = stages[0]
            for y in 0..<imageHeight {
                (first.interior + y * first.paddedRowFloats).update(
                    from: image + y * imageWidth * 3, count: imageWidth * 3)
            }
            for index in stages.indices {
                let stage = stages[index]
                if index + 1 < stages.count {
                    let next = stages[index + 1]
                    stage.run(scratch: scratch, into: next.interior, rowStride: next.paddedRowFloats)
                } else if let grouped = groupStages.first {
                    let next = grouped[slot]
                    stage.run(scratch: scratch, into: next.interior, rowStride: next.paddedRowFloats)
                } else {
                    stage.run(scratch: scratch, into: outputs[slot], rowStride: outputWidth * outputChannels)
                }
                after?(stage, 1)
            }
        }
        for index in groupStages.indices {
            let slots = groupStages[index]
            let destinations: [UnsafeMutablePointer<Float>]
            let rowStride: Int
            if index + 1 < groupStages.count {
                destinations = groupStages[index + 1].map(\.interior)
                rowStride = groupStages[index + 1][0].paddedRowFloats
            } else {
                destinations = (0..<batch).map { $0 < outputs.count ? outputs[$0] : padding }
                rowStride = outputWidth * outputChannels
            }
            slots[0].runGroup(stages: slots, scratch: scratch, into: destinations, rowStride: rowStride)
            after?(slots[0], images.count)
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
        precision = other.precision
        outputHeight = other.outputHeight
        outputWidth = other.outputWidth
        outputChannels = other.outputChannels
        batch = other.batch
        stages = other.stages.map(ConvStage.init(sharingWeightsOf:))
        groupStages = other.groupStages.map { $0.map(ConvStage.init(sharingWeightsOf:)) }
        scratch = ConvScratch(floats: other.scratch.count, precision: other.precision)
        padding = allocateFloats(batch > 1 ? other.featureCount : 1)
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
    }

    /// `forward(image:into:)` with the time of each conv layer, for benchmarks. Same results, same bits.
    public func forwardProfiled(image: UnsafePointer<Float>, into output: UnsafeMutablePointer<Float>) -> [LayerTiming]
    {
        forwardProfiled(images: [image], into: [output])
    }

    /// `forward(images:into:)` with the time of each conv layer over all the images (a grouped layer costs the
    /// same for 1 and for `batch` images; `flops` counts the images given).
    public func forwardProfiled(images: [UnsafePointer<Float>], into outputs: [UnsafeMutablePointer<Float>])
        -> [LayerTiming]
    {
        func threadCPUTime() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_THREAD_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) * 1e-9
        }
        var names: [String] = []
        var totals: [String: (seconds: Double, cpu: Double, flops: Double)] = [:]
        var clock = ContinuousClock.now
        var cpu = threadCPUTime()
        forward(images: images, into: outputs) { stage, count in
            let now = ContinuousClock.now
            let nowCPU = threadCPUTime()
            let elapsed = now - clock
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            let flops = 2.0 * Double(count * stage.height * stage.width * 9 * stage.inChannels * stage.outChannels)
            if totals[stage.name] == nil { names.append(stage.name) }
            let total = totals[stage.name] ?? (0, 0, 0)
            totals[stage.name] = (total.seconds + seconds, total.cpu + nowCPU - cpu, total.flops + flops)
            clock = now
            cpu = nowCPU
        }
        return names.map { name in
            let total = totals[name]!
            return LayerTiming(name: name, seconds: total.seconds, threadCPUSeconds: total.cpu, flops: total.flops)
        }
    }

    /// Computes the features of `count` images, NHWC in, NHWC out (`count · featureCount` values), `batch`
    /// images per `forward(images:into:)`.
    public func forward(images: [Float], count: Int) -> [Float] {
        precondition(
            images.count == count * inputCount,
            "expected \(count)×\(imageHeight)×\(imageWidth)×3 floats, got \(images.count)")
        var features = [Float](repeating: 0, count: count * featureCount)
        images.withUnsafeBufferPointer { source in
            features.withUnsafeMutableBufferPointer { destination in
                for first in stride(from: 0, to: count, by: batch) {
                    let indices = first..<min(count, first + batch)
                    forward(
                        images: indices.map { UnsafePointer(source.baseAddress! + $0 * inputCount) },
                        into: indices.map { destination.baseAddress! + $0 * featureCount })
                }
            }
        }
        return features
    }
}
