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

    /// Runs `body` with OpenBLAS pinned to `count` threads. One such section runs at a time per process.
    ///
    /// The count is left as it is afterwards: Bottleneck runs OpenBLAS single-threaded everywhere (the
    /// conv base does too) and parallelises with threads of its own, so restoring a larger count could
    /// change the result bits of a conv base running at the same time in the same process.
    static func withFixedCount<T>(_ count: Int, _ body: () throws -> T) rethrows -> T {
        lock.lock()
        defer { lock.unlock() }
        openblas_set_num_threads(Int32(max(1, count)))
        return try body()
    }
}
