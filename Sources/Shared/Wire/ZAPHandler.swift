import CZeroMQ
import Foundation

/// One answer of the ZAP handler, for the coordinator's log.
public struct ZAPDecision: Sendable, Equatable {
    public let allowed: Bool
    /// The client's public key (CURVE), nil for other mechanisms or malformed credentials.
    public let clientKey: CurvePublicKey?
    /// The client's IP address as libzmq reports it.
    public let address: String
    /// "CURVE", "NULL", "PLAIN".
    public let mechanism: String
    /// Why: "authorized (node2.pub)", "key not in the allow-list", "wrong ZAP domain …".
    public let reason: String

    /// A log line without any secret: the decision, the key's fingerprint and the peer address.
    public var logLine: String {
        let key = clientKey.map { "key \($0.fingerprint)…" } ?? "no CURVE key"
        return allowed
            ? "admitted worker \(key) from \(address): \(reason)"
            : "refused worker \(key) from \(address) (\(mechanism)): \(reason)"
    }
}

/// The set of worker public keys the coordinator admits: fixed, or the `*.pub` files of a directory.
///
/// A directory is read again when its modification time changes, so a worker is admitted by copying its `.pub`
/// file there while the coordinator runs. If re-reading fails (a malformed file was added), the previous list stays
/// and the error is reported through `ZAPHandler`'s decisions as the reason.
public final class ZAPAllowList: @unchecked Sendable {
    private let directory: String?
    private let lock = NSLock()
    private var keys: [CurvePublicKey: String]
    /// Keys admitted besides the directory's (the coordinator's own local workers); kept across re-reads.
    private var extraKeys: [CurvePublicKey: String] = [:]
    private var directoryStamp: Date?

    /// A fixed allow-list; the strings are the names shown in logs.
    public init(keys: [CurvePublicKey: String]) {
        directory = nil
        self.keys = keys
    }

    /// The `*.pub` files of `directory`; throws if it cannot be read or a `.pub` file is malformed.
    public init(directory: String) throws {
        self.directory = directory
        keys = [:]
        directoryStamp = nil
        try reloadIfChanged()
    }

    /// The number of keys admitted now.
    public var count: Int { lock.withLock { keys.merging(extraKeys) { $1 }.count } }

    /// Admits `key` too, under `name` in logs, whatever the directory holds.
    public func admit(_ key: CurvePublicKey, as name: String) {
        lock.withLock { extraKeys[key] = name }
    }

    /// The name (file) under which `key` is allowed, or nil.
    func lookUp(_ key: CurvePublicKey) throws -> String? {
        if let name = lock.withLock({ extraKeys[key] }) { return name }
        try reloadIfChanged()
        return lock.withLock { keys[key] }
    }

    private func reloadIfChanged() throws {
        guard let directory else { return }
        let stamp = (try? FileManager.default.attributesOfItem(atPath: directory))?[.modificationDate] as? Date
        if stamp != nil && stamp == lock.withLock({ directoryStamp }) { return }
        var fresh: [CurvePublicKey: String] = [:]
        for (file, key) in try CurvePublicKey.readAll(inDirectory: directory) {
            fresh[key] = (file as NSString).lastPathComponent
        }
        lock.withLock {
            keys = fresh
            directoryStamp = stamp
        }
    }
}

/// The ZAP handler (ZeroMQ RFC 27) of a coordinator: admits CURVE clients whose public key is allow-listed.
///
/// Owns a REP socket bound at `inproc://zeromq.zap.01` on the coordinator's context, served by a `Thread` of its
/// own (the socket's owning thread). Start it BEFORE the CURVE server socket binds, and stop it only AFTER that
/// socket is closed: the server socket enforces the ZAP domain, so while no handler answers every client is
/// refused. Replies 200 to an allow-listed key in the right domain, 400 to everything else; every decision goes to
/// `onDecision` (on the handler's thread), which should log `decision.logLine`. Call `stop()` before terminating
/// the context (the thread keeps the handler alive until then; a context termination also ends it).
public final class ZAPHandler: @unchecked Sendable {
    /// The endpoint libzmq sends ZAP requests to; one handler per context.
    public static let endpoint = "inproc://zeromq.zap.01"

    private let context: WireContext
    private let allowList: ZAPAllowList
    private let domain: String
    private let onDecision: @Sendable (ZAPDecision) -> Void
    private let lock = NSLock()
    private var stopping = false
    private let finished = DispatchSemaphore(value: 0)
    private var thread: Thread?

    /// Binds the handler's socket and starts answering; throws if the endpoint cannot be bound (another handler
    /// on the same context) — the server socket must not be opened then.
    public init(
        context: WireContext, allowList: ZAPAllowList, domain: String = CurveSocketRole.defaultZAPDomain,
        onDecision: @escaping @Sendable (ZAPDecision) -> Void
    ) throws {
        self.context = context
        self.allowList = allowList
        self.domain = domain
        self.onDecision = onDecision
        let ready = DispatchSemaphore(value: 0)
        let startError = StartError()
        let thread = Thread { [self] in
            serve(ready: ready, startError: startError)
        }
        thread.name = "bottleneck-zap"
        self.thread = thread
        thread.start()
        ready.wait()
        if let error = startError.error {
            finished.wait()
            lock.withLock { stopping = true }  // so that deinit does not wait for the thread again
            throw error
        }
    }

