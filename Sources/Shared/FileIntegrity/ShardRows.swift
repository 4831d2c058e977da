/// A shard's rows as its part range holds them: `count` rows of `rowBytes` bytes in shard order, a skipped image's
/// row zeros, the others taken in order from the rows that travel (which leave the skipped images out).
public enum ShardRows {
    /// Lays `rows` out into `target` (`count · rowBytes` bytes), zeros for the offsets in `skipped`.
    public static func layOut(
        _ rows: UnsafeRawBufferPointer, rowBytes: Int, count: Int, skipped: Set<Int>,
        into target: UnsafeMutableRawBufferPointer
    ) {
        precondition(rows.count == (count - skipped.count) * rowBytes, "rows do not match the shard")
        precondition(target.count == count * rowBytes, "the target does not hold the shard's rows")
        if skipped.isEmpty {
            target.copyMemory(from: rows)
            return
        }
        var source = 0
        for offset in 0..<count {
            let row = target.baseAddress! + offset * rowBytes
            if skipped.contains(offset) {
                row.initializeMemory(as: UInt8.self, repeating: 0, count: rowBytes)
            } else {
                row.copyMemory(from: rows.baseAddress! + source, byteCount: rowBytes)
                source += rowBytes
            }
        }
    }
}

/// A page-aligned buffer for `InPlaceWrite.writeDirect`, grown to the largest size asked for. Not for sharing
/// between threads: one per writing thread.
public final class DirectWriteBuffer {
    private var storage = UnsafeMutableRawBufferPointer(start: nil, count: 0)

    public init() {}

    deinit { storage.deallocate() }

    /// The buffer's first `count` bytes (their contents undefined).
    public func bytes(count: Int) -> UnsafeMutableRawBufferPointer {
        if storage.count < count {
            storage.deallocate()
            storage = .allocate(byteCount: count, alignment: InPlaceWrite.directMemoryAlignment)
        }
        return UnsafeMutableRawBufferPointer(rebasing: storage[0..<count])
    }
}
