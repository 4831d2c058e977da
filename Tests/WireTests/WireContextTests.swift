import Testing
import Wire

@Suite("Wire context")
struct WireContextTests {
    @Test("I/O threads follow the expected traffic: one per GB/s, one per 250 MB/s with CURVE, within bounds")
    func ioThreadsFromTraffic() throws {
        #expect(WireContext.ioThreads(bytesPerSecond: 0, curve: false, maximum: 4) == 1)
        #expect(WireContext.ioThreads(bytesPerSecond: 900e6, curve: false, maximum: 4) == 1)
        #expect(WireContext.ioThreads(bytesPerSecond: 1.5e9, curve: false, maximum: 4) == 2)
        #expect(WireContext.ioThreads(bytesPerSecond: 600e6, curve: true, maximum: 4) == 3)
        #expect(WireContext.ioThreads(bytesPerSecond: 100e9, curve: true, maximum: 4) == 4)
        #expect(WireContext.ioThreads(bytesPerSecond: 100e9, curve: true, maximum: 0) == 1)
        // A context with several I/O threads makes sockets as usual.
        let context = try WireContext(ioThreads: 3)
        let socket = try WireSocket(context: context, kind: .router, options: SocketOptions())
        socket.close()
        context.terminate()
    }
}
