import CShims
import Reporting

/// The AVX-512 extensions of this CPU that the project's own kernels use, read with cpuid at run time.
///
/// A flag is true only when the CPU reports the extension and the operating system saves the AVX-512
/// registers, i.e. when its instructions can run in this process. Names in messages are the flags of
/// /proc/cpuinfo (`avx512f`, `avx512bw`, `avx512vl`, `avx512_bf16`). Read once per process; thread-safe.
public enum CPUFeatures {
    private static let bits = bn_cpu_features()

    /// AVX512F: 512-bit registers and fp32 FMA (cpuid leaf 7, EBX bit 16).
    public static var hasAVX512F: Bool { bits & UInt32(BN_CPU_AVX512F) != 0 }
    /// AVX512BW: 8- and 16-bit lanes (cpuid leaf 7, EBX bit 30).
    public static var hasAVX512BW: Bool { bits & UInt32(BN_CPU_AVX512BW) != 0 }
    /// AVX512VL: AVX-512 instructions on 128- and 256-bit registers (cpuid leaf 7, EBX bit 31).
    public static var hasAVX512VL: Bool { bits & UInt32(BN_CPU_AVX512VL) != 0 }
    /// AVX512_BF16: `vdpbf16ps` and the fp32-to-bf16 conversions (cpuid leaf 7 subleaf 1, EAX bit 5).
    public static var hasAVX512BF16: Bool { bits & UInt32(BN_CPU_AVX512_BF16) != 0 }

    /// The /proc/cpuinfo names of the flags the bf16 product needs that this CPU lacks; empty when it can run.
    public static var missingForBF16: [String] {
        [("avx512f", hasAVX512F), ("avx512bw", hasAVX512BW), ("avx512vl", hasAVX512VL), ("avx512_bf16", hasAVX512BF16)]
            .filter { !$0.1 }.map(\.0)
    }

    /// Returns when this CPU can run the bf16 product; else throws, naming the missing CPU flags.
    public static func requireBF16() throws(MissingCPUFeature) {
        let missing = missingForBF16
        if !missing.isEmpty { throw MissingCPUFeature(missingFlags: missing) }
    }
}

/// The bf16 precision was asked for on a CPU that cannot run it. Never a silent fall-back to fp32.
public struct MissingCPUFeature: ReportedError, Equatable {
    /// The /proc/cpuinfo names of the missing flags, e.g. `["avx512_bf16"]`.
    public let missingFlags: [String]

    public init(missingFlags: [String]) { self.missingFlags = missingFlags }

    public var subject: String? { "this CPU" }

    public var message: String {
        let flags = missingFlags.joined(separator: ", ")
        let noun = missingFlags.count == 1 ? "flag" : "flags"
        return "the bf16 precision needs the CPU \(noun) \(flags) (AVX-512 bf16 dot products, vdpbf16ps), "
            + "which this CPU does not have; set the precision to fp32 on this machine"
    }

    public var category: FailureCategory { .badInput }

    public var description: String { "this CPU: \(message)" }
}
