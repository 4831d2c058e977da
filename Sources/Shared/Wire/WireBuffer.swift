import CZeroMQ

/// Bytes that `WireSocket.send(_:payload:)` hands to ZeroMQ without a copy: the socket's I/O thread reads them
/// while it writes the message out, then drops its reference. One buffer may go out in several messages at once.
///
/// Fill it (`withUnsafeMutableBytes`) before the first send and never after: from then on other threads read it.
/// `@unchecked Sendable`: the memory is written only by its creator before it is shared, then only read, and freed
/// once by `deinit` when the last reference (a Swift one or one held for a message in flight) goes.
public final class WireBuffer: @unchecked Sendable {
    private let storage: UnsafeMutableRawBufferPointer

    /// A buffer of `count` bytes, uninitialised.
    public init(count: Int) {
        storage = .allocate(byteCount: max(count, 1), alignment: 64)
        self.count = count
    }

    deinit { storage.deallocate() }

    /// Its size in bytes.
    public let count: Int

    /// Writes the bytes; call before the buffer is first sent.
    public func withUnsafeMutableBytes<R>(_ body: (UnsafeMutableRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeMutableRawBufferPointer(rebasing: storage[0..<count]))
    }

    /// Reads the bytes.
    public func withUnsafeBytes<R>(_ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        try body(UnsafeRawBufferPointer(rebasing: storage[0..<count]))
    }

    var baseAddress: UnsafeMutableRawPointer { storage.baseAddress! }
}
