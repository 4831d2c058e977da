import CZeroMQ
import Foundation
import Reporting

/// Where a socket reports its handshakes: an `inproc://` endpoint for `zmq_socket_monitor`.
///
/// Put one in `SocketOptions.handshakeMonitor`; `WireSocket.init` attaches it before the socket connects, so no
/// handshake goes unreported. Then open a `HandshakeMonitor` on the same endpoint and context, on the thread that
/// owns the socket, before calling `connect`.
public struct HandshakeWatch: Sendable, Equatable {
    public let endpoint: String

    /// A fresh endpoint, unique in the process.
    public init() {
        endpoint = "inproc://bottleneck.handshake.\(UUID().uuidString)"
    }

    static let events =
        ZMQ_EVENT_HANDSHAKE_SUCCEEDED | ZMQ_EVENT_HANDSHAKE_FAILED_AUTH | ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL
        | ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL | ZMQ_EVENT_DISCONNECTED

    /// Starts libzmq's monitor on a raw socket; called once, by the thread that owns the socket.
    func attach(to socket: UnsafeMutableRawPointer) throws {
        if zmq_socket_monitor(socket, endpoint, Self.events) != 0 {
            throw zmqFailure("starting the handshake monitor at \(endpoint)")
        }
    }
}

/// One handshake event of a monitored socket.
public enum HandshakeEvent: Sendable, Equatable {
    case succeeded(endpoint: String)
    /// The server's ZAP handler answered `status` (400: key not allowed).
    case refusedByAuthentication(endpoint: String, status: UInt32)
    /// The peers disagree on the protocol; `code` is a `ZMQ_PROTOCOL_ERROR_*` (mechanism mismatch, bad crypto).
    case protocolFailure(endpoint: String, code: UInt32)
    /// The connection ended during the handshake without a reason (e.g. the server could not decrypt the hello:
    /// the client used the wrong server key).
    case failedWithoutDetail(endpoint: String, errno: UInt32)
    case disconnected(endpoint: String)
}

/// Why a worker's connection cannot succeed, in words for its operator, and what would fix it.
public struct HandshakeRefusal: ReportedError, Equatable {
    public let message: String
    public let remedy: Remedy?
    public var description: String { message }
    public var category: FailureCategory { .failedRun }

    public init(message: String, remedy: Remedy? = nil) {
        self.message = message
        self.remedy = remedy
    }
}

/// Reads the handshake events of one socket and decides whether the peer refuses this side for good.
///
/// Owns a PAIR socket connected to the `HandshakeWatch`'s endpoint: create, poll and close it on the thread that
/// owns the monitored socket (one socket, one thread). Decisions: a ZAP refusal or a mechanism mismatch is final at
/// once; handshakes that end without detail are final after `attemptsWithoutDetail` in a row spread over at least
/// `detaillessSpan` seconds, and only before any handshake has succeeded (one could be a coordinator restarting
/// mid-handshake, or a proxy in front of a coordinator not listening yet; such cuts persisting for seconds, before
/// any success, mean the server cannot decrypt us; after a success they are the network's doing).
public final class HandshakeMonitor: @unchecked Sendable {
    private var raw: UnsafeMutableRawPointer?
    private let message: UnsafeMutablePointer<zmq_msg_t>
    private let usesCurve: Bool
    private let clientKey: CurvePublicKey?
    private let attemptsWithoutDetail: Int
    private var failuresInARow = 0
    private var firstFailure: Date?
    /// Seconds the detail-less failures must span before they are taken for a refusal.
    static let detaillessSpan = 5.0
    /// Whether any handshake has succeeded since the monitor started.
    public private(set) var hasSucceeded = false

    /// `clientKey` is this side's key (nil: plaintext), for the messages.
    public init(
        context: WireContext, watch: HandshakeWatch, clientKey: CurvePublicKey?, attemptsWithoutDetail: Int = 3
    ) throws {
        message = .allocate(capacity: 1)
        guard let socket = zmq_socket(context.raw, ZMQ_PAIR) else {
            message.deallocate()
            throw zmqFailure("creating the handshake monitor's socket")
        }
        raw = socket
        usesCurve = clientKey != nil
        self.clientKey = clientKey
        self.attemptsWithoutDetail = attemptsWithoutDetail
        do {
            try setOption(socket, ZMQ_LINGER, 0, "ZMQ_LINGER")
            if zmq_connect(socket, watch.endpoint) != 0 { throw zmqFailure("connecting to \(watch.endpoint)") }
        } catch {
            zmq_close(socket)
            raw = nil
            message.deallocate()
            throw error
        }
    }

    deinit {
        close()
        message.deallocate()
    }

    public func close() {
        if let raw {
            zmq_close(raw)
            self.raw = nil
        }
    }

