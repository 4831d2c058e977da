import Foundation
import Testing

@testable import BLAS

/// Rounds to bf16 and back as `vcvtne2ps2bf16` does: nearest, ties to even; NaN stays a (quiet) NaN.
/// Subnormal results count as zero in `vdpbf16ps`, so they become a signed zero here.
func bf16Rounded(_ x: Float) -> Float {
    let bits = x.bitPattern
    if x.isNaN { return Float(bitPattern: (bits | 0x0040_0000) & 0xFFFF_0000) }
    let rounded = Float(bitPattern: (bits &+ 0x7FFF &+ ((bits >> 16) & 1)) & 0xFFFF_0000)
    return rounded.isSubnormal ? Float(sign: rounded.sign, exponent: 0, significand: 0) : rounded
}

/// `C = A·B + beta·C` in the order `bf16gemm` documents: per output, from 0 / C / beta·C, for each k-pair p
/// in order add a[2p+1]·b[2p+1] (or +0 past k), then a[2p]·b[2p]; each product of bf16 values is exact.
func referenceProduct(
    m: Int, n: Int, k: Int, _ a: [Float], lda: Int, _ b: [Float], ldb: Int, beta: Float, _ c: inout [Float], ldc: Int
) {
    let ra = a.map(bf16Rounded)
    let rb = b.map(bf16Rounded)
    for i in 0..<m {
        for j in 0..<n {
            var sum: Float = beta == 0 ? 0 : (beta == 1 ? c[i * ldc + j] : beta * c[i * ldc + j])
            for p in 0..<((k + 1) / 2) {
                let odd = 2 * p + 1 < k ? ra[i * lda + 2 * p + 1] * rb[(2 * p + 1) * ldb + j] : 0
                sum = sum + odd
                sum = sum + ra[i * lda + 2 * p] * rb[2 * p * ldb + j]
            }
            c[i * ldc + j] = sum
        }
    }
}

/// SplitMix64: deterministic test matrices.
struct TestRandom {
    var state: UInt64
    mutating func uniform(_ low: Float, _ high: Float) -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return low + (high - low) * Float(z >> 40) * 0x1p-24
    }
}

@Suite(.enabled(if: CPUFeatures.hasAVX512BF16, "skipped: this CPU lacks avx512_bf16 (or AVX-512 F/BW/VL)"))
struct BF16GEMMTests {
    /// (m, n, k, beta): sizes inside one block, across the row (96), column (32 per tile, 1024 per block) and
    /// depth (256) blocks, odd k (vdpbf16ps takes pairs), k = 1, and k = 0 (C = beta·C).
    static let cases: [(Int, Int, Int, Float)] = [
        (1, 1, 1, 0), (13, 37, 5, 0), (12, 32, 256, 0), (100, 70, 517, 0), (97, 33, 300, 1), (7, 1030, 3, 0),
        (25, 17, 257, 0.5), (3, 5, 0, 0.5), (2, 40, 1, 1),
    ]