    /// Stops answering and closes the socket; returns when the handler's thread has finished. Idempotent.
    public func stop() {
        let alreadyStopping = lock.withLock {
            defer { stopping = true }
            return stopping
        }
        if alreadyStopping { return }
        finished.wait()
    }

    deinit { stop() }

    private final class StartError: @unchecked Sendable {
        var error: Error?
    }

    private var shouldStop: Bool { lock.withLock { stopping } }

    private func serve(ready: DispatchSemaphore, startError: StartError) {
        defer { finished.signal() }
        guard let socket = zmq_socket(context.raw, ZMQ_REP) else {
            startError.error = zmqFailure("creating the ZAP handler's socket")
            ready.signal()
            return
        }
        defer { zmq_close(socket) }
        do {
            try setOption(socket, ZMQ_LINGER, 0, "ZMQ_LINGER")
            if zmq_bind(socket, Self.endpoint) != 0 { throw zmqFailure("binding the ZAP handler at \(Self.endpoint)") }
        } catch {
            startError.error = error
            ready.signal()
            return
        }
        ready.signal()
        let message = UnsafeMutablePointer<zmq_msg_t>.allocate(capacity: 1)
        defer { message.deallocate() }
        while !shouldStop {
            var item = zmq_pollitem_t(socket: socket, fd: -1, events: Int16(ZMQ_POLLIN), revents: 0)
            let count = zmq_poll(&item, 1, 100)
            if count < 0 {
                if zmq_errno() == EINTR { continue }
                if zmq_errno() == ETERM { return }
                continue
            }
            if count == 0 { continue }
            guard let request = receiveAll(socket, message) else { continue }
            let (reply, decision) = answer(request)
            sendAll(socket, reply)
            if let decision { onDecision(decision) }
        }
    }

    /// The reply frames for a ZAP request, and the decision to report.
    ///
    /// Request (RFC 27): version "1.0", request id, domain, address, routing id, mechanism, credentials...
    /// Reply: version "1.0", request id, status code, status text, user id, metadata.
    func answer(_ frames: [[UInt8]]) -> (reply: [[UInt8]], decision: ZAPDecision?) {
        let text = { (bytes: [UInt8]) in String(decoding: bytes, as: UTF8.self) }
        guard frames.count >= 6, text(frames[0]) == "1.0" else {
            let requestID = frames.count > 1 ? frames[1] : []
            return (
                [Array("1.0".utf8), requestID, Array("500".utf8), Array("malformed ZAP request".utf8), [], []], nil
            )
        }
        let requestID = frames[1]
        let requestDomain = text(frames[2])
        let address = text(frames[3])
        let mechanism = text(frames[5])
        let key = mechanism == "CURVE" && frames.count >= 7 ? CurvePublicKey(bytes: frames[6]) : nil
        var allowed = false
        var reason: String
        if requestDomain != domain {
            reason = "wrong ZAP domain \"\(requestDomain)\", expected \"\(domain)\""
        } else if mechanism != "CURVE" {
            reason = "mechanism \(mechanism); only CURVE is accepted"
        } else if let key {
            do {
                if let name = try allowList.lookUp(key) {
                    allowed = true
                    reason = "authorized (\(name))"
                } else {
                    reason = "key not in the allow-list"
                }
            } catch {
                reason = "the allow-list cannot be read: \(error)"
            }
        } else {
            reason = "malformed CURVE credentials"
        }
        let status = allowed ? "200" : "400"
        let userID = allowed ? Array((key?.z85 ?? "").utf8) : []
        let reply = [
            Array("1.0".utf8), requestID, Array(status.utf8), Array((allowed ? "OK" : reason).utf8), userID, [],
        ]
        return (
            reply, ZAPDecision(allowed: allowed, clientKey: key, address: address, mechanism: mechanism, reason: reason)
        )
    }

    private func receiveAll(_ socket: UnsafeMutableRawPointer, _ message: UnsafeMutablePointer<zmq_msg_t>) -> [[UInt8]]?
    {
        var frames: [[UInt8]] = []
        while true {
            zmq_msg_init(message)
            defer { zmq_msg_close(message) }
            if zmq_msg_recv(message, socket, frames.isEmpty ? ZMQ_DONTWAIT : 0) < 0 { return nil }
            if frames.count < 16 {
                let size = zmq_msg_size(message)
                frames.append(size == 0 ? [] : Array(UnsafeRawBufferPointer(start: zmq_msg_data(message), count: size)))
            }
            if zmq_msg_more(message) == 0 { return frames }
        }
    }

    private func sendAll(_ socket: UnsafeMutableRawPointer, _ frames: [[UInt8]]) {
        for (index, frame) in frames.enumerated() {
            let flags = index < frames.count - 1 ? ZMQ_SNDMORE : 0
            _ = frame.withUnsafeBytes { zmq_send(socket, $0.baseAddress, $0.count, flags) }
        }
    }
}
