import COpenBLAS
import Foundation

/// OpenBLAS' process-wide thread count.
///
/// The thread count changes the last bits of a product (OpenBLAS partitions it differently), so every
/// process whose results must agree runs the same count; Bottleneck runs OpenBLAS on one thread everywhere
/// and parallelises with threads of its own.
public enum BLASThreads {
    /// The current count (`openblas_get_num_threads`).
    public static var current: Int { Int(openblas_get_num_threads()) }

    /// Sets the count for the whole process (`openblas_set_num_threads`); values below 1 mean 1.
    public static func set(_ count: Int) {
        openblas_set_num_threads(Int32(max(1, count)))
    }

    /// Serialises the sections that pin the count, so that two trainings in one process cannot restore each
    /// other's setting in the middle of a run.
    private static let lock = NSLock()

    /// Runs `body` with OpenBLAS pinned to `count` threads. One such section runs at a time per process.
    ///
    /// The count is left as it is afterwards: restoring a larger count could change the result bits of a
    /// conv base running at the same time in the same process.
    package static func withFixedCount<T>(_ count: Int, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        set(count)
        return try body()
    }
}
