import CZeroMQ

/// One ZeroMQ context: the I/O threads behind every socket made from it.
///
/// A context is thread-safe (libzmq guarantees it), hence `@unchecked Sendable`. Close every socket before
/// `terminate()`; sockets set `ZMQ_LINGER`, so termination never waits on unsent messages.
public final class WireContext: @unchecked Sendable {
    let raw: UnsafeMutableRawPointer
    private var terminated = false

    public init() throws {
        guard let context = zmq_ctx_new() else { throw zmqFailure("creating a ZeroMQ context") }
        raw = context
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
