import Foundation

/// How points outside the image are filled (Keras' `fill_mode`, passed through to `scipy.ndimage`).
///
/// - `nearest`: the edge pixel (`aaaa|abcd|dddd`).
/// - `constant`: the fill value (`cval`) everywhere outside `[0, size − 1]`.
/// - `reflect`: mirrored about the pixel edge (`dcba|abcd|dcba`).
/// - `wrap`: scipy's `wrap`, whose period is `size − 1` (the first and last pixels coincide).
public enum FillMode: String, Sendable, Codable, CaseIterable, Equatable {
    case nearest, constant, reflect, wrap
}

/// The parameters of one augmentation, with the meanings of Keras' `ImageDataGenerator.apply_transform`
/// dictionary: `theta` rotation in degrees; `tx`, `ty` shifts in pixels (Keras draws `tx` from
/// `height_shift_range` and `ty` from `width_shift_range`); `shear` in degrees; `zx`, `zy` zoom factors
/// (above 1 shows a smaller part of the image); then the flips.
public struct TransformParameters: Sendable, Equatable, Codable {
    public var theta: Double
    public var tx: Double
    public var ty: Double
    public var shear: Double
    public var zx: Double
    public var zy: Double
    public var flipHorizontal: Bool
    public var flipVertical: Bool

    public init(
        theta: Double = 0, tx: Double = 0, ty: Double = 0, shear: Double = 0, zx: Double = 1, zy: Double = 1,
        flipHorizontal: Bool = false, flipVertical: Bool = false
    ) {
        self.theta = theta
        self.tx = tx
        self.ty = ty
        self.shear = shear
        self.zx = zx
        self.zy = zy
        self.flipHorizontal = flipHorizontal
        self.flipVertical = flipVertical
    }

    /// True when applying the parameters returns the image unchanged.
    public var isIdentity: Bool { affineMatrix == nil && !flipHorizontal && !flipVertical }

    /// The 3×3 homogeneous matrix Keras builds (rotation · shift · shear · zoom, each factor only when it is
    /// not the identity), row-major; nil when no factor applies (Keras then skips the resampling).
    var affineMatrix: [Double]? {
        var matrix: [Double]?
        func multiply(_ factor: [Double]) {
            guard let current = matrix else {
                matrix = factor
                return
            }
            matrix = product3(current, factor)
        }
        if theta != 0 {
            let angle = theta * .pi / 180
            multiply([cos(angle), -sin(angle), 0, sin(angle), cos(angle), 0, 0, 0, 1])
        }
        if tx != 0 || ty != 0 { multiply([1, 0, tx, 0, 1, ty, 0, 0, 1]) }
        if shear != 0 {
            let angle = shear * .pi / 180
            multiply([1, -sin(angle), 0, 0, cos(angle), 0, 0, 0, 1])
        }
        if zx != 1 || zy != 1 { multiply([zx, 0, 0, 0, zy, 0, 0, 0, 1]) }
        return matrix
    }
}

/// `a · b` for row-major 3×3 matrices.
func product3(_ a: [Double], _ b: [Double]) -> [Double] {
    var out = [Double](repeating: 0, count: 9)
    for i in 0..<3 {
        for j in 0..<3 {
            var sum = 0.0
            for k in 0..<3 { sum += a[i * 3 + k] * b[k * 3 + j] }
            out[i * 3 + j] = sum
        }
    }
    return out
}

/// Applies augmentation transforms to HWC float images as Keras' `ImageDataGenerator.apply_transform` does.
public enum ImageAugmentation {
    /// Transforms `image` (HWC, `height · width · channels` values, the pixel values before preprocessing)
    /// into `output` (same layout; must not overlap `image`).
    ///
    /// Keras' order: the affine map (centred on the image, each output pixel pulled from the input with
    /// order-1 (bilinear) interpolation in double precision and `fillMode` outside, as `scipy.ndimage.
    /// affine_transform` 1.17 does), then the horizontal flip, then the vertical flip. Safe to call from several
    /// threads at once.
    public static func apply(
        _ parameters: TransformParameters, image: UnsafePointer<Float>, height: Int, width: Int, channels: Int = 3,
        fillMode: FillMode = .nearest, fillValue: Double = 0, output: UnsafeMutablePointer<Float>
    ) {
        precondition(height > 0 && width > 0 && channels > 0)
        if let matrix = parameters.affineMatrix {
            resample(
                image, height: height, width: width, channels: channels,
                map: pullMap(matrix, height: height, width: width), fillMode: fillMode, fillValue: fillValue,
                output: output)
        } else {
            output.update(from: image, count: height * width * channels)
        }
        if parameters.flipHorizontal {
            for r in 0..<height {
                let row = output + r * width * channels
                for c in 0..<(width / 2) {
                    for k in 0..<channels { swap(&row[c * channels + k], &row[(width - 1 - c) * channels + k]) }
                }
            }
        }
        if parameters.flipVertical {
            let rowCount = width * channels
            for r in 0..<(height / 2) {
                let top = output + r * rowCount
                let bottom = output + (height - 1 - r) * rowCount
                for i in 0..<rowCount { swap(&top[i], &bottom[i]) }
            }
        }
    }

