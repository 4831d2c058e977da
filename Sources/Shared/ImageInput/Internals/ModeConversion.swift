/// Pillow's `convert('RGB')` for each source mode, written into an HWC RGB buffer. Every function works
/// on one row at a time over raw pointers.
enum ModeConversion {
    /// Pillow's MULDIV255: `(a*b + 128 + ((a*b + 128) >> 8)) >> 8`.
    @inline(__always)
    static func mulDiv255(_ a: Int32, _ b: Int32) -> Int32 {
        let t = a &* b &+ 128
        return ((t >> 8) &+ t) >> 8
    }

    @inline(__always)
    static func clip8(_ v: Int32) -> UInt8 { v <= 0 ? 0 : (v >= 255 ? 255 : UInt8(v)) }

    /// `cmyk2rgb` (Pillow ≥ 4.3): `nk = 255-K; R = CLIP8(nk - MULDIV255(C, nk))`. Input is Pillow's CMYK
    /// (after the "CMYK;I" unpacker has inverted libjpeg's Adobe samples when `inverted` is true).
    @inline(__always)
    static func cmykToRGB(c: UInt8, m: UInt8, y: UInt8, k: UInt8) -> (UInt8, UInt8, UInt8) {
        let nk = 255 - Int32(k)
        return (
            clip8(nk - mulDiv255(Int32(c), nk)), clip8(nk - mulDiv255(Int32(m), nk)),
            clip8(nk - mulDiv255(Int32(y), nk))
        )
    }

    /// A 256-entry RGB palette padded with black, as Pillow leaves entries beyond the file's palette.
    static func paddedPalette(_ rgbTriplets: UnsafeBufferPointer<UInt8>, count: Int) -> [UInt8] {
        var palette = [UInt8](repeating: 0, count: 256 * 3)
        let n = min(count, 256)
        for i in 0..<(n * 3) { palette[i] = rgbTriplets[i] }
        return palette
    }
}

/// Allocates the `[UInt8]` RGB buffer of an image and lets `body` fill it row by row.
@inline(__always)
func makeRGB(width: Int, height: Int, _ body: (UnsafeMutablePointer<UInt8>) throws(DecodeFailure) -> Void)
    throws(DecodeFailure) -> [UInt8]
{
    guard width > 0, height > 0 else { throw DecodeFailure("image has zero width or height (\(width)x\(height))") }
    let count = width * height * 3
    var failure: DecodeFailure?
    let rgb = [UInt8](unsafeUninitializedCapacity: count) { buffer, initialized in
        do throws(DecodeFailure) {
            try body(buffer.baseAddress!)
        } catch {
            failure = error
            buffer.baseAddress!.update(repeating: 0, count: count)
        }
        initialized = count
    }
    if let failure { throw failure }
    return rgb
}

/// Pillow's decompression-bomb limit: `Image.open` raises `DecompressionBombError` above twice
/// `MAX_IMAGE_PIXELS` (89,478,485), so such images fail in Keras too. Also keeps size arithmetic in range.
enum PixelLimit {
    static let maxPixels = 2 * 89_478_485

    static func check(width: Int, height: Int) throws(DecodeFailure) {
        guard width >= 0, height >= 0 else { throw DecodeFailure("negative image size \(width)x\(height)") }
        let (pixels, overflow) = width.multipliedReportingOverflow(by: height)
        if overflow || pixels > maxPixels {
            throw DecodeFailure(
                "image size (\(width)x\(height)) exceeds limit of \(maxPixels) pixels, could be decompression bomb DOS attack"
            )
        }
    }
}
