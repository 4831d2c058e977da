import COpenBLAS
import Foundation

/// Row-major single-precision GEMM through OpenBLAS: `C = alpha · op(A) · op(B) + beta · C`.
///
/// `op(A)` is `[m, k]`, `op(B)` is `[k, n]`, `C` is `[m, n]`; all row-major and contiguous, so the leading
/// dimension of each stored matrix is its stored column count. Results are deterministic for a fixed
/// OpenBLAS thread count (OpenBLAS splits `m`/`n` among threads and keeps the `k` order), which
/// `BLASThreads.withFixedCount` pins while training.
@inline(__always)
func sgemm(
    transposeA: Bool, transposeB: Bool, m: Int, n: Int, k: Int, alpha: Float = 1,
    _ a: UnsafePointer<Float>, _ b: UnsafePointer<Float>, beta: Float = 0, _ c: UnsafeMutablePointer<Float>
) {
    let lda = transposeA ? m : k
    let ldb = transposeB ? k : n
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda), b, blasint(ldb), beta, c, blasint(n))
}

/// OpenBLAS' process-wide thread count.
enum BLASThreads {
    static var current: Int { Int(openblas_get_num_threads()) }

    /// Serialises the sections that pin the count, so that two trainings in one process cannot restore each
    /// other's setting in the middle of a run.
    private static let lock = NSLock()

    /// Runs `body` with OpenBLAS pinned to `count` threads, restoring the previous count afterwards. One such
    /// section runs at a time per process; other code must not change the count meanwhile.
    static func withFixedCount<T>(_ count: Int, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        let previous = openblas_get_num_threads()
        openblas_set_num_threads(Int32(max(1, count)))
        defer { openblas_set_num_threads(previous) }
        return try body()
    }
}
