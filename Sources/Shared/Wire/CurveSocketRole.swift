import CZeroMQ

/// How one socket takes part in CURVE: as the server that workers connect to, or as a client of it.
///
/// Applied by `WireSocket.init` through `SocketSecurity.curve`, before the socket binds or connects (libzmq reads
/// the options when a connection starts). The role is independent of bind/connect; here the coordinator's ROUTER
/// is the server and each worker's DEALER a client.
public enum CurveSocketRole: Sendable, Equatable {
    /// The coordinator's socket: decrypts with its key pair and asks the ZAP handler (`ZAPHandler`, bound on the
    /// same context BEFORE this socket binds) about each client, in `zapDomain`. Domain enforcement is on: while
    /// no ZAP handler answers, every client is refused rather than admitted.
    case server(keyPair: CurveKeyPair, zapDomain: String)
    /// A worker's socket: proves `keyPair` to the server and accepts only a server holding `serverKey`'s secret.
    case client(keyPair: CurveKeyPair, serverKey: CurvePublicKey)

    /// The ZAP domain the coordinator uses unless told otherwise.
    public static let defaultZAPDomain = "bottleneck"

    /// `ZMQ_ZAP_ENFORCE_DOMAIN`: in zmq.h's draft section, so not imported, but honoured by libzmq 4.3 builds
    /// (checked by reading it back).
    static let zapEnforceDomainOption: Int32 = 93

    /// Sets the CURVE options on a raw socket; called once, by the thread that owns the socket.
    func apply(to socket: UnsafeMutableRawPointer) throws {
        try CurveSupport.requireCurve()
        switch self {
        case .server(let keyPair, let zapDomain):
            try setOption(socket, ZMQ_CURVE_SERVER, 1, "ZMQ_CURVE_SERVER")
            try setCurveKey(socket, ZMQ_CURVE_SECRETKEY, keyPair.secretZ85, "ZMQ_CURVE_SECRETKEY")
            try setOption(socket, ZMQ_ZAP_DOMAIN, bytes: Array(zapDomain.utf8), "ZMQ_ZAP_DOMAIN")
            try setOption(socket, Self.zapEnforceDomainOption, 1, "ZMQ_ZAP_ENFORCE_DOMAIN")
            var enforced: Int32 = 0
            var size = MemoryLayout<Int32>.size
            if zmq_getsockopt(socket, Self.zapEnforceDomainOption, &enforced, &size) != 0 || enforced != 1 {
                throw WireError(
                    .zmq(code: zmq_errno()),
                    "libzmq \(WireContext.libraryVersion) does not keep ZMQ_ZAP_ENFORCE_DOMAIN; without it a "
                        + "missing ZAP handler would admit every client")
            }
        case .client(let keyPair, let serverKey):
            try setCurveKey(socket, ZMQ_CURVE_SERVERKEY, serverKey.z85, "ZMQ_CURVE_SERVERKEY")
            try setCurveKey(socket, ZMQ_CURVE_PUBLICKEY, keyPair.publicKey.z85, "ZMQ_CURVE_PUBLICKEY")
            try setCurveKey(socket, ZMQ_CURVE_SECRETKEY, keyPair.secretZ85, "ZMQ_CURVE_SECRETKEY")
        }
    }

    /// Sets a 40-character Z85 key option; the key itself never appears in an error.
    private func setCurveKey(_ socket: UnsafeMutableRawPointer, _ option: Int32, _ z85: String, _ name: String) throws {
        let status = z85.withCString { zmq_setsockopt(socket, option, $0, 40) }
        if status != 0 { throw zmqFailure("setting \(name)") }
    }
}
