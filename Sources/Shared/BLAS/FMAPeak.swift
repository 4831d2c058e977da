import CShims

/// A probe of the core's fp32 FMA peak: AVX-512 fused multiply-adds on independent register chains, nothing
/// else (no loads or stores in the loop), to measure the ceiling against which the conv base's GFLOP/s are
/// compared.
///
/// Needs AVX512F (`CPUFeatures.hasAVX512F`); callers check it first. Thread-safe: each call works on its own
/// registers, so one call per thread measures several cores.
public enum FMAPeak {
    /// Independent 16-lane accumulator chains, each advanced by one FMA per iteration.
    public static let chains = Int(BN_FMA_PEAK_CHAINS)

    /// Floating-point operations of one iteration: 2 (multiply and add) · 16 lanes · `chains`.
    public static var flopsPerIteration: Double { Double(2 * 16 * chains) }

    /// Floating-point operations of one iteration of `runBF16`: 4 (two products, two additions) · 16 lanes ·
    /// `chains`.
    public static var bf16FlopsPerIteration: Double { Double(4 * 16 * chains) }

    /// Runs `iterations` iterations of `vdpbf16ps` on the chains (the bf16 product's instruction); returns a
    /// sum of the accumulators. Throws on a CPU without avx512_bf16.
    public static func runBF16(iterations: Int) throws(MissingCPUFeature) -> Float {
        try CPUFeatures.requireBF16()
        return bn_bf16_dot_peak(UInt64(max(0, iterations)))
    }

    /// Runs `iterations` iterations and returns a sum of the accumulators (to be used, so that the work
    /// stays).
    public static func run(iterations: Int) -> Float {
        bn_fma_peak(UInt64(max(0, iterations)))
    }
}
