import CShims

/// Decodes image bytes the way Keras' `load_img(color_mode='rgb')` does with Pillow: the format is sniffed
/// from the content (never the file name), the image is decoded and converted with `convert('RGB')`.
///
/// Supported: JPEG (libjpeg, ISLOW IDCT, fancy upsampling; grayscale, RGB, CMYK/YCCK as Adobe-inverted
/// "CMYK;I"), PNG (all bit depths and colour types, interlaced or not), BMP (1/4/8-bit palette, 16/24/32-bit,
/// BITFIELDS, RLE8/RLE4), PPM/PGM/PBM (P1–P6). EXIF orientation is ignored, as Keras does.
/// TIFF, GIF, WebP and other formats Pillow can open are reported as unsupported.
public enum ImageDecoder {
    /// Decodes `bytes` to 8-bit RGB. `filename` only names the image in errors.
    public static func decode(_ bytes: [UInt8], filename: String) throws(ImageDecodeError) -> DecodedImage {
        do {
            switch try sniff(bytes) {
            case .jpeg: return try JPEGDecoding.decode(bytes)
            case .png: return try PNGDecoding.decode(bytes)
            case .bmp: return try BMPDecoding.decode(bytes, headerOnly: false).image!
            case .pnm: return try PNMDecoding.decode(bytes, headerOnly: false).image!
            }
        } catch {
            throw ImageDecodeError(filename: filename, reason: error.reason)
        }
    }

    /// Reads only as much as needed for the size and Pillow mode (for data inspection).
    public static func header(_ bytes: [UInt8], filename: String) throws(ImageDecodeError)
        -> (width: Int, height: Int, format: String, sourceMode: String)
    {
        do {
            switch try sniff(bytes) {
            case .jpeg: return try JPEGDecoding.header(bytes)
            case .png: return try PNGDecoding.header(bytes)
            case .bmp: return try BMPDecoding.decode(bytes, headerOnly: true).header
            case .pnm: return try PNMDecoding.decode(bytes, headerOnly: true).header
            }
        } catch {
            throw ImageDecodeError(filename: filename, reason: error.reason)
        }
    }

    enum Format { case jpeg, png, bmp, pnm }

    static func sniff(_ bytes: [UInt8]) throws(DecodeFailure) -> Format {
        if bytes.isEmpty { throw DecodeFailure("empty file") }
        func starts(_ prefix: [UInt8]) -> Bool { bytes.count >= prefix.count && bytes.starts(with: prefix) }
        if starts([0xFF, 0xD8, 0xFF]) { return .jpeg }
        if starts([0x89, 0x50, 0x4E, 0x47, 0x0D, 0x0A, 0x1A, 0x0A]) { return .png }
        if starts([0x42, 0x4D]) { return .bmp }
        if bytes.count >= 2, bytes[0] == 0x50, Array("0123456fy".utf8).contains(bytes[1]) { return .pnm }
        if let other = otherFormat(bytes) {
            throw DecodeFailure("unsupported format \(other) (not decoded by this reader)")
        }
        throw DecodeFailure("not a supported image (cannot identify image file)")
    }

    /// Names formats Pillow would open but this reader does not decode.
    static func otherFormat(_ b: [UInt8]) -> String? {
        func starts(_ s: [UInt8]) -> Bool { b.count >= s.count && b.starts(with: s) }
        if starts([0x49, 0x49, 0x2A, 0x00]) || starts([0x4D, 0x4D, 0x00, 0x2A]) || starts([0x49, 0x49, 0x2B, 0x00])
            || starts([0x4D, 0x4D, 0x00, 0x2B])
        {
            return "TIFF"
        }
        if starts(Array("GIF87a".utf8)) || starts(Array("GIF89a".utf8)) { return "GIF" }
        if b.count >= 12, starts(Array("RIFF".utf8)), Array(b[8..<12]) == Array("WEBP".utf8) { return "WEBP" }
        if b.count >= 12, Array(b[4..<8]) == Array("ftyp".utf8) { return "AVIF/HEIF" }
        if starts([0x00, 0x00, 0x00, 0x0C, 0x6A, 0x50, 0x20, 0x20]) || starts([0xFF, 0x4F, 0xFF, 0x51]) {
            return "JPEG2000"
        }
        if starts(Array("8BPS".utf8)) { return "PSD" }
        if starts([0x00, 0x00, 0x01, 0x00]) { return "ICO" }
        return nil
    }
}

/// Internal failure carrying only the reason; the public decoder adds the file name.
struct DecodeFailure: Error {
    let reason: String
    init(_ reason: String) { self.reason = reason }
}
