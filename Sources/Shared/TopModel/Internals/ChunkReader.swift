import Foundation

/// Reads a list of row chunks on its own thread, one chunk ahead of the consumer, so that reading the
/// next chunk (HDF5 hyperslab + finite check) overlaps training on the current one.
///
/// Only the reader thread calls `read` while it runs; `finish()` (also on errors) stops it and waits for it
/// to end, so the source is free for the caller again afterwards. At most two chunks are in memory.
/// Every mutable field is read and written under `condition`, which is what makes `@unchecked Sendable` safe.
final class ChunkReader: @unchecked Sendable {
    private let condition = NSCondition()
    private var ready: [Int: Result<[Float], Error>] = [:]
    private var wanted = 0
    private var cancelled = false
    private var running = true

    init(chunks: [Range<Int>], read: @escaping @Sendable (Range<Int>) throws -> [Float]) {
        let thread = Thread { [self] in
            for (index, rows) in chunks.enumerated() {
                condition.lock()
                while !cancelled && index > wanted + 1 { condition.wait() }
                let stop = cancelled
                condition.unlock()
                if stop { break }
                let result = Result { try read(rows) }
                condition.lock()
                ready[index] = result
                condition.broadcast()
                condition.unlock()
                if case .failure = result { break }
            }
            condition.lock()
            running = false
            condition.broadcast()
            condition.unlock()
        }
        thread.name = "topmodel-chunk-reader"
        thread.start()
    }

    /// Chunk `index` (requested in order 0, 1, 2, …), waiting for the reader when it is not ready yet.
    func take(_ index: Int) throws -> [Float] {
        condition.lock()
        defer { condition.unlock() }
        wanted = index
        condition.broadcast()
        while ready[index] == nil {
            guard running else { throw TopModelError.badFeatures("chunk reader stopped before chunk \(index)") }
            condition.wait()
        }
        return try ready.removeValue(forKey: index)!.get()
    }

    /// Stops the reader and waits for its thread to end.
    func finish() {
        condition.lock()
        cancelled = true
        condition.broadcast()
        while running { condition.wait() }
        ready.removeAll()
        condition.unlock()
    }
}
