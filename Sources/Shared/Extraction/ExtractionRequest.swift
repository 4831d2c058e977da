import Foundation
import ImageInput
import Reporting
import VGG16
import Wire

/// Everything an `extract` run needs: inputs, settings, and how to distribute the work.
///
/// The same request gives the same output bytes whatever `workers`, `bind` or `sharedFilesystem` say; the
/// settings that change the output (`settings`, `layer`, the weights, the file lists, `shardSize`) are recorded in
/// the journal's manifest, and a resume refuses when they differ.
public struct ExtractionRequest: Sendable {
    public var trainDirectory: String
    public var validationDirectory: String?
    public var weightsPath: String
    /// The HDF5 feature file to write; the journal lives in `outputPath + ".parts/"`.
    public var outputPath: String
    public var settings: ImageSettings
    public var layer: PoolingLayer
    /// Local worker processes to spawn; nil: what is fastest on this machine.
    public var workers: Int?
    /// Threads each local worker uses for its convolutions; nil: cores divided among the workers.
    public var threadsPerWorker: Int?
    /// Extra endpoints to bind for remote workers ("tcp://0.0.0.0:5555", "ipc:///tmp/b.sock").
    public var bindEndpoints: [String]
    /// Images per shard; nil: `ExtractionRequest.defaultShardSize(imageCount:)`.
    public var shardSize: Int?
    /// Discard an existing journal and start over.
    public var restart: Bool
    /// Keep `<output>.parts/` after the feature file is assembled.
    public var keepParts: Bool
    /// Send file paths instead of image bytes (workers read the same filesystem).
    public var sharedFilesystem: Bool
    /// Silence after which a worker is declared dead and its shards reassigned, seconds.
    public var workerTimeout: Double
    /// Interval of application heartbeats in both directions, seconds.
    public var heartbeatInterval: Double
    /// Where the extraction reports images done (task `extract`, unit `images`, fields `workers` and
    /// `shards_retried`) and notes such as "resuming: 3 of 9 shards done".
    public var progress: ProgressSink
    /// Where local workers cache weights; nil: their default cache directory.
    public var cacheDirectory: String?

    /// A CSV image list (a header naming `filename` and `class` columns; see `ImageListFile`) to read the training
    /// images from instead of `trainDirectory` (which is then ignored).
    public var trainList: String? = nil
    /// The validation images as a list (with `trainList` only; `validationDirectory` is then ignored).
    public var validationList: String? = nil
    /// The directory the lists' filenames are relative to; nil: they are paths as they stand.
    public var listDirectory: String? = nil

    /// CURVE for the coordinator's socket (key pair, allow-list); nil: plaintext.
    public var curve: CurveServerSetup? = nil
    /// Allow plaintext on non-loopback `bindEndpoints` (warned about on every start).
    public var insecure: Bool = false
    /// On a resume, trust that no image of a finished shard changed (skips checking their sizes and
    /// modification times).
    public var trustInputs: Bool = false
    /// Before work starts, read every finished shard's rows and check their SHA-256 (in parallel); shards that
    /// fail are computed again. Off: a resume trusts the journal log and checks only the part files' sizes.
    public var verifyParts: Bool = false
    /// How the output file holds the features: copied from the part files, or mapped onto them.
    public var assembly: FeatureAssembly = .copy
    /// Asked to stop early (signals); nil: runs to the end.
    public var stop: ExtractionStop? = nil
    /// Weights transfers the coordinator sends at a time; workers asking beyond this wait in a queue.
    public var maxWeightsTransfers: Int = 4
    /// Reads of one image that may fail (I/O errors, not decode errors) before the job fails.
    public var maxReadAttempts: Int = 3
    /// The arithmetic of the convolutions; every worker must compute in it (its compute profile says so), and a
    /// resume must find the precision its journal recorded.
    public var precision: ConvPrecision = .fp32
    /// Plain mode: the most feature bytes the coordinator lets be on their way to it, in bytes. A shard goes out
    /// only while (shards out, copies counted) × a whole shard's feature bytes + the bytes received and not yet
    /// written stay within this, so the results it may have to hold (in ZeroMQ's queues or waiting for the writer
    /// threads) never exceed it, whatever the number of workers; at least one shard is always let out. Throughput
    /// is bounded by it too: a budget of B bytes allows B / (shard bytes × a shard's turnaround in seconds) shards
    /// per second. Not used with `sharedFilesystem` (no feature byte reaches the coordinator).
    public var resultBytesBudget: Int = ExtractionRequest.defaultResultBytesBudget

    /// The default of `resultBytesBudget`: a sixteenth of the machine's memory, at least 512 MiB and at most
    /// 4 GiB, in whole MiB (1,536 MiB on 24 GiB: 480 shards of 32 images of 7×7×512 features, 9,600 images/s at a
    /// 1.6 s turnaround).
    public static let defaultResultBytesBudget: Int = {
        let sixteenth = (Int(clamping: ProcessInfo.processInfo.physicalMemory / 16) >> 20) << 20
        return min(max(sixteenth, 512 << 20), 4 << 30)
    }()

