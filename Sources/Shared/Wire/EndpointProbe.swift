import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Finds out at once why an endpoint cannot be reached, which ZeroMQ does not say: it connects in the
/// background and retries quietly.
///
/// `tcp://HOST:PORT`: the host is resolved (`getaddrinfo`), then a plain TCP connection is tried and closed (a
/// peer sees a connection that ends before the ZeroMQ handshake, which ZeroMQ ignores). `ipc://PATH`: the socket
/// file must exist and accept a connection. Abstract `ipc://@NAME` endpoints and other transports are not probed.
public enum EndpointProbe {
    /// Why `endpoint` cannot be reached, or nil when a connection succeeded, took longer than
    /// `timeoutMilliseconds`, or the endpoint is not probed.
    public enum Failure: Sendable, Equatable {
        /// The host name does not resolve; retrying is unlikely to help.
        case unresolvable(String)
        /// Nothing accepts connections there now (refused, unreachable); the coordinator may start later.
        case unreachable(String)

        public var message: String {
            switch self {
            case .unresolvable(let text), .unreachable(let text): text
            }
        }
    }

    public static func probe(_ endpoint: String, timeoutMilliseconds: Int32 = 2000) -> Failure? {
        if endpoint.hasPrefix("tcp://") {
            return probeTCP(endpoint, String(endpoint.dropFirst(6)), timeoutMilliseconds)
        }
        if endpoint.hasPrefix("ipc://"), !endpoint.hasPrefix("ipc://@") {
            return probeIPC(endpoint, String(endpoint.dropFirst(6)))
        }
        return nil
    }

    private static func probeTCP(_ endpoint: String, _ address: String, _ timeout: Int32) -> Failure? {
        // HOST:PORT, [IPv6]:PORT; a "source;" prefix is ZeroMQ's and is left to ZeroMQ.
        guard !address.contains(";"), let colon = address.lastIndex(of: ":") else { return nil }
        var host = String(address[..<colon])
        let port = String(address[address.index(after: colon)...])
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host == "*" || host.isEmpty { return nil }
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        let status = getaddrinfo(host, port, &hints, &list)
        guard status == 0, let first = list else {
            let reason = String(cString: gai_strerror(status))
            return .unresolvable("cannot resolve the host '\(host)' of \(endpoint): \(reason)")
        }
        defer { freeaddrinfo(list) }
        let fd = socket(first.pointee.ai_family, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return connectOutcome(fd, first.pointee.ai_addr, first.pointee.ai_addrlen, endpoint, timeout)
    }

    private static func probeIPC(_ endpoint: String, _ path: String) -> Failure? {
        guard FileManager.default.fileExists(atPath: path) else {
            return .unreachable("cannot connect to \(endpoint): no socket at \(path) (is the coordinator running?)")
        }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return nil }
        withUnsafeMutableBytes(of: &address.sun_path) { buffer in
            for (index, byte) in bytes.enumerated() { buffer[index] = byte }
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        return withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connectOutcome(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size), endpoint, 2000)
            }
        }
    }

    /// Connects `fd` without blocking longer than `timeout` ms.
    private static func connectOutcome(
        _ fd: Int32, _ address: UnsafePointer<sockaddr>, _ length: socklen_t, _ endpoint: String, _ timeout: Int32
    ) -> Failure? {
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK)
        var code: Int32 = 0
        if connect(fd, address, length) != 0 {
            guard errno == EINPROGRESS else {
                return .unreachable("cannot connect to \(endpoint): \(String(cString: strerror(errno)))")
            }
            var descriptor = pollfd(fd: fd, events: Int16(POLLOUT), revents: 0)
            guard poll(&descriptor, 1, timeout) == 1 else { return nil }
            var size = socklen_t(MemoryLayout<Int32>.size)
            getsockopt(fd, SOL_SOCKET, SO_ERROR, &code, &size)
        }
        guard code == 0 else {
            return .unreachable("cannot connect to \(endpoint): \(String(cString: strerror(code)))")
        }
        return nil
    }
}
