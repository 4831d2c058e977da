/// How `ConvBase` computes a 3×3 convolution.
public enum ConvAlgorithm: String, Sendable, Codable, CaseIterable {
    /// im2col (one 3×3×Cin patch per output pixel) and one `cblas_sgemm` per band of output rows:
    /// the plain sum of 9·Cin products per output.
    case direct
    /// Winograd F(2×2, 3×3): 2×2 output tiles from 4×4 input tiles with 16 products instead of 36 per
    /// tile and channel pair (2.25× fewer multiplications), as 16 matrix products per band of tiles. The
    /// transforms use only ±1 and ½, so results agree with `.direct` to float rounding.
    case winograd
    /// Winograd F(4×4, 3×3): 4×4 output tiles from 6×6 input tiles, 36 products per tile and channel pair
    /// instead of 144 (4× fewer multiplications), as 36 matrix products per band of tiles. Its transforms
    /// scale by up to 8, so rounding errors are a few times those of `.winograd`.
    case winograd4x4
    /// `.winograd4x4` on maps at least `ConvAlgorithm.largeMapSide` on both sides, `.winograd` on smaller
    /// ones; in fp32, F(6×6, 3×3) tiles (8×8 input tiles, points 0, ±1, ±2, ±½, ∞: 64 products per tile and
    /// channel pair instead of 324) where they need at most `largeTileShare` of F(4×4)'s multiplications
    /// (tiles × points, the map cut to whole pooling windows when a pool follows) on a map at least
    /// `largestTileMapSide` on both sides. F(6×6)'s transforms scale by up to 32: its rounding errors are a
    /// few times F(4×4)'s, within the bounds every algorithm is held to against Keras.
    case adaptive

    /// Smallest height and width at which `.adaptive` uses 4×4 tiles.
    public static let largeMapSide = 20
    /// Smallest height and width at which `.adaptive` considers 6×6 tiles.
    public static let largestTileMapSide = 12
    /// `.adaptive` takes 6×6 tiles when they need at most this share of the multiplications of 4×4 tiles: their
    /// transforms cost more per tile, so a small saving does not pay.
    public static let largeTileShare = 0.8

    /// The algorithm a layer on a `height` × `width` map actually uses.
    public func resolved(height: Int, width: Int) -> ConvAlgorithm {
        guard self == .adaptive else { return self }
        return min(height, width) >= Self.largeMapSide ? .winograd4x4 : .winograd
    }

    /// Output pixels per tile side of the resolved algorithm (`.direct`: 1): 2, 4, or 6 where `.adaptive` in fp32
    /// takes F(6×6) (`pools`: a 2×2 max-pool follows, so only whole pooling windows are computed).
    func tileSide(height: Int, width: Int, inChannels: Int, pools: Bool, precision: ConvPrecision) -> Int {
        let algorithm = resolved(height: height, width: width, inChannels: inChannels, precision: precision)
        let side = algorithm == .direct ? 1 : (algorithm == .winograd ? 2 : 4)
        guard self == .adaptive && precision == .fp32 && min(height, width) >= Self.largestTileMapSide else {
            return side
        }
        let rows = pools ? height / 2 * 2 : height
        let columns = pools ? width / 2 * 2 : width
        func multiplications(_ side: Int) -> Int {
            (side + 2) * (side + 2) * ((rows + side - 1) / side) * ((columns + side - 1) / side)
        }
        return Double(multiplications(6)) <= Self.largeTileShare * Double(multiplications(4)) ? 6 : side
    }
}
