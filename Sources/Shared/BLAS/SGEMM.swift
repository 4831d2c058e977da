import COpenBLAS

/// Row-major single-precision GEMM through OpenBLAS: `C = alpha · op(A) · op(B) + beta · C`.
///
/// `op(A)` is `[m, k]`, `op(B)` is `[k, n]`, `C` is `[m, n]`, all row-major. A leading dimension left nil is
/// the stored matrix's column count (a contiguous matrix); pass one to multiply a block of a wider matrix.
/// Results are deterministic for a fixed OpenBLAS thread count and kernel set (see `BLASThreads`,
/// `BLASKernels`). Inlined into the caller: no cost over calling `cblas_sgemm` directly.
@inlinable
package func sgemm(
    transposeA: Bool = false, transposeB: Bool = false, m: Int, n: Int, k: Int, alpha: Float = 1,
    _ a: UnsafePointer<Float>, lda: Int? = nil, _ b: UnsafePointer<Float>, ldb: Int? = nil, beta: Float = 0,
    _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil
) {
    cblas_sgemm(
        CblasRowMajor, transposeA ? CblasTrans : CblasNoTrans, transposeB ? CblasTrans : CblasNoTrans,
        blasint(m), blasint(n), blasint(k), alpha, a, blasint(lda ?? (transposeA ? m : k)), b,
        blasint(ldb ?? (transposeB ? k : n)), beta, c, blasint(ldc ?? n))
}
