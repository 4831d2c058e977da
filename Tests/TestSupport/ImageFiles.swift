import CPNG
import CShims
import Foundation
import ImageInput

#if canImport(Glibc)
    import Glibc
#endif

/// Helpers that make test images (bytes in every format the project reads) and temporary trees.
public enum ImageFiles {
    /// The deterministic RGB pattern also produced by `Tests/ImageInputTests/Fixtures/make_fixtures.py`:
    /// `v(x, y, c) = (7x + 13y + 71c + (x*y mod 29)) & 255`, HWC.
    public static func syntheticRGB(width: Int, height: Int) -> [UInt8] {
        var out = [UInt8](repeating: 0, count: width * height * 3)
        for y in 0..<height {
            for x in 0..<width {
                for c in 0..<3 {
                    out[(y * width + x) * 3 + c] = UInt8((x * 7 + y * 13 + c * 71 + (x * y) % 29) & 255)
                }
            }
        }
        return out
    }

    public static func syntheticImage(width: Int, height: Int) -> DecodedImage {
        DecodedImage(
            width: width, height: height, rgb: syntheticRGB(width: width, height: height), format: "PNG",
            sourceMode: "RGB")
    }

    /// FNV-1a 64-bit hash as 16 lower-case hex digits.
    public static func fnv1a64Hex(_ bytes: [UInt8]) -> String {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in bytes {
            h ^= UInt64(b)
            h = h &* 0x100_0000_01b3
        }
        let hex = String(h, radix: 16)
        return String(repeating: "0", count: 16 - hex.count) + hex
    }

    public struct EncodeError: Error, CustomStringConvertible {
        public let description: String
    }

    /// PNG bytes of 8-bit pixels (HWC) with 1 (gray), 2 (gray+alpha), 3 (RGB) or 4 (RGBA) channels,
    /// written with libpng's simplified API (lossless).
    public static func png(_ pixels: [UInt8], width: Int, height: Int, channels: Int) throws -> [UInt8] {
        precondition(pixels.count == width * height * channels)
        var image = png_image()
        image.version = UInt32(PNG_IMAGE_VERSION)
        image.width = UInt32(width)
        image.height = UInt32(height)
        var format: UInt32 = 0
        if channels >= 3 { format |= UInt32(PNG_FORMAT_FLAG_COLOR) }
        if channels == 2 || channels == 4 { format |= UInt32(PNG_FORMAT_FLAG_ALPHA) }
        image.format = format
        var size = 0
        guard png_image_write_to_memory(&image, nil, &size, 0, pixels, 0, nil) != 0 else {
            throw EncodeError(description: "png size query failed")
        }
        var out = [UInt8](repeating: 0, count: size)
        let ok = out.withUnsafeMutableBytes { buf in
            png_image_write_to_memory(&image, buf.baseAddress, &size, 0, pixels, 0, nil)
        }
        guard ok != 0 else { throw EncodeError(description: "png write failed") }
        return Array(out.prefix(size))
    }

    /// JPEG bytes of 8-bit pixels (HWC) with 1 (gray), 3 (RGB) or 4 (CMYK; `ycck` selects YCCK coding) channels.
    public static func jpeg(
        _ pixels: [UInt8], width: Int, height: Int, channels: Int, quality: Int = 90, progressive: Bool = false,
        ycck: Bool = false
    ) throws -> [UInt8] {
        precondition(pixels.count == width * height * channels)
        var out: UnsafeMutablePointer<UInt8>? = nil
        var size = 0
        var message = [CChar](repeating: 0, count: 200)
        let code = message.withUnsafeMutableBufferPointer { text in
            bn_jpeg_encode(
                pixels, Int32(width), Int32(height), Int32(channels), Int32(quality), progressive ? 1 : 0, ycck ? 1 : 0,
                &out, &size, text.baseAddress, text.count)
        }
        guard code == 0, let out else {
            throw EncodeError(description: message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) })
        }
        defer { free(out) }
        return Array(UnsafeBufferPointer(start: out, count: size))
    }

    /// Uncompressed 24-bit BMP (bottom-up, or top-down with a negative height) of RGB pixels.
    public static func bmp24(_ rgb: [UInt8], width: Int, height: Int, topDown: Bool = false) -> [UInt8] {
        let stride = (width * 3 + 3) & ~3
        var data = [UInt8]()
        func le32(_ v: Int) {
            data += [UInt8(v & 255), UInt8((v >> 8) & 255), UInt8((v >> 16) & 255), UInt8((v >> 24) & 255)]
        }
        func le16(_ v: Int) { data += [UInt8(v & 255), UInt8((v >> 8) & 255)] }
        data += Array("BM".utf8)
        le32(54 + stride * height); le16(0); le16(0); le32(54)
        le32(40); le32(width); le32(topDown ? -height : height); le16(1); le16(24); le32(0); le32(stride * height)
        le32(2835); le32(2835); le32(0); le32(0)
        for row in 0..<height {
            let y = topDown ? row : height - 1 - row
            for x in 0..<width {
                let p = (y * width + x) * 3
                data += [rgb[p + 2], rgb[p + 1], rgb[p]]
            }
            data += [UInt8](repeating: 0, count: stride - width * 3)
        }
        return data
    }

    /// Binary PPM (P6) of RGB pixels, maxval 255.
    public static func ppm(_ rgb: [UInt8], width: Int, height: Int) -> [UInt8] {
        Array("P6\n\(width) \(height)\n255\n".utf8) + rgb
    }

    /// A fresh directory under the system temporary directory; remove it with `removeTree`.
    public static func temporaryDirectory(_ label: String = "bottleneck") throws -> String {
        let url = FileManager.default.temporaryDirectory.appendingPathComponent("\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: url, withIntermediateDirectories: true)
        return url.path
    }

    public static func removeTree(_ path: String) {
        try? FileManager.default.removeItem(atPath: path)
    }

    /// Writes `bytes` to `path`, creating parent directories.
    public static func write(_ bytes: [UInt8], to path: String) throws {
        let url = URL(fileURLWithPath: path)
        try FileManager.default.createDirectory(at: url.deletingLastPathComponent(), withIntermediateDirectories: true)
        try Data(bytes).write(to: url)
    }
}
