import CZeroMQ

/// One ZeroMQ context: the I/O threads behind every socket made from it.
///
/// A context is thread-safe (libzmq guarantees it), hence `@unchecked Sendable`. Close every socket before
/// `terminate()`; sockets set `ZMQ_LINGER`, so termination never waits on unsent messages.
public final class WireContext: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    private var terminated = false

    /// A context with `ioThreads` I/O threads (ZeroMQ's default is 1); set before any socket is made.
    public init(ioThreads: Int = 1) throws {
        guard let context = zmq_ctx_new() else { throw zmqFailure("creating a ZeroMQ context") }
        raw = context
        if ioThreads > 1 { zmq_ctx_set(context, ZMQ_IO_THREADS, Int32(ioThreads)) }
    }

    /// I/O threads for an expected traffic of `bytesPerSecond` (in and out): ZeroMQ's rule of one thread per
    /// gigabyte per second, a quarter of that per thread with CURVE (every byte is encrypted on an I/O thread),
    /// at least 1 and at most `maximum`.
    public static func ioThreads(bytesPerSecond: Double, curve: Bool, maximum: Int) -> Int {
        let perThread = curve ? 250e6 : 1e9
        return max(1, min(maximum, Int((bytesPerSecond / perThread).rounded(.up))))
    }

    /// Ends the context; blocks until every socket made from it is closed.
    public func terminate() {
        guard !terminated else { return }
        terminated = true
        while zmq_ctx_term(raw) != 0 && zmq_errno() == EINTR {}
    }

    deinit { terminate() }

    /// The linked libzmq version, e.g. "4.3.4".
    public static var libraryVersion: String {
        var major: Int32 = 0, minor: Int32 = 0, patch: Int32 = 0
        zmq_version(&major, &minor, &patch)
        return "\(major).\(minor).\(patch)"
    }
}
