import BLAS
import CShims
import Testing

@testable import TopModel

/// The forward product's row-dot kernel (`bn_row_dot_accumulate`): the documented order of the sums bit for bit,
/// and OpenBLAS' product within rounding.
@Suite("row-dot forward product")
struct RowDotTests {
    /// `c[r][j] + Σ_i a[r][i]·b[j][i]` in the documented order: k blocks of 1024, 16 lanes by i mod 16 with one
    /// fused multiply-add each, lanes summed 8 + 8, 4 + 4, 2 + 2, 1 + 1, each block's sum added to c.
    static func reference(m: Int, n: Int, k: Int, a: [Float], b: [Float], c: [Float]) -> [Float] {
        var out = c
        for r in 0..<m {
            for j in 0..<n {
                var total = c[r * n + j]
                for p0 in stride(from: 0, to: k, by: 1024) {
                    var v = [Float](repeating: 0, count: 16)
                    for i in p0..<min(k, p0 + 1024) { v[i % 16] = v[i % 16].addingProduct(a[r * k + i], b[j * k + i]) }
                    let h = (0..<8).map { v[$0] + v[$0 + 8] }
                    let q = (0..<4).map { h[$0] + h[$0 + 4] }
                    total += (q[0] + q[2]) + (q[1] + q[3])
                }
                out[r * n + j] = total
            }
        }
        return out
    }

    static func product(m: Int, n: Int, k: Int, a: [Float], b: [Float], c: [Float], parts: Int) -> [Float] {
        var out = c
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                out.withUnsafeMutableBufferPointer { out in
                    for part in 0..<parts {
                        bn_row_dot_accumulate(
                            Int32(m), Int32(n * part / parts), Int32(n * (part + 1) / parts), Int32(k), a.baseAddress!,
                            Int32(k), b.baseAddress!, Int32(k), out.baseAddress!, Int32(n))
                    }
                }
            }
        }
        return out
    }

    /// Operands with a third exact zeros in a, an all-zero row of a and of b.
    static func operands(m: Int, n: Int, k: Int, seed: UInt64) -> (a: [Float], b: [Float], c: [Float]) {
        var random = TestRandom(seed)
        var a = (0..<m * k).map { _ in
            let u = random.uniform(0, 1)
            return u < 0.33 ? 0 : 2 * u
        }
        var b = random.array(n * k, -0.05, 0.05)
        let c = random.array(m * n)
        if m > 1 { for i in 0..<k { a[k + i] = 0 } }
        if n > 1 { for i in 0..<k { b[(n - 1) * k + i] = 0 } }
        return (a, b, c)
    }

    @Test(
        "the row-dot product gives the documented order's bits, whatever the split of the columns",
        .enabled(if: CPUFeatures.hasAVX512F, "needs AVX-512F; this CPU lacks it (the trainer uses OpenBLAS there)"),
        arguments: [(100, 256, 8192), (7, 9, 37), (1, 1, 5), (11, 6, 2049), (5, 4, 16)])
    func documentedOrder(m: Int, n: Int, k: Int) {
        let (a, b, c) = Self.operands(m: m, n: n, k: k, seed: UInt64(m + n + k))
        let expected = Self.reference(m: m, n: n, k: k, a: a, b: b, c: c)
        for parts in [1, 3, 4] {
            #expect(Self.product(m: m, n: n, k: k, a: a, b: b, c: c, parts: parts) == expected, "parts \(parts)")
        }
    }

    @Test(
        "the row-dot product equals OpenBLAS' x · wᵀ within rounding",
        .enabled(if: CPUFeatures.hasAVX512F, "needs AVX-512F; this CPU lacks it (the trainer uses OpenBLAS there)"))
    func matchesBLAS() {
        let (m, n, k) = (100, 256, 8192)
        let (a, b, c) = Self.operands(m: m, n: n, k: k, seed: 3)
        let ours = Self.product(m: m, n: n, k: k, a: a, b: b, c: c, parts: 4)
        var blas = c
        a.withUnsafeBufferPointer { a in
            b.withUnsafeBufferPointer { b in
                blas.withUnsafeMutableBufferPointer { out in
                    sgemm(
                        transposeB: true, m: m, n: n, k: k, a.baseAddress!, b.baseAddress!, beta: 1, out.baseAddress!)
                }
            }
        }
        var worst: Float = 0
        for r in 0..<m {
            for j in 0..<n {
                var magnitude = abs(c[r * n + j])
                for i in 0..<k { magnitude += abs(a[r * k + i] * b[j * k + i]) }
                worst = max(worst, abs(ours[r * n + j] - blas[r * n + j]) / max(magnitude, .leastNormalMagnitude))
            }
        }
        #expect(worst <= 1e-5, "largest difference relative to the sum of the terms' magnitudes: \(worst)")
    }
}
