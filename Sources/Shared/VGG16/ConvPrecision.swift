/// The arithmetic of the conv base's matrix products.
public enum ConvPrecision: String, Sendable, Codable, CaseIterable {
    /// fp32 inputs, weights and sums (OpenBLAS `sgemm`): the reference results.
    case fp32
    /// Inputs and weights rounded to bf16, sums in fp32 (AVX512_BF16 `vdpbf16ps`); opt-in. Needs the CPU
    /// flag avx512_bf16: a conv base refuses to be built without it, never falling back to fp32.
    /// `.adaptive` then means `.winograd` (F(2×2)) on every map: F(4×4)'s transforms, which scale by up to 8,
    /// magnify bf16's rounding beyond the error bf16 features are held to (BF16PrecisionTests).
    case bf16
}

extension ConvAlgorithm {
    /// The algorithm a layer on a `height` × `width` map uses at `precision`.
    public func resolved(height: Int, width: Int, precision: ConvPrecision) -> ConvAlgorithm {
        if precision == .bf16 && self == .adaptive { return .winograd }
        return resolved(height: height, width: width)
    }
}
