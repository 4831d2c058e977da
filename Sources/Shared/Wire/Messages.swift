import Provenance

/// The messages of the extraction protocol and their bodies.
///
/// Worker → coordinator: `hello`, `request`, `result`, `needWeights`, `heartbeat`, `goodbye`.
/// Coordinator → worker: `welcome`, `shard`, `weights`, `heartbeat`, `end`, `reject`, `reset`.
///
/// A conversation: the worker connects and sends `hello`; the coordinator answers `welcome` with the job (or
/// `reject`). A worker without the job's weights sends `needWeights` and gets `weights`. The worker then sends
/// `request` with its status (free slots: its compute threads + 1); the coordinator sends at most as many `shard`s as the worker has
/// credit. Each `result` is followed by a new `request`. Either side sends `heartbeat` when it has sent nothing else for a
/// heartbeat interval. `end` closes the job; `reset` tells a peer the coordinator has forgotten to say `hello`
/// again.

/// What the protocol promises about a job: a worker computes only with exactly these settings.
public struct JobSpec: Codable, Sendable, Hashable {
    /// Identifies one job run by one coordinator process; results carry it back.
    public var jobID: String
    /// SHA-256 of the weights file, lowercase hex; the worker refuses to compute with any other weights.
    public var weightsSHA256: String
    public var weightsSize: Int
    public var imageHeight: Int
    public var imageWidth: Int
    /// `ImageInput.Interpolation` raw value ("nearest", "bilinear").
    public var interpolation: String
    /// `ImageInput.Preprocessing` raw value ("caffe", "rescale").
    public var preprocessing: String
    /// `VGG16.PoolingLayer` raw value ("block5_pool", ...).
    public var layer: String
    /// Float32 values per image the job expects (h·w·c of the layer's output).
    public var featureCount: Int
    /// Shards carry file paths instead of bytes: coordinator and workers share a filesystem.
    public var sharedFilesystem: Bool
    /// With a shared filesystem: the journal directory (absolute) where workers write shards' rows themselves
    /// (`ShardAssignment.part`). It holds `job.id`, whose text is `jobID`: a worker that cannot read it there, or
    /// cannot open it for writing (the part files are made alike), refuses the job naming the path. Nil: features
    /// go back in results.
    public var partsDirectory: String?
    /// How often each side sends a heartbeat when idle, milliseconds.
    public var heartbeatIntervalMilliseconds: Int
    /// Silence after which the worker considers the coordinator gone, milliseconds.
    public var peerTimeoutMilliseconds: Int
    /// `VGG16.ConvPrecision` raw value ("fp32", "bf16"); nil means fp32 (a coordinator of an earlier build).
    public var precision: String?

    public init(
        jobID: String, weightsSHA256: String, weightsSize: Int, imageHeight: Int, imageWidth: Int,
        interpolation: String, preprocessing: String, layer: String, featureCount: Int, sharedFilesystem: Bool,
        partsDirectory: String? = nil, heartbeatIntervalMilliseconds: Int, peerTimeoutMilliseconds: Int,
        precision: String? = nil
    ) {
        self.precision = precision
        self.jobID = jobID
        self.weightsSHA256 = weightsSHA256
        self.weightsSize = weightsSize
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.interpolation = interpolation
        self.preprocessing = preprocessing
        self.layer = layer
        self.featureCount = featureCount
        self.sharedFilesystem = sharedFilesystem
        self.partsDirectory = partsDirectory
        self.heartbeatIntervalMilliseconds = heartbeatIntervalMilliseconds
        self.peerTimeoutMilliseconds = peerTimeoutMilliseconds
    }
}

public struct Hello: Codable, Sendable, Equatable {
    /// A name for logs and the summary, e.g. "host:pid".
    public var workerName: String
    public var pid: Int
    public var threads: Int
    /// What decides the bytes of the worker's features (kernel set, grouping, precision, build and library
    /// versions). Workers of one job must agree for its output to be the same bytes whichever worker computed
    /// an image. Required: a coordinator refuses a hello without it (decoding accepts its absence, so that the
    /// refusal can say why).
    public var computeProfile: ComputeProfile?
    public init(workerName: String, pid: Int, threads: Int, computeProfile: ComputeProfile? = nil) {
        self.workerName = workerName
        self.pid = pid
        self.threads = threads
        self.computeProfile = computeProfile
    }
}

public struct Welcome: Codable, Sendable, Equatable {
    public var job: JobSpec
    /// Set for a fine-tuning job (see `TuningSpec`); the job's `layer` is then `block4_pool`, the frozen part.
    public var tuning: TuningSpec?
    public init(job: JobSpec, tuning: TuningSpec? = nil) {
        self.job = job
        self.tuning = tuning
    }
}

