import CShims

/// B `[k, n]` in fp32, packed once into the panels of the project's own AVX-512F product (`packedSGEMM`), e.g.
/// a layer's weights: the same bytes as B (columns padded to a multiple of 32), no packing of B per product.
///
/// Immutable after `init`; products on several threads may share one.
package final class FP32PackedMatrix: Sendable {
    /// Rows (the product's depth) and columns of B.
    package let k: Int
    package let n: Int
    // Written only in `init`, read-only afterwards, freed in `deinit`: safe to share across threads.
    nonisolated(unsafe) private let storage: UnsafeMutablePointer<Float>

    /// Whether this CPU runs the product (AVX512F); where it does not, multiply with `sgemm` instead.
    package static var isSupported: Bool { CPUFeatures.hasAVX512F }

    /// Whether the conv base's fp32 Winograd products use `packedSGEMM` rather than OpenBLAS' `sgemm`: when the
    /// CPU runs it and OpenBLAS runs one of its AVX-512 kernel sets (`BLASKernels.avx512CoreNames`). Tying it
    /// to the kernel set keeps the features' bits a function of the kernel set the compute profile records:
    /// with the AVX2 set (chosen, or on a CPU without AVX-512) every product is OpenBLAS'.
    package static var useForWinograd: Bool {
        isSupported && BLASKernels.avx512CoreNames.contains(BLASKernels.coreName)
    }

    /// Bytes of the packed matrix.
    package var byteCount: Int { bn_fp32_packed_b_count(Int32(k), Int32(n)) * MemoryLayout<Float>.stride }

    /// Packs B (row-major, row stride `ldb`, default n). Needs `isSupported`.
    package init(k: Int, n: Int, _ b: UnsafePointer<Float>, ldb: Int? = nil) {
        precondition(Self.isSupported, "FP32PackedMatrix needs AVX512F")
        precondition(k >= 0 && n >= 0 && max(k, n) <= Int(Int32.max), "FP32PackedMatrix: sizes out of range")
        self.k = k
        self.n = n
        let count = max(1, bn_fp32_packed_b_count(Int32(k), Int32(n)))
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        storage = raw.bindMemory(to: Float.self, capacity: count)
        bn_fp32_pack_b(Int32(k), Int32(n), b, Int32(ldb ?? n), storage)
    }

    deinit { storage.deallocate() }

    fileprivate var packed: UnsafePointer<Float> { UnsafePointer(storage) }

    /// Packs B `[k, n]` (row-major, n a multiple of 32) where it lies: the packed matrix has the same size, so
    /// a layer's weights need no second copy. `scratch` holds k · n floats. Needs `isSupported`.
    package static func packInPlace(
        k: Int, n: Int, _ b: UnsafeMutablePointer<Float>, scratch: UnsafeMutablePointer<Float>
    ) {
        precondition(isSupported, "FP32PackedMatrix needs AVX512F")
        precondition(k >= 0 && n % 32 == 0 && max(k, n) <= Int(Int32.max), "packInPlace: n must be a multiple of 32")
        precondition(bn_fp32_packed_b_count(Int32(k), Int32(n)) == k * n)
        bn_fp32_pack_b(Int32(k), Int32(n), b, Int32(n), scratch)
        b.update(from: scratch, count: k * n)
    }
}

/// The workspace of `packedSGEMM`: one per thread, reused across products.
package final class PackedSGEMMWorkspace {
    fileprivate let floats: UnsafeMutablePointer<Float>

    package init() {
        let count = bn_fp32_gemm_workspace_count()
        let raw = UnsafeMutableRawPointer.allocate(byteCount: count * MemoryLayout<Float>.stride, alignment: 64)
        floats = raw.bindMemory(to: Float.self, capacity: count)
    }

    deinit { floats.deallocate() }
}

/// Row-major fp32 product `C = A · B` with B packed beforehand (AVX-512F FMAs): A `[m, b.k]` (row stride `lda`,
/// default b.k), C `[m, b.n]` (`ldc`, default b.n), not read.
///
/// Order of the sums: per depth block of `packedSGEMMDepthBlock` (128) a block sum starts at 0 and adds
/// a[i][p]·b[p][j] in order of p, one fused multiply-add each; the output is the first block's sum plus each
/// later block's in order. A row's results never depend on m or on the other rows of A. Not the same last
/// bits as OpenBLAS' `sgemm`. Single-threaded; `workspace` belongs to the calling thread for the call.
package func packedSGEMM(
    m: Int, _ a: UnsafePointer<Float>, lda: Int? = nil, _ b: FP32PackedMatrix, _ c: UnsafeMutablePointer<Float>,
    ldc: Int? = nil, workspace: PackedSGEMMWorkspace
) {
    precondition(m >= 0 && m <= Int(Int32.max), "packedSGEMM: sizes out of range")
    bn_fp32_gemm_packed(
        Int32(m), Int32(b.n), Int32(b.k), a, Int32(lda ?? b.k), b.packed, c, Int32(ldc ?? b.n), workspace.floats)
}

/// `packedSGEMM` on B packed in place by `FP32PackedMatrix.packInPlace(k:n:_:scratch:)` at `packedB`.
package func packedSGEMM(
    m: Int, _ a: UnsafePointer<Float>, lda: Int? = nil, packedB: UnsafePointer<Float>, k: Int, n: Int,
    _ c: UnsafeMutablePointer<Float>, ldc: Int? = nil, workspace: PackedSGEMMWorkspace
) {
    precondition(m >= 0 && m <= Int(Int32.max) && n % 32 == 0, "packedSGEMM: sizes out of range")
    bn_fp32_gemm_packed(Int32(m), Int32(n), Int32(k), a, Int32(lda ?? k), packedB, c, Int32(ldc ?? n), workspace.floats)
}

/// The depth block of `packedSGEMM`'s order of sums.
package let packedSGEMMDepthBlock = 128