    /// The map from an output pixel (row, column) to the input coordinate it is pulled from:
    /// `input = M · (row, column) + offset`, as Keras hands it to `scipy.ndimage.affine_transform`.
    ///
    /// Keras centres the matrix with the offsets `height/2 − 0.5` on the first coordinate and
    /// `width/2 − 0.5` on the second, then swaps the two coordinates (its matrices are written for (x, y),
    /// the arrays are indexed (row, column)).
    static func pullMap(_ matrix: [Double], height: Int, width: Int) -> (m: [Double], offset: [Double]) {
        let ox = Double(height) / 2 - 0.5
        let oy = Double(width) / 2 - 0.5
        let centred = product3(product3([1, 0, ox, 0, 1, oy, 0, 0, 1], matrix), [1, 0, -ox, 0, 1, -oy, 0, 0, 1])
        // Swap columns 0 and 1, then rows 0 and 1.
        var s = centred
        for i in 0..<3 { s.swapAt(i * 3, i * 3 + 1) }
        for j in 0..<3 { s.swapAt(j, 3 + j) }
        return ([s[0], s[1], s[3], s[4]], [s[2], s[5]])
    }

    /// scipy's `map_coordinate`: maps an input coordinate outside `[0, length − 1]` by the fill mode;
    /// nil means the fill value.
    static func mapCoordinate(_ x: Double, length: Int, fillMode: FillMode) -> Double? {
        let len = length
        var v = x
        if v < 0 {
            switch fillMode {
            case .nearest: v = 0
            case .constant: return nil
            case .reflect:
                if len <= 1 { return 0 }
                let sz2 = Double(2 * len)
                if v < -sz2 { v = sz2 * Double(Int(-v / sz2)) + v }
                v = v < Double(-len) ? v + sz2 : -v - 1
            case .wrap:
                if len <= 1 { return 0 }
                let sz = Double(len - 1)
                v += sz * Double(Int(-v / sz) + 1)
            }
        } else if v > Double(len - 1) {
            switch fillMode {
            case .nearest: v = Double(len - 1)
            case .constant: return nil
            case .reflect:
                if len <= 1 { return 0 }
                let sz2 = Double(2 * len)
                v -= sz2 * Double(Int(v / sz2))
                if v >= Double(len) { v = sz2 - v - 1 }
            case .wrap:
                if len <= 1 { return 0 }
                let sz = Double(len - 1)
                v -= sz * Double(Int(v / sz))
            }
        }
        return v > -1 ? v : nil
    }

    /// An index of a linear-interpolation neighbour outside `0..<length`, extended as scipy does at the
    /// border: reflected about the pixel edge for `reflect`, mirrored about the edge pixel otherwise (for
    /// the other modes the neighbour then has weight 0 or the coordinate was already mapped inside).
    @inline(__always)
    static func neighbourIndex(_ index: Int, length: Int, fillMode: FillMode) -> Int {
        if length <= 1 { return 0 }
        if fillMode == .reflect {
            let period = 2 * length
            var idx = index % period
            if idx < 0 { idx += period }
            return idx < length ? idx : period - idx - 1
        }
        let s2 = 2 * length - 2
        var idx = index
        if idx < 0 {
            idx = s2 * (-idx / s2) + idx
            idx = idx <= 1 - length ? idx + s2 : -idx
        } else if idx >= length {
            idx -= s2 * (idx / s2)
            if idx >= length { idx = s2 - idx }
        }
        return idx
    }

    private static func resample(
        _ image: UnsafePointer<Float>, height: Int, width: Int, channels: Int,
        map: (m: [Double], offset: [Double]), fillMode: FillMode, fillValue: Double,
        output: UnsafeMutablePointer<Float>
    ) {
        let (m, offset) = map
        let fill = Float(fillValue)
        for r in 0..<height {
            for c in 0..<width {
                let out = output + (r * width + c) * channels
                let rowCoordinate = Double(r) * m[0] + Double(c) * m[1] + offset[0]
                let columnCoordinate = Double(r) * m[2] + Double(c) * m[3] + offset[1]
                guard let y = mapCoordinate(rowCoordinate, length: height, fillMode: fillMode),
                    let x = mapCoordinate(columnCoordinate, length: width, fillMode: fillMode)
                else {
                    for k in 0..<channels { out[k] = fill }
                    continue
                }
                let y0 = Int(floor(y))
                let x0 = Int(floor(x))
                let fy = y - Double(y0)
                let fx = x - Double(x0)
                let rows = (
                    neighbourIndex(y0, length: height, fillMode: fillMode),
                    neighbourIndex(y0 + 1, length: height, fillMode: fillMode)
                )
                let columns = (
                    neighbourIndex(x0, length: width, fillMode: fillMode),
                    neighbourIndex(x0 + 1, length: width, fillMode: fillMode)
                )
                let wy = (1 - fy, fy)
                let wx = (1 - fx, fx)
                for k in 0..<channels {
                    func at(_ rr: Int, _ cc: Int) -> Double { Double(image[(rr * width + cc) * channels + k]) }
                    var t = 0.0
                    t += at(rows.0, columns.0) * wy.0 * wx.0
                    t += at(rows.0, columns.1) * wy.0 * wx.1
                    t += at(rows.1, columns.0) * wy.1 * wx.0
                    t += at(rows.1, columns.1) * wy.1 * wx.1
                    out[k] = Float(t)
                }
            }
        }
    }
}
