import Synchronization

/// A request to stop an extraction early, e.g. on SIGINT or SIGTERM; thread-safe (`Mutex`).
///
/// The coordinator's event loop looks at it between messages: it stops handing out shards, tells its workers
/// the job is over, keeps the journal (every finished shard is already on disk) and throws
/// `ExtractionError.interrupted`, so that a rerun of the same job resumes.
public final class ExtractionStop: Sendable {
    private let state = Mutex<Int32?>(nil)

    public init() {}

    /// Asks the extraction to stop because of `signal` (the first request wins).
    public func request(signal: Int32) {
        state.withLock { if $0 == nil { $0 = signal } }
    }

    /// The signal that asked for the stop, or nil while none has.
    public var signal: Int32? { state.withLock { $0 } }
}
