import CZeroMQ

#if canImport(Glibc)
    import Glibc
#endif

/// One ZeroMQ socket: a multipart sender and receiver of byte frames.
///
/// ZeroMQ sockets are not thread-safe: a `WireSocket` must be created, used and closed by ONE thread, the thread
/// that owns it (the coordinator's event loop, a worker's I/O thread). `@unchecked Sendable` only lets the value
/// be handed to that thread once. Blocking calls (`receive` with a timeout, `poll`) must not run on Swift's
/// cooperative pool.
public final class WireSocket: @unchecked Sendable {
    public let kind: SocketKind
    private(set) var raw: UnsafeMutableRawPointer?
    private let message: UnsafeMutablePointer<zmq_msg_t>

    /// Creates the socket and applies every option in `options` (the one place where sockets are set up).
    public init(context: WireContext, kind: SocketKind, options: SocketOptions = SocketOptions()) throws {
        self.kind = kind
        message = .allocate(capacity: 1)
        guard let socket = zmq_socket(context.raw, kind == .router ? ZMQ_ROUTER : ZMQ_DEALER) else {
            message.deallocate()
            throw zmqFailure("creating a \(kind) socket")
        }
        raw = socket
        do {
            try setOption(socket, ZMQ_LINGER, options.lingerMilliseconds, "ZMQ_LINGER")
            try setOption(socket, ZMQ_HEARTBEAT_IVL, options.heartbeatIntervalMilliseconds, "ZMQ_HEARTBEAT_IVL")
            try setOption(
                socket, ZMQ_HEARTBEAT_TIMEOUT, options.heartbeatTimeoutMilliseconds, "ZMQ_HEARTBEAT_TIMEOUT")
            try setOption(socket, ZMQ_HEARTBEAT_TTL, options.heartbeatTTLMilliseconds, "ZMQ_HEARTBEAT_TTL")
            try setOption64(socket, ZMQ_MAXMSGSIZE, options.maxMessageSize, "ZMQ_MAXMSGSIZE")
            try setOption(socket, ZMQ_SNDHWM, options.sendHighWaterMark, "ZMQ_SNDHWM")
            try setOption(socket, ZMQ_RCVHWM, options.receiveHighWaterMark, "ZMQ_RCVHWM")
            try setOption(socket, ZMQ_RECONNECT_IVL, options.reconnectIntervalMilliseconds, "ZMQ_RECONNECT_IVL")
            try setOption(
                socket, ZMQ_RECONNECT_IVL_MAX, options.reconnectIntervalMaxMilliseconds, "ZMQ_RECONNECT_IVL_MAX")
            try setOption(socket, ZMQ_IMMEDIATE, options.immediate ? 1 : 0, "ZMQ_IMMEDIATE")
            if let id = options.routingID { try setOption(socket, ZMQ_ROUTING_ID, bytes: id, "ZMQ_ROUTING_ID") }
            if kind == .router {
                try setOption(socket, ZMQ_ROUTER_MANDATORY, options.routerMandatory ? 1 : 0, "ZMQ_ROUTER_MANDATORY")
                try setOption(socket, ZMQ_ROUTER_HANDOVER, options.routerHandover ? 1 : 0, "ZMQ_ROUTER_HANDOVER")
            }
            switch options.security {
            case .plaintext: break
            case .curve(let role): try role.apply(to: socket)
            }
            if let watch = options.handshakeMonitor { try watch.attach(to: socket) }
        } catch {
            zmq_close(socket)
            message.deallocate()
            raw = nil
            throw error
        }
    }

    deinit {
        close()
        message.deallocate()
    }

    private func socket() throws -> UnsafeMutableRawPointer {
        guard let raw else { throw WireError(.zmq(code: ENOTSOCK), "the \(kind) socket is closed") }
        return raw
    }

    /// Binds to `endpoint` ("tcp://127.0.0.1:*", "ipc:///tmp/x.sock") and returns the endpoint actually bound,
    /// with the port chosen when the request had `*`.
    @discardableResult
    public func bind(_ endpoint: String) throws -> String {
        let socket = try socket()
        if zmq_bind(socket, endpoint) != 0 { throw zmqFailure("binding \(endpoint)") }
        return try stringOption(socket, ZMQ_LAST_ENDPOINT, "ZMQ_LAST_ENDPOINT")
    }

    public func connect(_ endpoint: String) throws {
        let socket = try socket()
        if zmq_connect(socket, endpoint) != 0 { throw zmqFailure("connecting to \(endpoint)") }
    }