    @Test(arguments: cases.indices)
    func productEqualsTheReferenceBitForBit(caseIndex: Int) throws {
        let (m, n, k, beta) = Self.cases[caseIndex]
        // Wider stored matrices whose extra columns hold NaN: nothing outside [m, k], [k, n], [m, n] may leak in.
        let (lda, ldb, ldc) = (k + 3, n + 1, n + 2)
        var random = TestRandom(state: UInt64(caseIndex + 1))
        var a = [Float](repeating: .nan, count: m * lda)
        var b = [Float](repeating: .nan, count: k * ldb)
        var c = [Float](repeating: .nan, count: m * ldc)
        for i in 0..<m { for p in 0..<k { a[i * lda + p] = random.uniform(-2, 2) } }
        for p in 0..<k { for j in 0..<n { b[p * ldb + j] = random.uniform(-2, 2) } }
        for i in 0..<m { for j in 0..<n { c[i * ldc + j] = random.uniform(-8, 8) } }
        let cBefore = c
        var expected = c
        referenceProduct(m: m, n: n, k: k, a, lda: lda, b, ldb: ldb, beta: beta, &expected, ldc: ldc)
        try a.withUnsafeBufferPointer { a in
            try b.withUnsafeBufferPointer { b in
                try c.withUnsafeMutableBufferPointer { c in
                    try bf16gemm(
                        m: m, n: n, k: k, a.baseAddress!, lda: lda, b.baseAddress!, ldb: ldb, beta: beta,
                        c.baseAddress!, ldc: ldc)
                }
            }
        }
        // B packed once beforehand gives the same bits.
        var fromPacked = [Float](repeating: .nan, count: m * ldc)
        for i in 0..<m { for j in 0..<n { fromPacked[i * ldc + j] = cBefore[i * ldc + j] } }
        let packed = try b.withUnsafeBufferPointer { try BF16PackedMatrix(k: k, n: n, $0.baseAddress!, ldb: ldb) }
        a.withUnsafeBufferPointer { a in
            fromPacked.withUnsafeMutableBufferPointer { c in
                bf16gemm(m: m, a.baseAddress!, lda: lda, packed, beta: beta, c.baseAddress!, ldc: ldc)
            }
        }
        #expect(zip(fromPacked, c).allSatisfy { $0.bitPattern == $1.bitPattern })
        var mismatches = 0
        for i in 0..<m {
            for j in 0..<n where c[i * ldc + j].bitPattern != expected[i * ldc + j].bitPattern {
                if mismatches < 3 { Issue.record("(\(i), \(j)): \(c[i * ldc + j]), expected \(expected[i * ldc + j])") }
                mismatches += 1
            }
            for j in n..<ldc { #expect(c[i * ldc + j].isNaN, "column \(j) past n was written") }
        }
        #expect(mismatches == 0, "\(m)×\(k)·\(k)×\(n), beta \(beta)")
    }

    @Test func roundingIsToNearestEven() throws {
        // 1 + 2⁻⁸ is halfway between bf16 neighbours 1 and 1 + 2⁻⁷: ties to even (1); just above rounds up.
        let values: [Float] = [1 + 0x1p-8, 1 + 0x1p-8 + 0x1p-20, 1 + 3 * 0x1p-8, -(1 + 0x1p-8)]
        let expected: [Float] = [1, 1 + 0x1p-7, 1 + 4 * 0x1p-8, -1]
        for (value, rounded) in zip(values, expected) {
            var c: Float = 0
            var a = value
            var one: Float = 1
            try bf16gemm(m: 1, n: 1, k: 1, &a, &one, &c)
            #expect(c == rounded, "\(value)")
            #expect(bf16Rounded(value) == rounded)
        }
    }

    /// VGG16's largest Winograd and im2col products, activations in [0, 1) and weights in [-1, 1): the largest
    /// difference from fp32 `sgemm`, relative to the largest magnitude of the fp32 result, stays under 1e-2.
    @Test(arguments: [(196, 512, 4608), (784, 128, 1152), (3136, 64, 64), (49, 512, 512)])
    func productIsCloseToFP32OnVGG16Shapes(shape: (Int, Int, Int)) throws {
        let (m, n, k) = shape
        var random = TestRandom(state: 42)
        let a = (0..<(m * k)).map { _ in random.uniform(0, 1) }
        let b = (0..<(k * n)).map { _ in random.uniform(-1, 1) }
        var fp32 = [Float](repeating: 0, count: m * n)
        var bf16 = [Float](repeating: 0, count: m * n)
        try a.withUnsafeBufferPointer { a in
            try b.withUnsafeBufferPointer { b in
                fp32.withUnsafeMutableBufferPointer {
                    sgemm(m: m, n: n, k: k, a.baseAddress!, b.baseAddress!, $0.baseAddress!)
                }
                try bf16.withUnsafeMutableBufferPointer {
                    try bf16gemm(m: m, n: n, k: k, a.baseAddress!, b.baseAddress!, $0.baseAddress!)
                }
            }
        }
        let scale = fp32.map(abs).max()!
        let largest = zip(fp32, bf16).map { abs($0 - $1) }.max()!
        let relative = largest / scale
        print(
            "bf16 vs fp32 \(m)×\(k)·\(k)×\(n): largest difference \(largest) of largest |C| \(scale): "
                + "\(relative)")
        #expect(relative <= 1e-2)
    }
}
