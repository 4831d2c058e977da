import Crypto

/// A shard's rows as its part range holds them: `count` rows of `rowBytes` bytes in shard order, a skipped image's
/// row zeros, the others taken in order from the rows that travel (which leave the skipped images out).
public enum ShardRows {
    /// Lays `rows` out into `target` (`count · rowBytes` bytes), zeros for the offsets in `skipped`.
    public static func layOut(
        _ rows: UnsafeRawBufferPointer, rowBytes: Int, count: Int, skipped: Set<Int>,
        into target: UnsafeMutableRawBufferPointer
    ) {
        precondition(target.count == count * rowBytes, "the target does not hold the shard's rows")
        guard var next = target.baseAddress else { return }
        forEachRow(rows, rowBytes: rowBytes, count: count, skipped: skipped) { row in
            if let row {
                next.copyMemory(from: row.baseAddress!, byteCount: row.count)
                next += row.count
            } else {
                next.initializeMemory(as: UInt8.self, repeating: 0, count: rowBytes)
                next += rowBytes
            }
        }
    }

    /// The SHA-256 (hex) of the rows as laid out, without laying them out: `Checksum.sha256Hex` of `layOut`'s bytes.
    public static func sha256Hex(_ rows: UnsafeRawBufferPointer, rowBytes: Int, count: Int, skipped: Set<Int>)
        -> String
    {
        var hasher = SHA256()
        let zeros = [UInt8](repeating: 0, count: skipped.isEmpty ? 0 : rowBytes)
        forEachRow(rows, rowBytes: rowBytes, count: count, skipped: skipped) { row in
            if let row { hasher.update(bufferPointer: row) } else { hasher.update(data: zeros) }
        }
        return Checksum.hex(hasher.finalize())
    }

    /// Calls `body` for each row in shard order: the row's bytes, or nil for a skipped image (a row of zeros). Rows
    /// that follow one another without a skipped image between them come as one run, `body` then covering several.
    private static func forEachRow(
        _ rows: UnsafeRawBufferPointer, rowBytes: Int, count: Int, skipped: Set<Int>,
        _ body: (UnsafeRawBufferPointer?) -> Void
    ) {
        precondition(rows.count == (count - skipped.count) * rowBytes, "rows do not match the shard")
        var source = 0
        var offset = 0
        while offset < count {
            if skipped.contains(offset) {
                body(nil)
                offset += 1
                continue
            }
            var end = offset + 1
            while end < count, !skipped.contains(end) { end += 1 }
            let bytes = (end - offset) * rowBytes
            body(UnsafeRawBufferPointer(rebasing: rows[source..<(source + bytes)]))
            source += bytes
            offset = end
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
