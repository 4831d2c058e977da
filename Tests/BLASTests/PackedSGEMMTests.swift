import Testing

@testable import BLAS

@Suite(.enabled(if: FP32PackedMatrix.isSupported, "skipped: this CPU lacks avx512f"))
struct PackedSGEMMTests {
    /// (m, n, k): sizes inside one micro-tile (12 × 32), across the row (96), column (32) and depth (128)
    /// blocks, with partial tiles on every side, k = 1, and k = 0 (C = 0).
    static let cases: [(Int, Int, Int)] = [
        (1, 1, 1), (13, 37, 5), (12, 32, 128), (12, 32, 256), (100, 70, 517), (97, 33, 300), (7, 130, 3), (25, 17, 257),
        (3, 5, 0), (196, 64, 128),
    ]

    @Test(
        "the packed fp32 product equals in-order fused multiply-adds summed by depth block, bit for bit",
        arguments: cases.indices)
    func productEqualsInOrderFusedSums(caseIndex: Int) {
        let (m, n, k) = Self.cases[caseIndex]
        // Wider stored matrices whose extra columns hold NaN: nothing outside [m, k], [k, n], [m, n] may leak in.
        let (lda, ldb, ldc) = (k + 3, n + 1, n + 2)
        var random = TestRandom(state: UInt64(caseIndex + 11))
        var a = [Float](repeating: .nan, count: m * lda)
        var b = [Float](repeating: .nan, count: k * ldb)
        var c = [Float](repeating: .nan, count: m * ldc)
        for i in 0..<m { for p in 0..<k { a[i * lda + p] = random.uniform(-2, 2) } }
        for p in 0..<k { for j in 0..<n { b[p * ldb + j] = random.uniform(-2, 2) } }
        let packed = b.withUnsafeBufferPointer { FP32PackedMatrix(k: k, n: n, $0.baseAddress!, ldb: ldb) }
        let workspace = PackedSGEMMWorkspace()
        a.withUnsafeBufferPointer { a in
            c.withUnsafeMutableBufferPointer { c in
                packedSGEMM(m: m, a.baseAddress!, lda: lda, packed, c.baseAddress!, ldc: ldc, workspace: workspace)
            }
        }
        var mismatches = 0
        for i in 0..<m {
            for j in 0..<n {
                var sum: Float = 0
                for block in stride(from: 0, to: k, by: packedSGEMMDepthBlock) {
                    var blockSum: Float = 0
                    for p in block..<min(k, block + packedSGEMMDepthBlock) {
                        blockSum.addProduct(a[i * lda + p], b[p * ldb + j])
                    }
                    sum = block == 0 ? blockSum : sum + blockSum
                }
                if c[i * ldc + j].bitPattern != sum.bitPattern {
                    if mismatches < 3 { Issue.record("(\(i), \(j)): \(c[i * ldc + j]), expected \(sum)") }
                    mismatches += 1
                }
            }
            for j in n..<ldc { #expect(c[i * ldc + j].isNaN, "column \(j) past n was written") }
        }
        #expect(mismatches == 0, "\(m)×\(k)·\(k)×\(n)")
    }

    @Test("a row's results do not depend on the other rows or on its place in A")
    func rowResultsDoNotDependOnTheirPlace() {
        let (k, n) = (300, 70)
        var random = TestRandom(state: 5)
        let b = (0..<(k * n)).map { _ in random.uniform(-1, 1) }
        let row = (0..<k).map { _ in random.uniform(-1, 1) }
        let packed = b.withUnsafeBufferPointer { FP32PackedMatrix(k: k, n: n, $0.baseAddress!) }
        let workspace = PackedSGEMMWorkspace()
        func product(_ a: [Float], m: Int) -> [Float] {
            var c = [Float](repeating: 0, count: m * n)
            a.withUnsafeBufferPointer { a in
                c.withUnsafeMutableBufferPointer { c in
                    packedSGEMM(m: m, a.baseAddress!, packed, c.baseAddress!, workspace: workspace)
                }
            }
            return c
        }
        let alone = product(row, m: 1)
        for (m, place) in [(13, 12), (100, 37), (97, 96)] {
            var a = (0..<(m * k)).map { _ in random.uniform(-1, 1) }
            a.replaceSubrange((place * k)..<((place + 1) * k), with: row)
            let c = product(a, m: m)
            #expect(Array(c[(place * n)..<((place + 1) * n)]) == alone, "row \(place) of \(m)")
        }
    }
}