/// What a worker holds, so that the coordinator can compute its credit and notice shards lost in transit (a
/// connection reset drops whatever was queued on it).
public struct WorkerStatus: Codable, Sendable, Equatable {
    /// The highest `ShardAssignment.sequence` this worker has received in this registration (0: none).
    public var lastShardSequence: Int
    /// Shards received and not yet answered with a result (queued, computing, or computed and unsent).
    public var held: [Int]
    /// How many more shards the worker wants now (its pipeline depth minus `held`).
    public var free: Int
    public init(lastShardSequence: Int, held: [Int], free: Int) {
        self.lastShardSequence = lastShardSequence
        self.held = held
        self.free = free
    }
}

/// A worker's request for work: its status, sent when it is set up and after every result.
///
/// Credit is absolute: the coordinator may have `free` minus (shards sent after `lastShardSequence`) shards
/// outstanding with this worker, never more.
public struct ShardRequest: Codable, Sendable, Equatable {
    public var jobID: String
    public var status: WorkerStatus
    public init(jobID: String, status: WorkerStatus) {
        self.jobID = jobID
        self.status = status
    }
}

/// One shard handed to a worker: `count` images of one split at contiguous global indices `start...`.
///
/// Followed by one frame of bytes per image, in order, unless `paths` is set (shared filesystem).
public struct ShardAssignment: Codable, Sendable, Equatable {
    public var jobID: String
    public var shardID: Int
    /// Distinguishes copies of one shard handed to several workers.
    public var attempt: Int
    /// Counts the shards sent to this worker since it registered: 1, 2, 3, ...
    public var sequence: Int
    public var start: Int
    public var filenames: [String]
    public var paths: [String]?
    /// With a shared filesystem and a parts directory: where the worker writes the shard's rows itself.
    public var part: PartRange?
    public init(
        jobID: String, shardID: Int, attempt: Int, sequence: Int, start: Int, filenames: [String],
        paths: [String]? = nil, part: PartRange? = nil
    ) {
        self.part = part
        self.jobID = jobID
        self.shardID = shardID
        self.attempt = attempt
        self.sequence = sequence
        self.start = start
        self.filenames = filenames
        self.paths = paths
    }
}

/// A byte range of a journal part file (shared-filesystem mode): a shard's rows, `count × featureCount` float32
/// little-endian values in shard order, a skipped image's row as zeros.
///
/// The worker `pwrite`s the rows at `offset` of the existing file `path` (never creating or truncating it),
/// fsyncs, hashes the `size` bytes with SHA-256, and answers with a `ShardResult` carrying the same range in
/// `written`, the hash, the skipped images with reasons and the input stamps, and an empty feature frame.
public struct PartRange: Codable, Sendable, Equatable {
    /// Absolute path of the part file, the same for coordinator and workers.
    public var path: String
    public var offset: Int
    public var size: Int
    /// SHA-256 (hex) of the bytes written; nil in an assignment.
    public var sha256: String?
    public init(path: String, offset: Int, size: Int, sha256: String? = nil) {
        self.path = path
        self.offset = offset
        self.size = size
        self.sha256 = sha256
    }
}

/// An image of a shard that could not be decoded; it is not a row of the feature block.
public struct SkippedImage: Codable, Sendable, Equatable {
    /// Position within the shard, 0..<count.
    public var offset: Int
    public var reason: String
    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }
}

/// An image a worker could not read (an I/O error, not a decode error): the shard is not done.
public struct UnreadableImage: Codable, Sendable, Equatable {
    /// Position within the shard, 0..<count.
    public var offset: Int
    public var reason: String
    public init(offset: Int, reason: String) {
        self.offset = offset
        self.reason = reason
    }
}

