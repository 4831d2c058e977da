import Augmentation
import BLAS
import ImageInput
import TopModel
import VGG16

/// A fixed piece of a batch, the unit of gradient computation: `rows` of the training split, in batch order.
///
/// A batch is cut into chunks of `FineTuningOptions.chunkSize` images (the last one shorter) whatever computes
/// them, one process or any number of workers; each chunk's gradient is a pure function of the trainable
/// weights, the chunk's images, the epoch and the seed, and `ChunkGradients.combine` sums them in chunk order.
/// That is why the fine-tuned model is the same bytes for any number of workers.
public struct TrainingChunk: Sendable, Equatable {
    /// Position of the chunk in its batch (0, 1, ...): the order of the sum.
    public var position: Int
    /// Rows of the training images (indices into `FineTuningImages`).
    public var rows: [Int]

    public init(position: Int, rows: [Int]) {
        self.position = position
        self.rows = rows
    }

    /// `batchRows` cut into consecutive chunks of `size` rows.
    public static func split(_ batchRows: [Int], size: Int) -> [TrainingChunk] {
        precondition(size >= 1)
        return stride(from: 0, to: batchRows.count, by: size).enumerated().map { position, start in
            TrainingChunk(position: position, rows: Array(batchRows[start..<min(start + size, batchRows.count)]))
        }
    }
}

/// Computes a chunk's gradient from its images: augmentation (drawn from the seed, the epoch and each image's
/// index), preprocessing, the frozen blocks 1–4, then block5 + top forward and backward.
///
/// The one definition used by the single-process trainer and by the workers. Not thread-safe (the frozen base
/// keeps scratch buffers): one instance per computing thread. Products run on the calling thread's OpenBLAS
/// settings; callers pin OpenBLAS to one thread for reproducible bits.
public final class ChunkGradients {
    public let base: ConvBase
    public let height: Int
    public let width: Int
    public let preprocessing: Preprocessing
    public let augmentation: AugmentationSettings
    public let seed: UInt64
    public let dropoutRate: Double

    public init(
        weights: VGG16Weights, height: Int, width: Int, preprocessing: Preprocessing,
        augmentation: AugmentationSettings, seed: UInt64, dropoutRate: Double
    ) throws {
        base = try ConvBase(weights: weights, imageHeight: height, imageWidth: width, output: .block4_pool)
        self.height = height
        self.width = width
        self.preprocessing = preprocessing
        self.augmentation = augmentation
        self.seed = seed
        self.dropoutRate = dropoutRate
    }

    /// Bytes of one image's pixels: `height · width · 3` RGB bytes.
    public var pixelCount: Int { height * width * 3 }

    /// The frozen base's output (`block4_pool`, `base.featureCount` floats) for one image's RGB bytes (starting
    /// at `pixels`), augmented as drawn for `epoch` and the image's split `index` (nil epoch: no augmentation).
    public func frozenFeatures(
        pixels: UnsafeBufferPointer<UInt8>, index: Int, epoch: Int?, into output: UnsafeMutablePointer<Float>
    ) {
        let (h, w) = (height, width)
        let size = pixelCount
        precondition(pixels.count == size)
        var image = pixels.map(Float.init)
        if let epoch, !augmentation.isNone {
            var augmented = [Float](repeating: 0, count: size)
            let parameters = augmentation.parameters(seed: seed, epoch: epoch, index: index, height: h, width: w)
            ImageAugmentation.apply(
                parameters, image: image, height: h, width: w, fillMode: augmentation.fillMode,
                fillValue: augmentation.fillValue, output: &augmented)
            image = augmented
        }
        var input = [Float](repeating: 0, count: size)
        Preprocess.apply(pixels: image, count: h * w, mode: preprocessing, into: &input)
        base.forward(image: input, into: output)
    }

    /// Inverted-dropout factors `[indices.count, hidden]`: each image's row drawn from the seed, the epoch and
    /// its split index; nil when the rate is 0.
    public func dropoutMask(indices: [Int], hidden: Int, epoch: Int) -> [Float]? {
        guard dropoutRate > 0 else { return nil }
        let rate = dropoutRate
        let scale = Float(1 / (1 - rate))
        var mask: [Float] = []
        mask.reserveCapacity(indices.count * hidden)
        for index in indices {
            var random = AugmentationRandom(seed: seed ^ 0x4452_4F50_4F55_5421, epoch: epoch, index: index)
            for _ in 0..<hidden { mask.append(random.unit() < rate ? 0 : scale) }
        }
        return mask
    }

    /// The chunk's mean loss, correct count and gradients on frozen features `[labels.count, block4 map]`.
    public func gradient(
        block: TrainableBlock, features: [Float], labels: [Int32], indices: [Int], epoch: Int
    ) -> TrainableBlock.Gradient {
        let mask = dropoutMask(indices: indices, hidden: block.top.hidden, epoch: epoch)
        return features.withUnsafeBufferPointer { x in
            guard let mask else {
                return block.batchGradient(input: x.baseAddress!, labels: labels, batch: labels.count)
            }
            return mask.withUnsafeBufferPointer { m in
                block.batchGradient(
                    input: x.baseAddress!, labels: labels, batch: labels.count, dropoutMask: m.baseAddress)
            }
        }
    }

    /// The batch's gradient from its chunks' (`counts[i]` images each, in chunk order): the chunk gradients
    /// weighted by `count / total` and summed in chunk order, the loss likewise, the correct counts added.
    public static func combine(_ chunks: [TrainableBlock.Gradient], counts: [Int]) -> TrainableBlock.Gradient {
        precondition(!chunks.isEmpty && chunks.count == counts.count)
        let total = Float(counts.reduce(0, +))
        var tensors = chunks[0].tensors.map { [Float](repeating: 0, count: $0.count) }
        var loss: Float = 0
        var correct = 0
        for (chunk, count) in zip(chunks, counts) {
            let weight = Float(count) / total
            loss += chunk.loss * weight
            correct += chunk.correct
            for t in tensors.indices {
                precondition(chunk.tensors[t].count == tensors[t].count)
                chunk.tensors[t].withUnsafeBufferPointer { g in
                    tensors[t].withUnsafeMutableBufferPointer { sum in
                        for i in 0..<sum.count { sum[i] += g[i] * weight }
                    }
                }
            }
        }
        return TrainableBlock.Gradient(loss: loss, correct: correct, tensors: tensors, input: [])
    }
}

/// Where the trainer gets each batch's chunk gradients: this process (`nil` source) or workers.
///
/// `gradients` returns one gradient per chunk, in chunk order, each computed with exactly `tensors` (the
/// trainable weights in `TrainableBlock.tensors` order) for the training images' rows of `chunks`.
public protocol ChunkGradientSource: AnyObject {
    /// Called once before the first batch with the training images (the source ships pixels from them).
    func prepare(train: FineTuningImages) throws
    func gradients(tensors: [[Float]], chunks: [TrainingChunk], epoch: Int, step: Int) throws
        -> [TrainableBlock.Gradient]
}
