/// The arithmetic of the conv base's matrix products.
public enum ConvPrecision: String, Sendable, Codable, CaseIterable {
    /// fp32 inputs, weights and sums (OpenBLAS `sgemm`): the reference results.
    case fp32
    /// Inputs and weights rounded to bf16, sums in fp32 (AVX512_BF16 `vdpbf16ps`); opt-in. Needs the CPU
    /// flag avx512_bf16: a conv base refuses to be built without it, never falling back to fp32.
    /// `.adaptive` then means F(4×4) on maps of at least `ConvAlgorithm.bf16LargeMapSide` on both sides and
    /// F(2×2) on smaller ones: F(4×4)'s transforms, which scale by up to 8, magnify bf16's rounding, and on
    /// the deep, small-map layers that pushes the features' error past the bound bf16 features are held to
    /// (BF16PrecisionTests); the shallow layers' share of it stays small.
    case bf16
}

extension ConvAlgorithm {
    /// Smallest height and width at which `.adaptive` uses 4×4 tiles in bf16: blocks 1–3 at 150×150 and at
    /// 224×224. Taking block 4 too brought the features' error against fp32 up to the bound (BENCHMARKS.md).
    public static let bf16LargeMapSide = 32

    /// The algorithm a layer on a `height` × `width` map uses at `precision`.
    public func resolved(height: Int, width: Int, precision: ConvPrecision) -> ConvAlgorithm {
        if precision == .bf16 && self == .adaptive {
            return min(height, width) >= Self.bf16LargeMapSide ? .winograd4x4 : .winograd
        }
        return resolved(height: height, width: width)
    }
}