/// The features of one shard. Followed by one frame: float32 little-endian, (count − skipped) × featureCount
/// values, rows in shard order with skipped images left out, each row in the layer's NHWC order; or, when the
/// worker wrote the rows into a part file itself (`written`), an empty frame.
public struct ShardResult: Codable, Sendable, Equatable {
    public var jobID: String
    public var shardID: Int
    public var attempt: Int
    public var start: Int
    public var count: Int
    public var featureCount: Int
    public var skipped: [SkippedImage]
    /// With paths (shared filesystem): each image's stamp as the worker read it, nil for a missing file.
    public var inputs: [InputStamp?]?
    /// With paths: images whose read failed. A result with any is not the shard's features; the coordinator
    /// hands the shard out again (to another worker when there is one).
    public var unreadable: [UnreadableImage]?
    /// Shared-filesystem mode: the part range the worker wrote (the assignment's) with the SHA-256 of its bytes.
    public var written: PartRange?
    /// Plain mode: the SHA-256 of the shard's rows as they will lie in the part file (a skipped image's row
    /// zeros; `ShardRows.sha256Hex`), computed by the worker. The coordinator records it as it stands
    /// and never hashes a feature byte; reading the part checks it, so the check covers the wire, the
    /// coordinator's memory and the disk.
    public var rowsSHA256: String?
    public init(
        jobID: String, shardID: Int, attempt: Int, start: Int, count: Int, featureCount: Int,
        skipped: [SkippedImage], inputs: [InputStamp?]? = nil, unreadable: [UnreadableImage]? = nil,
        written: PartRange? = nil, rowsSHA256: String? = nil
    ) {
        self.written = written
        self.rowsSHA256 = rowsSHA256
        self.inputs = inputs
        self.unreadable = unreadable
        self.jobID = jobID
        self.shardID = shardID
        self.attempt = attempt
        self.start = start
        self.count = count
        self.featureCount = featureCount
        self.skipped = skipped
    }
    public var rowCount: Int { count - skipped.count }
}

public struct WeightsRequest: Codable, Sendable, Equatable {
    public var sha256: String
    public init(sha256: String) { self.sha256 = sha256 }
}

/// The weights file, whole, in the frame that follows.
public struct WeightsTransfer: Codable, Sendable, Equatable {
    public var sha256: String
    public var size: Int
    public init(sha256: String, size: Int) {
        self.sha256 = sha256
        self.size = size
    }
}

/// Liveness; a worker's heartbeat carries its status once it is set up for a job.
public struct Heartbeat: Codable, Sendable, Equatable {
    public var status: WorkerStatus?
    public init(status: WorkerStatus? = nil) { self.status = status }
}

public struct Goodbye: Codable, Sendable, Equatable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

public struct JobEnd: Codable, Sendable, Equatable {
    public var jobID: String
    public var reason: String
    public init(jobID: String, reason: String) {
        self.jobID = jobID
        self.reason = reason
    }
}

/// A refusal. Its encoding is frozen across protocol versions so that a peer of another version can read it.
public struct Rejection: Codable, Sendable, Equatable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

public struct Reset: Codable, Sendable, Equatable {
    public var reason: String
    public init(reason: String) { self.reason = reason }
}

/// One message of the protocol with its raw payload frames.
public enum WireMessage: Sendable, Equatable {
    case hello(Hello)
    case request(ShardRequest)
    /// `features`: the raw float32 block described by `ShardResult`.
    case result(ShardResult, features: [UInt8])
    case needWeights(WeightsRequest)
    case heartbeat(Heartbeat)
    case goodbye(Goodbye)
    case welcome(Welcome)
    /// `images`: one frame per image, empty when the assignment carries paths.
    case shard(ShardAssignment, images: [[UInt8]])
    case weights(WeightsTransfer, bytes: [UInt8])
    case end(JobEnd)
    case reject(Rejection)
    case reset(Reset)
    /// Fine-tuning: `values`, the step's trainable weights (float32 little-endian).
    case tuneWeights(TuningWeights, values: [UInt8])
    /// Fine-tuning: `images`, one RGB frame per shipped image.
    case tuneChunk(TuningChunk, images: [[UInt8]])
    /// Fine-tuning: `values`, the chunk's gradients (float32 little-endian).
    case tuneGradient(TuningGradient, values: [UInt8])

    public var kind: MessageKind {
        switch self {
        case .hello: .hello
        case .request: .request
        case .result: .result
        case .needWeights: .needWeights
        case .heartbeat: .heartbeat
        case .goodbye: .goodbye
        case .welcome: .welcome
        case .shard: .shard
        case .weights: .weights
        case .end: .end
        case .reject: .reject
        case .reset: .reset
        case .tuneWeights: .tuneWeights
        case .tuneChunk: .tuneChunk
        case .tuneGradient: .tuneGradient
        }
    }
}

/// The kind byte of the header. Values are part of the protocol; never renumber.
public enum MessageKind: UInt8, Sendable, CaseIterable {
    case hello = 1
    case request = 2
    case result = 3
    case needWeights = 4
    case heartbeat = 5
    case goodbye = 6
    case tuneGradient = 7
    case welcome = 20
    case shard = 21
    case weights = 22
    case end = 23
    case reject = 24
    case reset = 25
    case tuneWeights = 26
    case tuneChunk = 27
}