    /// The events waiting now; waits up to `timeoutMilliseconds` for the first one (0: do not wait).
    public func events(timeoutMilliseconds: Int = 0) throws -> [HandshakeEvent] {
        guard let raw else { return [] }
        var item = zmq_pollitem_t(socket: raw, fd: -1, events: Int16(ZMQ_POLLIN), revents: 0)
        let ready = zmq_poll(&item, 1, timeoutMilliseconds)
        if ready < 0 {
            if zmq_errno() == EINTR { return [] }
            throw zmqFailure("polling the handshake monitor")
        }
        guard ready > 0 else { return [] }
        var events: [HandshakeEvent] = []
        while let frames = receive(raw) {
            guard frames.count >= 2, frames[0].count == 6 else { continue }
            let number = UInt16(frames[0][0]) | UInt16(frames[0][1]) << 8
            let value = frames[0][2...5].reversed().reduce(UInt32(0)) { $0 << 8 | UInt32($1) }
            let endpoint = String(decoding: frames[1], as: UTF8.self)
            switch Int32(number) {
            case ZMQ_EVENT_HANDSHAKE_SUCCEEDED: events.append(.succeeded(endpoint: endpoint))
            case ZMQ_EVENT_HANDSHAKE_FAILED_AUTH:
                events.append(.refusedByAuthentication(endpoint: endpoint, status: value))
            case ZMQ_EVENT_HANDSHAKE_FAILED_PROTOCOL: events.append(.protocolFailure(endpoint: endpoint, code: value))
            case ZMQ_EVENT_HANDSHAKE_FAILED_NO_DETAIL:
                events.append(.failedWithoutDetail(endpoint: endpoint, errno: value))
            case ZMQ_EVENT_DISCONNECTED: events.append(.disconnected(endpoint: endpoint))
            default: break
            }
        }
        return events
    }

    /// Reads the waiting events and returns the refusal they prove, if any (see the type's rules).
    public func refusal(timeoutMilliseconds: Int = 0) throws -> HandshakeRefusal? {
        for event in try events(timeoutMilliseconds: timeoutMilliseconds) {
            if let refusal = judge(event) { return refusal }
        }
        return nil
    }

    /// Waits until the first handshake succeeds (nil) or is refused (the refusal); gives up after
    /// `timeoutMilliseconds` with a refusal saying nothing answered.
    public func awaitOutcome(timeoutMilliseconds: Int) throws -> HandshakeRefusal? {
        let deadline = Date().addingTimeInterval(Double(timeoutMilliseconds) / 1000)
        while !hasSucceeded {
            let left = Int(deadline.timeIntervalSinceNow * 1000)
            if left <= 0 {
                return HandshakeRefusal(message: "no handshake with the coordinator within \(timeoutMilliseconds) ms")
            }
            if let refusal = try refusal(timeoutMilliseconds: min(left, 100)) { return refusal }
        }
        return nil
    }

    private func judge(_ event: HandshakeEvent) -> HandshakeRefusal? {
        let keyText = clientKey.map { "this worker's key \($0.fingerprint)…" } ?? "this worker (no key)"
        switch event {
        case .succeeded:
            hasSucceeded = true
            failuresInARow = 0
            return nil
        case .disconnected:
            return nil
        case .refusedByAuthentication(let endpoint, let status):
            return HandshakeRefusal(
                message: "the coordinator at \(endpoint) refused \(keyText) (ZAP status \(status)): its key is not "
                    + "in the coordinator's allow-list of worker keys",
                remedy: .authorizeWorkerKey)
        case .protocolFailure(let endpoint, let code):
            if code == UInt32(bitPattern: ZMQ_PROTOCOL_ERROR_ZMTP_MECHANISM_MISMATCH) {
                return HandshakeRefusal(
                    message: usesCurve
                        ? "the coordinator at \(endpoint) does not use CURVE but this worker does"
                        : "the coordinator at \(endpoint) requires CURVE and this worker has no key",
                    remedy: usesCurve ? .matchCoordinatorSecurity : .giveWorkerKeys)
            }
            if code == UInt32(bitPattern: ZMQ_PROTOCOL_ERROR_ZMTP_CRYPTOGRAPHIC) {
                return HandshakeRefusal(
                    message: "the handshake with the coordinator at \(endpoint) failed cryptographically: the "
                        + "server key this worker holds is probably not the coordinator's public key",
                    remedy: .checkServerKey)
            }
            return countFailure(endpoint, detail: "protocol error 0x\(String(code, radix: 16))")
        case .failedWithoutDetail(let endpoint, _):
            return countFailure(endpoint, detail: "the coordinator closed the connection during the handshake")
        }
    }

    private func countFailure(_ endpoint: String, detail: String) -> HandshakeRefusal? {
        // Once a handshake with this coordinator has succeeded, it accepts this side's security: later handshakes
        // that end without detail are a bad network (cut connections), not a refusal.
        guard !hasSucceeded else { return nil }
        failuresInARow += 1
        let first = firstFailure ?? Date()
        firstFailure = first
        guard failuresInARow >= attemptsWithoutDetail, Date().timeIntervalSince(first) >= Self.detaillessSpan else {
            return nil
        }
        let what = "\(failuresInARow) handshakes in a row with the coordinator at \(endpoint) failed (\(detail))"
        if usesCurve {
            return HandshakeRefusal(
                message: what + ": is the server key this worker holds the coordinator's public key? "
                    + "The coordinator's log may say more",
                remedy: .checkServerKey)
        }
        // A plaintext client usually learns of a CURVE server as a mechanism mismatch, but when the server hangs
        // up first the client sees only the closed connection.
        return HandshakeRefusal(
            message: what + ": the coordinator probably requires CURVE and this worker has no key",
            remedy: .giveWorkerKeys)
    }

    private func receive(_ socket: UnsafeMutableRawPointer) -> [[UInt8]]? {
        var frames: [[UInt8]] = []
        while true {
            zmq_msg_init(message)
            defer { zmq_msg_close(message) }
            if zmq_msg_recv(message, socket, frames.isEmpty ? ZMQ_DONTWAIT : 0) < 0 { return nil }
            let size = zmq_msg_size(message)
            frames.append(size == 0 ? [] : Array(UnsafeRawBufferPointer(start: zmq_msg_data(message), count: size)))
            if zmq_msg_more(message) == 0 { return frames }
        }
    }
}
