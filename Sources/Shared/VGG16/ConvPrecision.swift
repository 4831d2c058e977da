/// The arithmetic of the conv base's matrix products.
public enum ConvPrecision: String, Sendable, Codable, CaseIterable {
    /// fp32 inputs, weights and sums (OpenBLAS `sgemm`): the reference results.
    case fp32
    /// Inputs and weights rounded to bf16, sums in fp32 (AVX512_BF16 `vdpbf16ps`); opt-in. Needs the CPU
    /// flag avx512_bf16: a conv base refuses to be built without it, never falling back to fp32.
    /// `.adaptive` then means F(4×4) on maps of at least `ConvAlgorithm.bf16LargeMapSide` on both sides with at
    /// least `ConvAlgorithm.bf16LargeTileMinimumDepth` input channels, F(2×2) elsewhere: F(4×4)'s transforms,
    /// which scale by up to 8, magnify bf16's rounding, past the bound bf16 features are held to
    /// (BF16PrecisionTests) when every layer takes them, or when the layers taking them are narrow (each output
    /// then sums few rounded products).
    case bf16
}

extension ConvAlgorithm {
    /// Smallest height and width at which `.adaptive` uses 4×4 tiles in bf16: blocks 1–2 at 150×150 and at
    /// 224×224. Taking block 3 too brought the features' error against fp32 near or past the bound
    /// (BENCHMARKS.md).
    public static let bf16LargeMapSide = 64
    /// Fewest input channels of a layer that `.adaptive` computes in 4×4 tiles in bf16 (VGG16's full widths
    /// from block1_conv2 on have 64 or more); narrower layers stay in F(2×2).
    public static let bf16LargeTileMinimumDepth = 64

    /// The algorithm a layer of `inChannels` input channels on a `height` × `width` map uses at `precision`
    /// (`inChannels` matters only in bf16).
    public func resolved(height: Int, width: Int, inChannels: Int, precision: ConvPrecision) -> ConvAlgorithm {
        if precision == .bf16 && self == .adaptive {
            let large = min(height, width) >= Self.bf16LargeMapSide && inChannels >= Self.bf16LargeTileMinimumDepth
            return large ? .winograd4x4 : .winograd
        }
        return resolved(height: height, width: width)
    }
}
