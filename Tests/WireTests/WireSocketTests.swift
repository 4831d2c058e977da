import Foundation
import Testing
import Wire

#if canImport(Glibc)
    import Glibc
#endif

/// Real ZeroMQ sockets on loopback; every test makes its own context and ephemeral endpoint.
@Suite("Wire sockets")
struct WireSocketTests {
    /// Receives one message within `timeout` seconds.
    private func receive(_ socket: WireSocket, timeout: Double = 5) throws -> [[UInt8]]? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try socket.waitReadable(timeoutMilliseconds: 50), let frames = try socket.receive() { return frames }
        }
        return nil
    }

    @Test("a DEALER and a ROUTER exchange protocol messages over TCP and IPC, large frames intact")
    func routerDealerRoundTrip() throws {
        let context = try WireContext()
        defer { context.terminate() }
        for endpoint in ["tcp://127.0.0.1:*", "ipc:///tmp/bottleneck-wire-test-\(UUID().uuidString.prefix(8)).sock"] {
            let router = try WireSocket(context: context, kind: .router)
            defer { router.close() }
            let bound = try router.bind(endpoint)
            #expect(!bound.hasSuffix(":*"), "the chosen port is reported: \(bound)")
            var options = SocketOptions()
            options.routingID = Array("worker-1".utf8)
            let dealer = try WireSocket(context: context, kind: .dealer, options: options)
            defer { dealer.close() }
            try dealer.connect(bound)

            let hello = WireMessage.hello(Hello(workerName: "w", pid: 1, threads: 1))
            try dealer.send(WireCodec.encode(hello))
            let received = try #require(try receive(router))
            #expect(received[0] == Array("worker-1".utf8))
            #expect(try WireCodec.decode(Array(received.dropFirst())) == hello)

            let big = (0..<(3 << 20)).map { UInt8(truncatingIfNeeded: $0 &* 31) }
            let weights = WireMessage.weights(
                WeightsTransfer(sha256: String(repeating: "0", count: 64), size: big.count), bytes: big)
            try router.send([received[0]] + WireCodec.encode(weights))
            let reply = try #require(try receive(dealer))
            #expect(try WireCodec.decode(reply) == weights)
        }
    }

    @Test("a ROUTER send to an unknown peer fails loudly instead of vanishing")
    func routerMandatory() throws {
        let context = try WireContext()
        defer { context.terminate() }
        let router = try WireSocket(context: context, kind: .router)
        defer { router.close() }
        try router.bind("tcp://127.0.0.1:*")
        #expect(throws: WireError.self) {
            try router.send([Array("nobody".utf8)] + WireCodec.encode(.heartbeat(Heartbeat())))
        }
        do {
            try router.send([Array("nobody".utf8)] + WireCodec.encode(.heartbeat(Heartbeat())))
        } catch let error as WireError {
            #expect(error.reason == .peerUnreachable)
        }
    }

    @Test("closing sockets with unsent messages never hangs")
    func closeDoesNotHang() throws {
        let done = DispatchSemaphore(value: 0)
        let thread = Thread {
            do {
                let context = try WireContext()
                let dealer = try WireSocket(context: context, kind: .dealer)
                // Nothing listens here; the messages stay queued.
                try dealer.connect("tcp://127.0.0.1:9")
                for _ in 0..<10 { try? dealer.send(WireCodec.encode(.heartbeat(Heartbeat()))) }
                dealer.close()
                context.terminate()
            } catch {}
            done.signal()
        }
        thread.start()
        #expect(done.wait(timeout: .now() + 10) == .success)
    }

    @Test("a frame over the maximum message size never reaches the application")
    func maxMessageSize() throws {
        let context = try WireContext()
        defer { context.terminate() }
        var options = SocketOptions()
        options.maxMessageSize = 1000
        let router = try WireSocket(context: context, kind: .router, options: options)
        defer { router.close() }
        let bound = try router.bind("tcp://127.0.0.1:*")
        let dealer = try WireSocket(context: context, kind: .dealer)
        defer { dealer.close() }
        try dealer.connect(bound)
        try dealer.send([[UInt8](repeating: 1, count: 5000)])
        #expect(try receive(router, timeout: 1) == nil)

        let small = try WireSocket(context: context, kind: .dealer)
        defer { small.close() }
        try small.connect(bound)
        try small.send(WireCodec.encode(.heartbeat(Heartbeat())))
        #expect(try receive(router) != nil, "the socket still serves other peers")
    }
}
