/// The kind of ZeroMQ socket; the project uses ROUTER (coordinator) and DEALER (worker) only.
public enum SocketKind: Sendable {
    case router
    case dealer
}

/// How a socket authenticates and encrypts; applied in `WireSocket.init` next to the other options, so that socket
/// set-up stays in one place. Plaintext belongs on loopback only (`CurveBindPolicy`).
public enum SocketSecurity: Sendable, Equatable {
    case plaintext
    /// CURVE encryption and authentication; see `CurveSocketRole`.
    case curve(CurveSocketRole)
}

/// Every option the project sets on a socket, with the defaults it wants.
///
/// Times are milliseconds. `maxMessageSize` bounds each inbound frame in bytes (-1: unbounded); a peer sending a
/// larger frame is disconnected by libzmq before the application sees it.
public struct SocketOptions: Sendable {
    /// Milliseconds unsent messages are kept after `close()`; 0 so that closing never hangs.
    public var lingerMilliseconds: Int32 = 0
    /// ZMTP PING interval (transport-level heartbeat); 0 turns ZMTP heartbeats off.
    public var heartbeatIntervalMilliseconds: Int32 = 1000
    /// How long after a PING without any traffic the connection is considered dead.
    public var heartbeatTimeoutMilliseconds: Int32 = 5000
    /// Time-to-live announced to the peer in PINGs (rounded to deciseconds by libzmq).
    public var heartbeatTTLMilliseconds: Int32 = 10000
    public var maxMessageSize: Int64 = -1
    public var sendHighWaterMark: Int32 = 1000
    public var receiveHighWaterMark: Int32 = 1000
    /// DEALER: the identity the ROUTER sees; nil lets libzmq pick one.
    public var routingID: [UInt8]? = nil
    /// ROUTER: make a send to an unknown or vanished peer fail with `peerUnreachable` instead of a silent drop.
    public var routerMandatory: Bool = true
    /// ROUTER: a peer reconnecting with a routing id still held by a dead connection takes it over.
    public var routerHandover: Bool = true
    /// Queue messages only on completed connections: a send with no connected peer fails with `wouldBlock`
    /// instead of piling up messages for a peer that is not there.
    public var immediate: Bool = false
    public var reconnectIntervalMilliseconds: Int32 = 100
    public var reconnectIntervalMaxMilliseconds: Int32 = 2000
    public var security: SocketSecurity = .plaintext
    /// Reports this socket's handshakes to a `HandshakeMonitor` (workers: to notice a refusal).
    public var handshakeMonitor: HandshakeWatch? = nil

    public init() {}
}
