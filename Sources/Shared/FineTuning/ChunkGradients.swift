import Augmentation
import BLAS
import ImageInput
import TopModel
import VGG16

/// A fixed piece of a batch, the unit of gradient computation: `rows` of the training split, in batch order.
///
/// A batch is cut into chunks of `FineTuningOptions.chunkSize` images (the last one shorter) whatever computes
/// them, one process or any number of workers; each chunk's gradient is a pure function of the trainable
/// weights, the chunk's images, the epoch and the seed, and `ChunkGradients.combine` sums them along a fixed
/// tree (`ReductionTree`).
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

    /// The batch's gradient from its chunks' (`counts[i]` images each, in chunk order): each chunk's gradient
    /// and loss weighted by `count / total`, then summed along the fixed reduction tree (`ReductionTree`),
    /// the correct counts added.
    public static func combine(_ chunks: [TrainableBlock.Gradient], counts: [Int]) -> TrainableBlock.Gradient {
        precondition(!chunks.isEmpty && chunks.count == counts.count)
        let total = counts.reduce(0, +)
        return ReductionTree.reduce(0..<chunks.count) { weighted(chunks[$0], count: counts[$0], total: total) }
    }

    /// A chunk's gradient and loss scaled by its share of the batch, `count / total` (a float32 product).
    public static func weighted(_ chunk: TrainableBlock.Gradient, count: Int, total: Int) -> TrainableBlock.Gradient {
        let weight = Float(count) / Float(total)
        return TrainableBlock.Gradient(
            loss: chunk.loss * weight, correct: chunk.correct,
            tensors: chunk.tensors.map { tensor in tensor.map { $0 * weight } })
    }
}

/// The fixed order in which a batch's weighted chunk gradients are summed: a binary tree over the chunk
/// positions `0..<n` whose node `lo..<hi` (more than one chunk) is the sum of its left child `lo..<lo + p`
/// and its right child `lo + p..<hi`, `p` the largest power of two below `hi − lo`.
///
/// A node's shape depends only on its size, so any node can be summed by whoever holds its chunks — a worker
/// sends one gradient for all the chunks of a node it was given — and the root is the same bytes whatever
/// nodes were computed where.
public enum ReductionTree {
    /// The children of node `node`, nil for a single chunk.
    public static func children(_ node: Range<Int>) -> (Range<Int>, Range<Int>)? {
        guard node.count > 1 else { return nil }
        var half = 1
        while half * 2 < node.count { half *= 2 }
        return (node.lowerBound..<(node.lowerBound + half), (node.lowerBound + half)..<node.upperBound)
    }

    /// The sum over `node`, with `leaf(position)` giving each (weighted) chunk gradient.
    public static func reduce(
        _ node: Range<Int>, leaf: (Int) throws -> TrainableBlock.Gradient
    ) rethrows -> TrainableBlock.Gradient {
        guard let (left, right) = children(node) else { return try leaf(node.lowerBound) }
        return add(try reduce(left, leaf: leaf), try reduce(right, leaf: leaf))
    }

    /// `a + b`, tensor by tensor, loss and correct counts added.
    public static func add(_ a: TrainableBlock.Gradient, _ b: TrainableBlock.Gradient) -> TrainableBlock.Gradient {
        precondition(a.tensors.count == b.tensors.count)
        var tensors = a.tensors
        for t in tensors.indices {
            precondition(tensors[t].count == b.tensors[t].count)
            b.tensors[t].withUnsafeBufferPointer { y in
                tensors[t].withUnsafeMutableBufferPointer { x in
                    for i in 0..<x.count { x[i] += y[i] }
                }
            }
        }
        return TrainableBlock.Gradient(loss: a.loss + b.loss, correct: a.correct + b.correct, tensors: tensors)
    }

    /// Cuts the tree into at least `parts` nodes (fewer when it has fewer chunks), splitting the largest node
    /// first: the pieces of work for `parts` workers, each summed where it is computed.
    public static func nodes(chunks: Int, parts: Int) -> [Range<Int>] {
        var nodes = [0..<chunks]
        while nodes.count < parts, let largest = nodes.indices.max(by: { nodes[$0].count < nodes[$1].count }),
            let (left, right) = children(nodes[largest])
        {
            nodes.replaceSubrange(largest...largest, with: [left, right])
        }
        return nodes
    }
}

/// The batch the trainer will ask for after the current one: its chunks, epoch and step. Its frozen pass
/// needs no trainable weights (blocks 1–4 are frozen, augmentation is drawn from the seed, the epoch and the
/// image), so a source may start it before the current step's update exists.
public struct UpcomingBatch: Sendable, Equatable {
    public var chunks: [TrainingChunk]
    public var epoch: Int
    public var step: Int

    public init(chunks: [TrainingChunk], epoch: Int, step: Int) {
        self.chunks = chunks
        self.epoch = epoch
        self.step = step
    }
}

/// A batch of the validation split: rows `start..<start + count` of its `FineTuningImages`. The trainer
/// validates in batches of the training batch size, in order; each batch's figures are computed as one product.
public struct ValidationBatch: Sendable, Equatable, Hashable {
    public var start: Int
    public var count: Int

    public init(start: Int, count: Int) {
        self.start = start
        self.count = count
    }

    /// `count` rows cut into consecutive batches of `size`.
    public static func split(count: Int, size: Int) -> [ValidationBatch] {
        stride(from: 0, to: count, by: size).map { ValidationBatch(start: $0, count: min(size, count - $0)) }
    }
}

/// A validation batch's mean loss (float32, as the trainer's own pass gives it) and its correct count.
public struct ValidationFigures: Sendable, Equatable {
    public var loss: Float
    public var correct: Int

    public init(loss: Float, correct: Int) {
        self.loss = loss
        self.correct = correct
    }
}

/// Where the trainer gets each batch's gradient when not from this process: workers.
///
/// `batchGradient` returns exactly `ChunkGradients.combine` of the chunks' gradients, each computed with
/// `tensors` (the trainable weights in `TrainableBlock.tensors` order) for the training images' rows of
/// `chunks`; nodes of the `ReductionTree` may be summed elsewhere first. `upcoming` names the batch of the
/// next call (nil after the last one): the source may start its frozen pass early; the next call may still
/// name another batch (the result never depends on what was started).
///
/// `validationFigures` returns, for each validation batch in order, exactly what the trainer's own pass gives:
/// `TrainableBlock.batchGradient` on the batch's unaugmented frozen features with `tensors` (no dropout);
/// `step` is the step these weights start (the one after the epoch's last).
public protocol ChunkGradientSource: AnyObject {
    /// Called once before the first batch with the training and validation images (the source ships pixels
    /// from them).
    func prepare(train: FineTuningImages, validation: FineTuningImages?) throws
    func batchGradient(
        tensors: [[Float]], chunks: [TrainingChunk], epoch: Int, step: Int, upcoming: UpcomingBatch?
    ) throws -> TrainableBlock.Gradient
    func validationFigures(tensors: [[Float]], batches: [ValidationBatch], step: Int) throws -> [ValidationFigures]
}
