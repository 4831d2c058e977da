import ArgumentParser
import BLAS
import Foundation

/// `bottleneck-dev bench-bf16`: the bf16 product against OpenBLAS `sgemm` on one thread, on the matrix shapes
/// of VGG16's Winograd and im2col layers.
struct BenchBF16Command: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-bf16",
        abstract: "bf16 matrix product (vdpbf16ps) vs OpenBLAS sgemm, one thread, GFLOP/s per shape.",
        discussion: """
            Shapes (m × k · k × n): m Winograd tiles (or pixels), k input channels, n output channels, as \
            the conv base's per-point products use them at 224 (F(4×4): 56×56 → 3136 tiles for block 1, \
            784, 196, 49 for blocks 2 to 4) and the first layer's im2col (k 27). GFLOP/s count 2·m·n·k \
            per product; the best of the rounds. bf16 is timed with B packed per product and with B packed \
            once beforehand (as a layer's weights would be). Valid only on an otherwise idle machine (other processes' \
            share of the CPUs meanwhile printed).
            """)

    @Option(help: "Rounds per shape and engine; the best is reported.")
    var rounds: Int = 5

    static let shapes: [(m: Int, k: Int, n: Int)] = [
        (3136, 64, 64), (784, 128, 128), (784, 256, 256), (196, 256, 256), (196, 512, 512), (49, 512, 512),
        (16, 512, 512), (224 * 8, 27, 64),
    ]

    func run() throws {
        try CPUFeatures.requireBF16()
        BLASThreads.set(1)
        print("OpenBLAS kernels \(BLASKernels.coreName), 1 thread")
        let start = MachineLoad()
        for (m, k, n) in Self.shapes {
            let a = (0..<(m * k)).map { _ in Float.random(in: 0..<1) }
            let b = (0..<(k * n)).map { _ in Float.random(in: -1..<1) }
            var c = [Float](repeating: 0, count: m * n)
            // Enough repetitions per round for ~0.1 GFLOP.
            let repeats = max(1, 100_000_000 / (2 * m * n * k))
            func best(_ body: () throws -> Void) rethrows -> Double {
                var fastest = Double.infinity
                for _ in 0...max(1, rounds) {  // the first round warms up
                    let start = DispatchTime.now().uptimeNanoseconds
                    for _ in 0..<repeats { try body() }
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
                    fastest = min(fastest, seconds / Double(repeats))
                }
                return Double(2 * m * n * k) / fastest / 1e9
            }
            let fp32 = a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        best { sgemm(m: m, n: n, k: k, a.baseAddress!, b.baseAddress!, c.baseAddress!) }
                    }
                }
            }
            let bf16 = try a.withUnsafeBufferPointer { a in
                try b.withUnsafeBufferPointer { b in
                    try c.withUnsafeMutableBufferPointer { c in
                        try best { try bf16gemm(m: m, n: n, k: k, a.baseAddress!, b.baseAddress!, c.baseAddress!) }
                    }
                }
            }
            let packed = try b.withUnsafeBufferPointer { try BF16PackedMatrix(k: k, n: n, $0.baseAddress!) }
            let prepacked = a.withUnsafeBufferPointer { a in
                c.withUnsafeMutableBufferPointer { c in
                    best { bf16gemm(m: m, a.baseAddress!, packed, c.baseAddress!) }
                }
            }
            print(
                String(
                    format:
                        "%5d×%4d·%4d×%4d  sgemm %6.1f  bf16 %6.1f (×%.2f)  bf16, B packed once %6.1f (×%.2f) GFLOP/s",
                    m, k, k, n, fp32, bf16, bf16 / fp32, prepacked, prepacked / fp32))
        }
        print(MachineLoad.report(since: start))
    }
}
