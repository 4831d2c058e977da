/// The messages of distributed fine-tuning, on top of the extraction protocol's handshake.
///
/// A fine-tuning job is announced by a `welcome` whose `tuning` is set; weights travel by their SHA-256 as for
/// extraction. Per training step the coordinator sends each worker it gives work the step's trainable weights
/// once (`tuneWeights`), then chunks of the batch (`tuneChunk`); the worker answers each chunk with its
/// gradient (`tuneGradient`). A chunk of the next step may come before that step's weights: the worker runs
/// its frozen pass at once and the rest when the weights come (protocol version 5). Weights of a step are sent
/// only when every gradient of the step before is in: a worker drops the chunks of older steps unanswered.
/// After an epoch, the validation split goes out as `tuneChunk`s with `validation` set (one per validation
/// batch, with the weights of the next step) and comes back as `tuneGradient`s with `validation` set. A worker keeps the pixels of every image it has received in the job, so an
/// image's bytes cross the link once per worker.

/// What a worker needs, beyond `JobSpec`, to compute fine-tuning gradients exactly as the coordinator does.
public struct TuningSpec: Codable, Sendable, Equatable {
    /// The augmentation in its parser's syntax (`none` when off).
    public var augmentation: String
    public var seed: UInt64
    public var dropoutRate: Double
    /// The top model's shape: inputs (block5_pool values per image), hidden units, classes.
    public var topInputs: Int
    public var topHidden: Int
    public var classes: Int
    /// Without augmentation a worker keeps each image's frozen (`block4_pool`) features and computes them once.
    public var cacheFrozen: Bool
    /// Conv layers of block5 kept frozen (0: all of block5 trains); nil means 0.
    public var frozenBlockLayers: Int?

    public init(
        augmentation: String, seed: UInt64, dropoutRate: Double, topInputs: Int, topHidden: Int, classes: Int,
        cacheFrozen: Bool, frozenBlockLayers: Int? = nil
    ) {
        self.frozenBlockLayers = frozenBlockLayers
        self.augmentation = augmentation
        self.seed = seed
        self.dropoutRate = dropoutRate
        self.topInputs = topInputs
        self.topHidden = topHidden
        self.classes = classes
        self.cacheFrozen = cacheFrozen
    }
}

/// The trainable weights of one step, in the frame that follows: float32 little-endian, every tensor in the
/// trainer's order, concatenated.
public struct TuningWeights: Codable, Sendable, Equatable {
    public var jobID: String
    /// The training step these weights start (0, 1, ...): chunks name it.
    public var step: Int
    public var valueCount: Int
    public init(jobID: String, step: Int, valueCount: Int) {
        self.jobID = jobID
        self.step = step
        self.valueCount = valueCount
    }
}

/// A node of a step's reduction tree: consecutive chunks of the batch, starting at chunk `position`, whose
/// images are listed in order (`leafCounts[i]` images for its i-th chunk). The worker answers with the sum
/// of the chunks' gradients, each weighted by its share of the batch (`batchCount` images), summed as the
/// tree does. Followed by one frame of RGB bytes (`height · width · 3`) per image whose `shipped` flag is set;
/// the worker has the others from earlier chunks of the job.
public struct TuningChunk: Codable, Sendable, Equatable {
    public var jobID: String
    public var step: Int
    /// The node's first chunk's position in its batch.
    public var position: Int
    /// Images per chunk of the node, in order; nil: one chunk of all the images.
    public var leafCounts: [Int]?
    /// Images in the whole batch; nil: the node's images (weight 1).
    public var batchCount: Int?
    public var epoch: Int
    /// Each image's index in the training split: the key of its augmentation and dropout draws, and of the
    /// worker's pixel cache.
    public var indices: [Int]
    public var labels: [Int32]
    public var shipped: [Bool]
    /// A batch of the validation split instead (nil: false): `position` is its first row, `indices` are
    /// indices in the validation split, nothing is augmented or dropped, and the answer carries the batch's
    /// loss and correct count without gradient values. The worker keeps these images' frozen features.
    public var validation: Bool?
    public init(
        jobID: String, step: Int, position: Int, epoch: Int, indices: [Int], labels: [Int32], shipped: [Bool],
        leafCounts: [Int]? = nil, batchCount: Int? = nil, validation: Bool? = nil
    ) {
        self.validation = validation
        self.leafCounts = leafCounts
        self.batchCount = batchCount
        self.jobID = jobID
        self.step = step
        self.position = position
        self.epoch = epoch
        self.indices = indices
        self.labels = labels
        self.shipped = shipped
    }
}

