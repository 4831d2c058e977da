import CShims

/// Row-major matrix product in bf16 with fp32 accumulation (AVX512_BF16 `vdpbf16ps`):
/// `C = A · B + beta · C`, with A and B rounded to bf16 (nearest even) on the way in.
///
/// Same shape as `sgemm` without transposes or alpha: A is `[m, k]`, B is `[k, n]`, C is `[m, n]`, all
/// row-major; a leading dimension left nil is the stored matrix's column count. C is not read when beta is 0.
/// Throws, naming the CPU flag, on a CPU without AVX512F/BW/VL and AVX512_BF16; never falls back to fp32.
///
/// Order of the sums (the result is reproducible bit for bit, on any thread, whatever the sizes): each output
/// starts at 0, C (beta 1) or beta·C, then adds for each k-pair p in increasing order a[2p+1]·b[2p+1], then
/// a[2p]·b[2p] (products of bf16 values are exact in fp32; each addition rounds to nearest even; for odd k the
/// missing last term is +0). Subnormal bf16 inputs count as zero and subnormal sums flush to zero.
/// Single-threaded; allocates its packing workspace (`bn_bf16_gemm_workspace_count()` halves, under 1 MiB).
package func bf16gemm(
    m: Int, n: Int, k: Int, _ a: UnsafePointer<Float>, lda: Int? = nil, _ b: UnsafePointer<Float>, ldb: Int? = nil,
    beta: Float = 0, _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil
) throws(MissingCPUFeature) {
    try CPUFeatures.requireBF16()
    precondition(m >= 0 && n >= 0 && k >= 0 && max(m, n, k) <= Int(Int32.max), "bf16gemm: sizes out of range")
    let workspace = UnsafeMutablePointer<UInt16>.allocate(capacity: bn_bf16_gemm_workspace_count())
    defer { workspace.deallocate() }
    bn_bf16_gemm(
        Int32(m), Int32(n), Int32(k), a, Int32(lda ?? k), b, Int32(ldb ?? n), beta, c, Int32(ldc ?? n), workspace)
}

/// B `[k, n]` rounded to bf16 and packed once for `bf16gemm(m:n:k:_:lda:_:beta:_:ldc:)`, e.g. a layer's
/// weights: half the bytes of the fp32 matrix, and no packing of B per product.
///
/// Immutable after `init`; products on several threads may share one.
package final class BF16PackedMatrix: Sendable {
    /// Rows (the product's depth) and columns of B.
    package let k: Int
    package let n: Int
    // Written only in `init`, read-only afterwards, freed in `deinit`: safe to share across threads.
    nonisolated(unsafe) private let storage: UnsafeMutablePointer<UInt16>

    /// Bytes of the packed matrix.
    package var byteCount: Int { bn_bf16_packed_b_count(Int32(k), Int32(n)) * 2 }

    /// Packs B (row-major, row stride `ldb`, default n); throws on a CPU without avx512_bf16.
    package init(k: Int, n: Int, _ b: UnsafePointer<Float>, ldb: Int? = nil) throws(MissingCPUFeature) {
        try CPUFeatures.requireBF16()
        precondition(k >= 0 && n >= 0 && max(k, n) <= Int(Int32.max), "BF16PackedMatrix: sizes out of range")
        self.k = k
        self.n = n
        let count = bn_bf16_packed_b_count(Int32(k), Int32(n))
        storage = .allocate(capacity: max(1, count))
        bn_bf16_pack_b(Int32(k), Int32(n), b, Int32(ldb ?? n), storage)
    }

    deinit { storage.deallocate() }

    fileprivate var packed: UnsafePointer<UInt16> { UnsafePointer(storage) }
}

/// `bf16gemm` with B packed beforehand: `C = A · B + beta · C`, A `[m, b.k]`, C `[m, b.n]`; the same result,
/// bit for bit, as `bf16gemm` on the unpacked B. Single-threaded.
///
/// `workspace` (`bf16GEMMWorkspaceCount` halves, used by one thread at a time) holds A's packed panels; nil
/// allocates one for this call. Callers that multiply often (a conv base) keep one per thread.
package func bf16gemm(
    m: Int, _ a: UnsafePointer<Float>, lda: Int? = nil, _ b: BF16PackedMatrix, beta: Float = 0,
    _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil, workspace: UnsafeMutablePointer<UInt16>? = nil
) {
    precondition(m >= 0 && m <= Int(Int32.max), "bf16gemm: sizes out of range")
    let own = workspace == nil ? UnsafeMutablePointer<UInt16>.allocate(capacity: bf16GEMMWorkspaceCount) : nil
    defer { own?.deallocate() }
    bn_bf16_gemm_packed(
        Int32(m), Int32(b.n), Int32(b.k), a, Int32(lda ?? b.k), b.packed, beta, c, Int32(ldc ?? b.n),
        (workspace ?? own)!)
}

/// Halves (UInt16) of the workspace `bf16gemm` packs A into: the same for every size (under 1 MiB).
package var bf16GEMMWorkspaceCount: Int { bn_bf16_gemm_workspace_count() }