    /// Sends `frames` as one multipart message without blocking.
    ///
    /// Throws `peerUnreachable` when a ROUTER's first frame names no connected peer, `wouldBlock` when the peer's
    /// queue is full. A message is sent whole or not at all (ZeroMQ's atomic multipart delivery).
    public func send(_ frames: [[UInt8]]) throws {
        let socket = try socket()
        precondition(!frames.isEmpty, "a message has at least one frame")
        for (index, frame) in frames.enumerated() {
            var flags = ZMQ_DONTWAIT
            if index < frames.count - 1 { flags |= ZMQ_SNDMORE }
            let sent = frame.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, flags) }
            if sent < 0 {
                let code = zmq_errno()
                if code == EHOSTUNREACH { throw WireError(.peerUnreachable, "no connected peer with that routing id") }
                if code == EAGAIN { throw WireError(.wouldBlock, "the peer's queue is full") }
                throw WireError(.zmq(code: code), "sending a \(frames.count)-frame message: \(zmqErrorText(code))")
            }
        }
    }

    /// Sends `head` and then `payload` as the last frame of one multipart message without blocking, and without
    /// copying the payload: ZeroMQ keeps a reference to it until its I/O thread has written it out. Throws as
    /// `send(_:)`; a message is sent whole or not at all.
    public func send(_ head: [[UInt8]], payload: WireBuffer) throws {
        let socket = try socket()
        for frame in head {
            let sent = frame.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, ZMQ_DONTWAIT | ZMQ_SNDMORE) }
            if sent < 0 { throw sendFailure(frames: head.count + 1) }
        }
        var message = zmq_msg_t()
        let hint = Unmanaged.passRetained(payload).toOpaque()
        // Called by ZeroMQ (any thread) once the frame is written out or dropped: the reference taken here goes.
        let release: @convention(c) (UnsafeMutableRawPointer?, UnsafeMutableRawPointer?) -> Void = { _, hint in
            if let hint { Unmanaged<WireBuffer>.fromOpaque(hint).release() }
        }
        guard zmq_msg_init_data(&message, payload.baseAddress, payload.count, release, hint) == 0 else {
            Unmanaged<WireBuffer>.fromOpaque(hint).release()
            throw zmqFailure("preparing a \(payload.count)-byte frame")
        }
        if zmq_msg_send(&message, socket, ZMQ_DONTWAIT) < 0 {
            let failure = sendFailure(frames: head.count + 1)
            zmq_msg_close(&message)  // releases the reference
            throw failure
        }
    }

    private func sendFailure(frames: Int) -> WireError {
        let code = zmq_errno()
        if code == EHOSTUNREACH { return WireError(.peerUnreachable, "no connected peer with that routing id") }
        if code == EAGAIN { return WireError(.wouldBlock, "the peer's queue is full") }
        return WireError(.zmq(code: code), "sending a \(frames)-frame message: \(zmqErrorText(code))")
    }

    /// Waits up to `timeoutMilliseconds` (0: do not wait, -1: forever) until a message can be received.
    public func waitReadable(timeoutMilliseconds: Int) throws -> Bool {
        let socket = try socket()
        var item = zmq_pollitem_t(socket: socket, fd: -1, events: Int16(ZMQ_POLLIN), revents: 0)
        let count = zmq_poll(&item, 1, timeoutMilliseconds)
        if count < 0 {
            if zmq_errno() == EINTR { return false }
            throw zmqFailure("polling the \(kind) socket")
        }
        return count > 0 && (item.revents & Int16(ZMQ_POLLIN)) != 0
    }

    /// Receives one whole multipart message if one is waiting, else returns nil without blocking.
    ///
    /// A message with more than `maxFrames` frames is read to its end and reported as `oversized`, so that the
    /// socket stays in step with message boundaries.
    public func receive(maxFrames: Int = 4096) throws -> [[UInt8]]? {
        let socket = try socket()
        var frames: [[UInt8]] = []
        var tooMany = false
        while true {
            zmq_msg_init(message)
            defer { zmq_msg_close(message) }
            if zmq_msg_recv(message, socket, frames.isEmpty && !tooMany ? ZMQ_DONTWAIT : 0) < 0 {
                let code = zmq_errno()
                if code == EAGAIN && frames.isEmpty && !tooMany { return nil }
                if code == EINTR && frames.isEmpty && !tooMany { return nil }
                throw WireError(.zmq(code: code), "receiving from the \(kind) socket: \(zmqErrorText(code))")
            }
            if frames.count < maxFrames {
                let size = zmq_msg_size(message)
                let data = zmq_msg_data(message)!
                frames.append(Array(UnsafeRawBufferPointer(start: data, count: size)))
            } else {
                tooMany = true
            }
            if zmq_msg_more(message) == 0 { break }
        }
        if tooMany { throw WireError(.oversized, "a message with more than \(maxFrames) frames") }
        return frames
    }

    /// Closes the socket; with LINGER 0 pending messages are dropped and the call does not block.
    public func close() {
        if let raw {
            zmq_close(raw)
            self.raw = nil
        }
    }
}