/// A node's (weighted, summed) gradient, in the frame that follows: float32 little-endian, the trainable
/// tensors' gradients in the trainer's order, concatenated.
public struct TuningGradient: Codable, Sendable, Equatable {
    public var jobID: String
    public var step: Int
    public var position: Int
    /// Chunks in the node (nil: 1).
    public var leaves: Int?
    /// The chunk's mean loss, as the bits of a float32 (exact through JSON).
    public var lossBits: UInt32
    public var correct: Int
    public var count: Int
    public var valueCount: Int
    /// Seconds the worker spent on the chunk's frozen pass (with augmentation and preprocessing), and on
    /// block5 + top forward and backward: for the coordinator's account of where a step's time goes.
    public var frozenSeconds: Double?
    public var blockSeconds: Double?
    /// True when the node's frozen pass ran before its step's weights came (nil: false).
    public var frozenAhead: Bool?
    /// The answer to a validation batch (nil: false): no values follow.
    public var validation: Bool?
    public init(
        jobID: String, step: Int, position: Int, lossBits: UInt32, correct: Int, count: Int, valueCount: Int,
        frozenSeconds: Double? = nil, blockSeconds: Double? = nil, leaves: Int? = nil, frozenAhead: Bool? = nil,
        validation: Bool? = nil
    ) {
        self.validation = validation
        self.frozenAhead = frozenAhead
        self.leaves = leaves
        self.frozenSeconds = frozenSeconds
        self.blockSeconds = blockSeconds
        self.jobID = jobID
        self.step = step
        self.position = position
        self.lossBits = lossBits
        self.correct = correct
        self.count = count
        self.valueCount = valueCount
    }
}

/// Float32 values as little-endian bytes and back: the payload of `tuneWeights` and `tuneGradient`.
public enum FloatFrame {
    public static func bytes(_ tensors: [[Float]]) -> [UInt8] {
        var out: [UInt8] = []
        out.reserveCapacity(tensors.reduce(0) { $0 + $1.count } * 4)
        for tensor in tensors {
            #if _endian(little)
                tensor.withUnsafeBytes { out.append(contentsOf: $0) }
            #else
                for value in tensor {
                    withUnsafeBytes(of: value.bitPattern.littleEndian) { out.append(contentsOf: $0) }
                }
            #endif
        }
        return out
    }

    /// Splits `bytes` into tensors of `sizes`; nil when the byte count does not match.
    public static func tensors(_ bytes: [UInt8], sizes: [Int]) -> [[Float]]? {
        guard bytes.count == sizes.reduce(0, +) * 4 else { return nil }
        var offset = 0
        return bytes.withUnsafeBytes { raw in
            sizes.map { size in
                let tensor = [Float](unsafeUninitializedCapacity: size) { buffer, count in
                    #if _endian(little)
                        // One copy of the bytes (a gradient or a step's weights is tens of MB).
                        UnsafeMutableRawBufferPointer(buffer).copyMemory(
                            from: UnsafeRawBufferPointer(rebasing: raw[offset..<(offset + 4 * size)]))
                    #else
                        for i in 0..<size {
                            let bits = raw.loadUnaligned(fromByteOffset: offset + 4 * i, as: UInt32.self)
                            buffer[i] = Float(bitPattern: UInt32(littleEndian: bits))
                        }
                    #endif
                    count = size
                }
                offset += 4 * size
                return tensor
            }
        }
    }
}
