import Foundation
import Reporting
import VGG16
import Wire

/// How a worker process connects and behaves; built from `bottleneck-worker`'s command line.
public struct WorkerConfiguration: Sendable {
    /// The coordinator's endpoint ("tcp://host:5555", "ipc:///tmp/b.sock").
    public var endpoint: String
    /// Threads for the convolutions (OpenBLAS); nil leaves OpenBLAS' own choice.
    public var threads: Int?
    /// After a job ends, wait for the next one instead of exiting.
    public var persistent: Bool
    /// Where weights received from coordinators are kept, content-addressed: `<cache>/weights/<sha256>.h5`.
    public var cacheDirectory: String
    /// Seconds without any answer from the coordinator after which the worker stops trying and exits 1.
    public var giveUpAfter: Double
    /// Exit as soon as this process is no longer our parent (local workers of a coordinator).
    public var parentPID: Int32?
    /// Name in the coordinator's logs and summary.
    public var name: String
    /// CURVE keys (`SocketSecurity.curveClient(keyFile:serverKeyFile:)`) or plaintext.
    public var security: SocketSecurity = .plaintext
    /// Milliseconds to wait before computing each shard: simulates a slow worker in tests and demos.
    public var shardDelayMilliseconds: Int
    /// The arithmetic of the convolutions; part of the compute profile, so a job of another precision refuses
    /// this worker.
    public var precision: ConvPrecision = .fp32
    /// Developer hook (`bottleneck-dev worker` only): the process kills itself with SIGKILL on receiving its
    /// this-many-th fine-tuning chunk, as a worker that dies mid-step. nil: never.
    public var exitAfterChunks: Int?
    /// Developer hook: after its this-many-th fine-tuning chunk the worker forgets the images it holds, as a
    /// worker whose state is lost would; the next chunk needing one fails and the worker registers again.
    public var forgetImagesAfterChunks: Int?

    public init(
        endpoint: String, threads: Int? = nil, persistent: Bool = false, cacheDirectory: String? = nil,
        giveUpAfter: Double = 60, parentPID: Int32? = nil, name: String? = nil, shardDelayMilliseconds: Int = 0,
        exitAfterChunks: Int? = nil
    ) {
        self.exitAfterChunks = exitAfterChunks
        self.shardDelayMilliseconds = shardDelayMilliseconds
        self.endpoint = endpoint
        self.threads = threads
        self.persistent = persistent
        self.cacheDirectory = cacheDirectory ?? Self.defaultCacheDirectory
        self.giveUpAfter = giveUpAfter
        self.parentPID = parentPID
        self.name = name ?? "\(ProcessInfo.processInfo.hostName):\(getpid())"
    }

    /// `$XDG_CACHE_HOME/bottleneck`, else `~/.cache/bottleneck`.
    public static var defaultCacheDirectory: String {
        if let xdg = ProcessInfo.processInfo.environment["XDG_CACHE_HOME"], !xdg.isEmpty { return xdg + "/bottleneck" }
        return NSHomeDirectory() + "/.cache/bottleneck"
    }

    /// Conv bases computing in parallel: `threads`, or one per core.
    public var computeThreads: Int { threads ?? max(1, ProcessInfo.processInfo.activeProcessorCount) }
}

/// Why a worker stopped; `exitCode` is the process's.
public enum WorkerOutcome: Sendable, Equatable {
    /// The coordinator ended the job (and the worker is not persistent).
    case jobEnded
    /// The coordinator did not answer within `giveUpAfter`.
    case gaveUp(String)
    /// The coordinator refused this worker, or the two speak different protocol versions; with what would
    /// fix it, when that is known (a handshake refusal).
    case refused(String, remedy: Remedy? = nil)
    /// The coordinator that spawned this worker is gone.
    case parentGone
    /// The worker cannot work (weights unusable, settings it cannot honour).
    case failed(String)
    /// Stopped by a signal (SIGTERM), after telling the coordinator.
    case stopped(signal: Int32)

    public var exitCode: Int32 {
        switch self {
        case .jobEnded: 0
        case .gaveUp, .refused, .parentGone, .failed: 1
        case .stopped(let signal): 128 + signal
        }
    }
}
