import Foundation
import Reporting
import Testing

@testable import BLAS

@Suite struct CPUFeaturesTests {
    /// The flags the kernel lists for this CPU (and lets processes use), from /proc/cpuinfo.
    static func kernelFlags() throws -> Set<String> {
        let text = try String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8)
        let line = try #require(text.split(separator: "\n").first { $0.hasPrefix("flags") })
        return Set(line.split(separator: ":").last!.split(separator: " ").map(String.init))
    }

    @Test func cpuidAgreesWithTheKernelsFlags() throws {
        let flags = try Self.kernelFlags()
        #expect(CPUFeatures.hasAVX512F == flags.contains("avx512f"))
        #expect(CPUFeatures.hasAVX512BW == flags.contains("avx512bw"))
        #expect(CPUFeatures.hasAVX512VL == flags.contains("avx512vl"))
        #expect(CPUFeatures.hasAVX512BF16 == flags.contains("avx512_bf16"))
        #expect(CPUFeatures.missingForBF16.allSatisfy { !flags.contains($0) })
    }

    @Test func bf16IsRefusedExactlyWhenAFlagIsMissing() {
        do {
            try CPUFeatures.requireBF16()
            #expect(CPUFeatures.missingForBF16.isEmpty)
        } catch {
            #expect(error.missingFlags == CPUFeatures.missingForBF16)
            #expect(!error.missingFlags.isEmpty)
        }
    }

    @Test func refusalNamesTheCPUFlagAndTheSetting() {
        let error: any ReportedError = MissingCPUFeature(missingFlags: ["avx512_bf16"])
        #expect(error.message.contains("CPU flag avx512_bf16 "))
        #expect(error.message.contains("set the precision to fp32"))
        #expect(!error.message.contains("--"))
        #expect(error.category == .badInput)
        #expect(error.description.hasPrefix("this CPU: "))
        let several = MissingCPUFeature(missingFlags: ["avx512f", "avx512_bf16"])
        #expect(several.message.contains("CPU flags avx512f, avx512_bf16 "))
    }
}
