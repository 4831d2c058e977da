import CShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// JPEG through libjpeg (Debian's libjpeg62-turbo) via the C shim, then Pillow's unpacking and
/// `convert('RGB')`: 1 component = "L", 3 = "RGB", 4 = "CMYK" read with Pillow's "CMYK;I" raw mode
/// (Adobe inversion assumed, libjpeg having converted YCCK to CMYK).
enum JPEGDecoding {
    static let messageCapacity = 200

    static func mode(components: Int32) -> String {
        switch components {
        case 1: return "L"
        case 4: return "CMYK"
        default: return "RGB"
        }
    }

    static func header(_ bytes: [UInt8]) throws(DecodeFailure) -> (
        width: Int, height: Int, format: String, sourceMode: String
    ) {
        try JPEGMarkerScan.check(bytes)
        var image = bn_jpeg_image()
        try run(bytes, headerOnly: true, &image)
        return (Int(image.width), Int(image.height), "JPEG", mode(components: image.components))
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeFailure) -> DecodedImage {
        try JPEGMarkerScan.check(bytes)
        var image = bn_jpeg_image()
        try run(bytes, headerOnly: false, &image)
        defer { free(image.pixels) }
        guard let source = image.pixels else { throw DecodeFailure("JPEG decoder returned no pixels") }
        let width = Int(image.width)
        let height = Int(image.height)
        let components = Int(image.components)
        let pixelCount = width * height
        let rgb = try makeRGB(width: width, height: height) { out throws(DecodeFailure) in
            switch components {
            case 3:
                out.update(from: source, count: pixelCount * 3)
            case 1:
                for i in 0..<pixelCount {
                    let v = source[i]
                    out[3 * i] = v
                    out[3 * i + 1] = v
                    out[3 * i + 2] = v
                }
            case 4:
                for i in 0..<pixelCount {
                    // "CMYK;I": Pillow inverts libjpeg's samples, then converts CMYK to RGB.
                    let (r, g, b) = ModeConversion.cmykToRGB(
                        c: 255 - source[4 * i], m: 255 - source[4 * i + 1], y: 255 - source[4 * i + 2],
                        k: 255 - source[4 * i + 3])
                    out[3 * i] = r
                    out[3 * i + 1] = g
                    out[3 * i + 2] = b
                }
            default:
                throw DecodeFailure("cannot handle \(components)-layer JPEG images")
            }
        }
        return DecodedImage(
            width: width, height: height, rgb: rgb, format: "JPEG", sourceMode: mode(components: image.components))
    }

    private static func run(_ bytes: [UInt8], headerOnly: Bool, _ image: inout bn_jpeg_image) throws(DecodeFailure) {
        var message = [CChar](repeating: 0, count: messageCapacity)
        let code = bytes.withUnsafeBufferPointer { data in
            message.withUnsafeMutableBufferPointer { text in
                bn_jpeg_decode(data.baseAddress, data.count, headerOnly ? 1 : 0, &image, text.baseAddress, text.count)
            }
        }
        if code == 0 { return }
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        switch Int(code) {
        case Int(BN_DECODE_TRUNCATED): throw DecodeFailure("truncated JPEG: \(text)")
        case Int(BN_DECODE_NOMEM): throw DecodeFailure("out of memory decoding JPEG")
        default: throw DecodeFailure("corrupt JPEG: \(text)")
        }
    }
}
