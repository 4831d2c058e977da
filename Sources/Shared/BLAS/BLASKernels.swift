import COpenBLAS
import Foundation

/// The OpenBLAS kernel set this process runs, and a correctness check of its `sgemm`.
///
/// OpenBLAS (Debian's DYNAMIC_ARCH build) picks its kernels once, when the library loads, from the CPU or from
/// `OPENBLAS_CORETYPE`; a process cannot switch afterwards. `BLASKernelChoice` uses this to choose the set
/// before a process's real run (it checks a candidate in a child process, then re-executes the process with
/// `OPENBLAS_CORETYPE` set). Different kernel sets round differently, so features are bit-identical only
/// between processes that run the same set.
public enum BLASKernels {
    /// The kernel set OpenBLAS chose in this process, e.g. "Haswell" or "SkylakeX" (`openblas_get_corename`).
    public static var coreName: String {
        guard let name = openblas_get_corename() else { return "unknown" }
        return String(cString: name)
    }

    /// OpenBLAS' build configuration (`openblas_get_config`), e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY
    /// Haswell MAX_THREADS=64": its version and the kernel set it runs.
    public static var configuration: String {
        guard let config = openblas_get_config() else { return "unknown" }
        return String(cString: config)
    }

    /// Kernel sets that need AVX-512 (F, BW, VL, DQ); on CPUs that have it they run VGG16's products faster
    /// than the AVX2 ("Haswell") set.
    public static let avx512CoreNames: Set<String> = ["SkylakeX", "Cooperlake", "SapphireRapids"]

    /// True when /proc/cpuinfo lists the AVX-512 subsets the SkylakeX kernels use.
    public static var cpuHasAVX512ForSkylakeX: Bool {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8),
            let flagsLine = text.split(separator: "\n").first(where: { $0.hasPrefix("flags") })
        else { return false }
        let flags = Set(flagsLine.split(separator: " ").map(String.init))
        return ["avx512f", "avx512bw", "avx512vl", "avx512dq"].allSatisfy(flags.contains)
    }

    /// Multiplies random matrices of the shapes VGG16's convolutions use (Winograd, im2col, odd sizes) with
    /// this process' `cblas_sgemm` on one thread and compares every element with a float64 sum.
    ///
    /// Returns nil when every element is within the float32 rounding bound of a k-term sum, (k + 2)·2⁻²⁴·Σ|a·b|
    /// (a wrong kernel is off by the size of the values), else a message
    /// naming the first shape that failed. Restores the BLAS thread count.
    public static func selfCheck() -> String? {
        let saved = BLASThreads.current
        BLASThreads.set(1)
        defer { BLASThreads.set(saved) }
        // (m, k, n): rows (tiles or pixels), depth (input channels, or 27 for the first layer), output channels.
        let shapes = [
            (3136, 64, 64), (784, 128, 128), (196, 256, 256), (49, 512, 512), (16, 512, 512), (1, 512, 512),
            (224 * 8, 27, 64), (37, 33, 51), (130, 257, 65), (7, 3, 5),
        ]
        var generator = SelfCheckRandom(seed: 0x0B1A5)
        for (m, k, n) in shapes {
            let a = (0..<(m * k)).map { _ in Float(generator.uniform(in: -1, 1)) }
            let b = (0..<(k * n)).map { _ in Float(generator.uniform(in: -1, 1)) }
            var c = [Float](repeating: .nan, count: m * n)
            a.withUnsafeBufferPointer { a in
                b.withUnsafeBufferPointer { b in
                    c.withUnsafeMutableBufferPointer { c in
                        sgemm(m: m, n: n, k: k, a.baseAddress!, b.baseAddress!, c.baseAddress!)
                    }
                }
            }
            for i in 0..<m {
                for j in 0..<n {
                    var sum = 0.0
                    var magnitude = 0.0
                    for p in 0..<k {
                        let product = Double(a[i * k + p]) * Double(b[p * n + j])
                        sum += product
                        magnitude += abs(product)
                    }
                    let value = Double(c[i * n + j])
                    guard value.isFinite, abs(value - sum) <= Double(k + 2) * 0x1p-24 * magnitude else {
                        return "sgemm \(m)×\(k)·\(k)×\(n) with the \(coreName) kernels: element (\(i), \(j)) is "
                            + "\(value), expected \(sum)"
                    }
                }
            }
        }
        return nil
    }
}

/// SplitMix64: the self-check's deterministic random matrices.
private struct SelfCheckRandom {
    private var state: UInt64

    init(seed: UInt64) { state = seed }

    /// Uniform in [low, high), 53 bits of resolution.
    mutating func uniform(in low: Double, _ high: Double) -> Double {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return low + (high - low) * Double(z >> 11) * (1.0 / 9_007_199_254_740_992.0)
    }
}
