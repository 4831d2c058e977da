/// How `ConvBase` computes a 3×3 convolution.
public enum ConvAlgorithm: String, Sendable, Codable, CaseIterable {
    /// im2col (one 3×3×Cin patch per output pixel) and one `cblas_sgemm` per band of output rows:
    /// the plain sum of 9·Cin products per output.
    case direct
    /// Winograd F(2×2, 3×3): 2×2 output tiles from 4×4 input tiles with 16 products instead of 36 per
    /// tile and channel pair (2.25× fewer multiplications), as 16 `cblas_sgemm` per band of tiles. The
    /// transforms use only ±1 and ½, so results agree with `.direct` to float rounding.
    case winograd
    /// Winograd F(4×4, 3×3): 4×4 output tiles from 6×6 input tiles, 36 products per tile and channel pair
    /// instead of 144 (4× fewer multiplications), as 36 `cblas_sgemm` per band of tiles. Its transforms
    /// scale by up to 8, so rounding errors are a few times those of `.winograd`.
    case winograd4x4
    /// `.winograd4x4` on maps at least `ConvAlgorithm.largeMapSide` on both sides, `.winograd` on smaller
    /// ones, where 4×4 tiles leave too few rows for efficient matrix products.
    case adaptive

    /// Smallest height and width at which `.adaptive` uses 4×4 tiles.
    public static let largeMapSide = 20

    /// The algorithm a layer on a `height` × `width` map actually uses.
    public func resolved(height: Int, width: Int) -> ConvAlgorithm {
        guard self == .adaptive else { return self }
        return min(height, width) >= Self.largeMapSide ? .winograd4x4 : .winograd
    }
}
