import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A small TCP proxy that makes a bad network between workers and a coordinator, for tests.
///
/// Listens on 127.0.0.1 (an ephemeral port), forwards each connection to `upstream`, and on the way delays chunks,
/// stalls, and resets connections (some mid-message), as `Faults` says. Faults are drawn from a seeded generator so
/// a run is repeatable in kind. Each connection has two pump threads; `stop()` closes everything.
public final class FaultProxy: @unchecked Sendable {
    public struct Faults: Sendable {
        /// Added to every forwarded chunk, milliseconds.
        public var latencyMilliseconds: Int = 0
        /// Chance per chunk of a stall of `stallMilliseconds`.
        public var stallProbability: Double = 0
        public var stallMilliseconds: Int = 0
        /// Chance per chunk that the connection is reset (RST) after forwarding only part of the chunk.
        public var resetProbability: Double = 0
        /// Stop injecting resets after this many, so that the job can finish.
        public var maxResets: Int = 3
        public var seed: UInt64 = 1
        /// The first `cutConnections` connections are reset after `cutAfterBytes` bytes from upstream: a cut in
        /// the middle of whatever message is passing then, guaranteed rather than left to chance.
        public var cutConnections: Int = 0
        public var cutAfterBytes: Int = 0
        /// Bandwidth from upstream to the clients, bytes per second, shared by all connections (one congested
        /// link); 0: unlimited.
        public var downstreamBytesPerSecond: Int = 0
        public init() {}
    }

    public let port: Int
    private let upstreamPort: Int
    private let faults: Faults
    private let listener: Int32
    private let lock = NSLock()
    private var sockets: Set<Int32> = []
    private var stopped = false
    private var random: UInt64
    private var resets = 0
    public private(set) var connections = 0
    private var downstreamBytes = 0
    /// When the shared downstream link is free again (with `downstreamBytesPerSecond`).
    private var linkFreeAt = Date.distantPast

    /// Bytes forwarded from upstream to the clients so far, over all connections.
    public var bytesFromUpstream: Int { lock.withLock { downstreamBytes } }

    public var resetCount: Int { lock.withLock { resets } }

    public init(upstreamPort: Int, faults: Faults) throws {
        self.upstreamPort = upstreamPort
        self.faults = faults
        random = faults.seed | 1
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var one: Int32 = 1
        setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, socklen_t(MemoryLayout<Int32>.size))
        var address = Self.loopback(port: 0)
        var length = socklen_t(MemoryLayout<sockaddr_in>.size)
        let bound = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
        }
        guard bound == 0, listen(fd, 128) == 0 else {
            close(fd)
            throw ProxyError(message: "cannot listen: errno \(errno)")
        }
        _ = withUnsafeMutablePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
        }
        listener = fd
        port = Int(UInt16(bigEndian: address.sin_port))
        let thread = Thread { [self] in acceptLoop() }
        thread.start()
    }

    public struct ProxyError: Error { public let message: String }

    deinit { stop() }

    public func stop() {
        lock.lock()
        let wasStopped = stopped
        stopped = true
        let open = sockets
        sockets.removeAll()
        lock.unlock()
        if wasStopped { return }
        shutdown(listener, Int32(SHUT_RDWR))
        close(listener)
        for fd in open {
            shutdown(fd, Int32(SHUT_RDWR))
            close(fd)
        }
    }

    private static func loopback(port: Int) -> sockaddr_in {
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        return address
    }

    private func nextUnit() -> Double {
        lock.lock()
        defer { lock.unlock() }
        random ^= random << 13
        random ^= random >> 7
        random ^= random << 17
        return Double(random >> 11) / Double(1 << 53)
    }

    private func acceptLoop() {
        while true {
            let client = accept(listener, nil, nil)
            if client < 0 {
                if lock.withLock({ stopped }) { return }
                if errno == EINTR { continue }
                return
            }
            let upstream = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            var address = Self.loopback(port: upstreamPort)
            let connected = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    connect(upstream, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
                }
            }
            if connected != 0 {
                close(client)
                close(upstream)
                continue
            }
            lock.lock()
            connections += 1
            sockets.insert(client)
            sockets.insert(upstream)
            lock.unlock()
            let link = Link()
            if connections <= faults.cutConnections { link.cutAfter = faults.cutAfterBytes }
            Thread { [self] in pump(from: client, to: upstream, link: link) }.start()
            Thread { [self] in pump(from: upstream, to: client, link: link, cutAfter: link.cutAfter, downstream: true) }
                .start()
        }
    }

    /// Counts `bytes` sent downstream and, with a bandwidth limit, waits until the shared link has carried them.
    private func throttle(_ bytes: Int) {
        let rate = Double(faults.downstreamBytesPerSecond)
        let until: Date? = lock.withLock {
            downstreamBytes += bytes
            guard rate > 0 else { return nil }
            linkFreeAt = max(linkFreeAt, Date()).addingTimeInterval(Double(bytes) / rate)
            return linkFreeAt
        }
        if let until, until > Date() { Thread.sleep(until: until) }
    }

    /// Both directions of one proxied connection; the sockets close when both pumps have finished.
    private final class Link: @unchecked Sendable {
        var pumpsRunning = 2
        /// Bytes from upstream after which this connection is cut, or nil.
        var cutAfter: Int?
    }

    private func pump(from source: Int32, to target: Int32, link: Link, cutAfter: Int? = nil, downstream: Bool = false)
    {
        var buffer = [UInt8](repeating: 0, count: 16 << 10)
        var reset = false
        var forwarded = 0
        while true {
            let count = buffer.withUnsafeMutableBytes { recv(source, $0.baseAddress, $0.count, 0) }
            if count <= 0 {
                reset = count < 0
                break
            }
            if faults.latencyMilliseconds > 0 { usleep(UInt32(faults.latencyMilliseconds * 1000)) }
            if faults.stallProbability > 0 && nextUnit() < faults.stallProbability {
                usleep(UInt32(faults.stallMilliseconds * 1000))
            }
            var limit = count
            if let cutAfter, forwarded + count > cutAfter {
                lock.withLock { resets += 1 }
                reset = true
                limit = cutAfter - forwarded
            } else if faults.resetProbability > 0 && nextUnit() < faults.resetProbability {
                lock.lock()
                if resets < faults.maxResets {
                    resets += 1
                    reset = true
                    limit = count / 2
                }
                lock.unlock()
            }
            var sent = 0
            while sent < limit {
                let written = buffer.withUnsafeBytes {
                    send(target, $0.baseAddress! + sent, limit - sent, Int32(MSG_NOSIGNAL))
                }
                if written <= 0 { break }
                sent += written
            }
            forwarded += sent
            if downstream { throttle(sent) }
            if sent < limit { reset = true }
            if reset { break }
        }
        if reset {
            // An abortive close (RST) on both sides, as a broken network leaves them; the other pump then ends too.
            var linger = Glibc.linger(l_onoff: 1, l_linger: 0)
            for fd in [source, target] {
                setsockopt(fd, SOL_SOCKET, SO_LINGER, &linger, socklen_t(MemoryLayout<Glibc.linger>.size))
                shutdown(fd, Int32(SHUT_RDWR))
            }
        } else {
            // An orderly end: pass the FIN on and let the other direction drain.
            shutdown(target, Int32(SHUT_WR))
        }
        lock.lock()
        link.pumpsRunning -= 1
        let last = link.pumpsRunning == 0
        let owned = last && sockets.remove(source) != nil
        let ownedTarget = last && sockets.remove(target) != nil
        lock.unlock()
        if owned { close(source) }
        if ownedTarget { close(target) }
    }
}
