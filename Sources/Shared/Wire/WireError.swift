import Reporting

/// A failure of the wire: a ZeroMQ call, or a message that a peer sent and that this side refuses.
///
/// Errors of a peer's message (`malformed`, `protocolMismatch`, `oversized`) are values the receiving loop logs
/// and drops; they never end a job. Errors of this side's own sockets (`zmq`) are fatal to the socket.
public struct WireError: Error, CustomStringConvertible, Sendable, Equatable {
    public enum Reason: Sendable, Equatable {
        /// A ZeroMQ call failed; `code` is the errno ZeroMQ reported.
        case zmq(code: Int32)
        /// A ROUTER send found no connected peer with that routing id (`EHOSTUNREACH` under ROUTER_MANDATORY).
        case peerUnreachable
        /// A non-blocking send found the peer's queue full.
        case wouldBlock
        /// The message does not follow the protocol: bad magic, unknown kind, bad body or frames.
        case malformed
        /// The peer speaks another protocol version.
        case protocolMismatch(peerVersion: UInt16)
        /// A frame or the whole message is larger than this side accepts.
        case oversized
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { "wire: \(message)" }
}

extension WireError: ReportedError {
    public var category: FailureCategory {
        switch reason {
        case .zmq, .peerUnreachable, .wouldBlock: .failedRun
        case .malformed, .protocolMismatch, .oversized: .badInput
        }
    }
}