    /// Images per shard when not given: about 64 shards for small jobs (so that every worker gets several and
    /// the tail is short), at most 32 images per shard for large ones, and a multiple of 4 (workers compute the
    /// last layers of 4 images together where their kernels allow it). Depends only on the image count, so a
    /// rerun of the same command plans the same shards whatever the machine.
    public static func defaultShardSize(imageCount: Int) -> Int {
        min(32, (max(1, (imageCount + 63) / 64) + 3) / 4 * 4)
    }

    public init(
        trainDirectory: String, validationDirectory: String? = nil, weightsPath: String, outputPath: String,
        settings: ImageSettings, layer: PoolingLayer = .block5_pool, workers: Int? = nil,
        threadsPerWorker: Int? = nil, bindEndpoints: [String] = [], shardSize: Int? = nil, restart: Bool = false,
        keepParts: Bool = false, sharedFilesystem: Bool = false, workerTimeout: Double = 10,
        heartbeatInterval: Double = 1, progress: ProgressSink = .none, cacheDirectory: String? = nil
    ) {
        self.trainDirectory = trainDirectory
        self.validationDirectory = validationDirectory
        self.weightsPath = weightsPath
        self.outputPath = outputPath
        self.settings = settings
        self.layer = layer
        self.workers = workers
        self.threadsPerWorker = threadsPerWorker
        self.bindEndpoints = bindEndpoints
        self.shardSize = shardSize
        self.restart = restart
        self.keepParts = keepParts
        self.sharedFilesystem = sharedFilesystem
        self.workerTimeout = workerTimeout
        self.heartbeatInterval = heartbeatInterval
        self.progress = progress
        self.cacheDirectory = cacheDirectory
    }

    /// The parts/journal directory next to the output.
    public var partsDirectory: String { outputPath + ".parts" }
}

/// What an extraction did, for the closing summary and for tests.
public struct ExtractionSummary: Sendable, Codable {
    /// Images written as rows, over all splits.
    public var images: Int
    /// Images that could not be decoded (listed under `/<split>/skipped`).
    public var skipped: Int
    /// Shards in the plan, and how many of them were already done in the journal when the run began.
    public var shardsTotal: Int
    public var shardsResumed: Int
    /// Shards handed out again after a worker died or hung, and duplicate results dropped.
    public var shardsRetried: Int
    public var duplicatesDropped: Int
    public var seconds: Double
    /// Images computed in this run per second of wall time (resumed shards excluded).
    public var imagesPerSecond: Double
    /// Images computed per worker name.
    public var perWorker: [String: Int]
    /// Finished shards whose images had changed since they were read (computed again).
    public var shardsChanged: Int
    /// Weights files the coordinator sent to workers.
    public var weightsTransfers: Int
    /// Seconds from the start until every shard was computed and logged (the extraction phase), and seconds the
    /// assembly of the feature file took after it; together about `seconds`.
    public var extractionSeconds: Double = 0
    public var assemblySeconds: Double = 0
    /// This process's CPU seconds (user + system) and peak resident memory in bytes (the kernel's high-water
    /// mark) at the end of the extraction phase, before assembly; 0 when not measured.
    public var extractionCPUSeconds: Double = 0
    public var extractionPeakResidentBytes: Int = 0
    /// Plain mode: `ExtractionRequest.resultBytesBudget`, the most feature bytes the coordinator reserved for
    /// shards out and results held at once (never above the budget but for a single shard larger than it), and
    /// the most it held received and not yet written. 0 with a shared filesystem.
    public var resultBytesBudget: Int = 0
    public var peakResultBytesReserved: Int = 0
    public var peakUnwrittenBytes: Int = 0

    public init(
        images: Int, skipped: Int, shardsTotal: Int, shardsResumed: Int, shardsRetried: Int,
        duplicatesDropped: Int, seconds: Double, imagesPerSecond: Double, perWorker: [String: Int],
        shardsChanged: Int = 0, weightsTransfers: Int = 0
    ) {
        self.shardsChanged = shardsChanged
        self.weightsTransfers = weightsTransfers
        self.images = images
        self.skipped = skipped
        self.shardsTotal = shardsTotal
        self.shardsResumed = shardsResumed
        self.shardsRetried = shardsRetried
        self.duplicatesDropped = duplicatesDropped
        self.seconds = seconds
        self.imagesPerSecond = imagesPerSecond
        self.perWorker = perWorker
    }
}

/// How the output feature file holds the features.
public enum FeatureAssembly: String, CaseIterable, Sendable {
    /// A plain HDF5 file with the features copied in (the part files are removed unless kept).
    case copy
    /// `<split>/features` are HDF5 virtual datasets over the part files, which must stay next to the output;
    /// labels and filenames are written for real.
    case virtual
}
