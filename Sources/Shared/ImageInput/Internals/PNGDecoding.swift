import CShims

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// PNG through libpng's classic API (raw rows, no transforms), then Pillow's modes and unpackers:
///
/// | IHDR (depth, colour type) | Pillow mode (raw mode) | convert('RGB') |
/// |---|---|---|
/// | 1, gray | "1" | bit → 0 / 255 |
/// | 2 / 4 / 8, gray | "L" (L;2 scales ×85, L;4 ×17) | replicate |
/// | 16, gray | "I;16" (I;16B) | v > 255 ? 255 : v |
/// | 8 / 16, RGB | "RGB" (RGB;16B keeps the high byte) | copy |
/// | 1–8, palette | "P" | palette lookup, entries past the palette are black, tRNS ignored |
/// | 8, gray+alpha | "LA" | replicate L, drop alpha |
/// | 16, gray+alpha | "RGBA" (LA;16B, high byte) | replicate L |
/// | 8 / 16, RGBA | "RGBA" (high byte) | drop alpha without compositing |
///
/// gAMA, sRGB, iCCP and tRNS colour keys are ignored, as Pillow ignores them in `convert('RGB')`.
enum PNGDecoding {
    static func mode(bitDepth: Int32, colorType: Int32) -> String? {
        switch (colorType, bitDepth) {
        case (0, 1): return "1"
        case (0, 2), (0, 4), (0, 8): return "L"
        case (0, 16): return "I;16"
        case (2, 8), (2, 16): return "RGB"
        case (3, 1), (3, 2), (3, 4), (3, 8): return "P"
        case (4, 8): return "LA"
        case (4, 16), (6, 8), (6, 16): return "RGBA"
        default: return nil
        }
    }

    static func header(_ bytes: [UInt8]) throws(DecodeFailure) -> (
        width: Int, height: Int, format: String, sourceMode: String
    ) {
        var image = bn_png_image()
        try run(bytes, headerOnly: true, &image)
        guard let mode = mode(bitDepth: image.bit_depth, colorType: image.color_type) else {
            throw DecodeFailure("unknown PNG mode (bit depth \(image.bit_depth), colour type \(image.color_type))")
        }
        return (Int(image.width), Int(image.height), "PNG", mode)
    }

    static func decode(_ bytes: [UInt8]) throws(DecodeFailure) -> DecodedImage {
        try PNGChunkRules.check(bytes)
        var image = bn_png_image()
        try run(bytes, headerOnly: false, &image)
        defer { free(image.pixels) }
        guard let source = image.pixels else { throw DecodeFailure("PNG decoder returned no pixels") }
        guard let mode = mode(bitDepth: image.bit_depth, colorType: image.color_type) else {
            throw DecodeFailure("unknown PNG mode (bit depth \(image.bit_depth), colour type \(image.color_type))")
        }
        let width = Int(image.width)
        let height = Int(image.height)
        let rowBytes = image.rowbytes
        let depth = Int(image.bit_depth)
        let colorType = Int(image.color_type)
        let palette: [UInt8] =
            colorType == 3
            ? withUnsafeBytes(of: &image.palette) { raw in
                ModeConversion.paddedPalette(raw.bindMemory(to: UInt8.self), count: Int(image.palette_count))
            } : []

        let rgb = try makeRGB(width: width, height: height) { out throws(DecodeFailure) in
            for y in 0..<height {
                let row = source + y * rowBytes
                let dst = out + y * width * 3
                switch (colorType, depth) {
                case (0, 8):
                    for x in 0..<width { let v = row[x]; dst[3 * x] = v; dst[3 * x + 1] = v; dst[3 * x + 2] = v }
                case (0, 16):
                    for x in 0..<width {
                        let v: UInt8 = row[2 * x] != 0 ? 255 : row[2 * x + 1]
                        dst[3 * x] = v; dst[3 * x + 1] = v; dst[3 * x + 2] = v
                    }
                case (0, _):
                    // 1, 2 or 4 bits, packed from the most significant bit; scaled to 0...255.
                    let scale: UInt8 = depth == 1 ? 255 : (depth == 2 ? 85 : 17)
                    let perByte = 8 / depth
                    let mask = UInt8((1 << depth) - 1)
                    for x in 0..<width {
                        let byte = row[x / perByte]
                        let shift = 8 - depth * (x % perByte + 1)
                        let v = ((byte >> UInt8(shift)) & mask) &* scale
                        dst[3 * x] = v; dst[3 * x + 1] = v; dst[3 * x + 2] = v
                    }
                case (2, 8):
                    dst.update(from: row, count: width * 3)
                case (2, 16):
                    for i in 0..<(width * 3) { dst[i] = row[2 * i] }
                case (3, _):
                    palette.withUnsafeBufferPointer { lut in
                        let perByte = 8 / depth
                        let mask = UInt8((1 << depth) - 1)
                        for x in 0..<width {
                            let index: Int
                            if depth == 8 {
                                index = Int(row[x])
                            } else {
                                let shift = 8 - depth * (x % perByte + 1)
                                index = Int((row[x / perByte] >> UInt8(shift)) & mask)
                            }
                            dst[3 * x] = lut[3 * index]; dst[3 * x + 1] = lut[3 * index + 1];
                            dst[3 * x + 2] = lut[3 * index + 2]
                        }
                    }
                case (4, 8):
                    for x in 0..<width { let v = row[2 * x]; dst[3 * x] = v; dst[3 * x + 1] = v; dst[3 * x + 2] = v }
                case (4, 16):
                    for x in 0..<width { let v = row[4 * x]; dst[3 * x] = v; dst[3 * x + 1] = v; dst[3 * x + 2] = v }
                case (6, 8):
                    for x in 0..<width {
                        dst[3 * x] = row[4 * x]; dst[3 * x + 1] = row[4 * x + 1]; dst[3 * x + 2] = row[4 * x + 2]
                    }
                case (6, 16):
                    for x in 0..<width {
                        dst[3 * x] = row[8 * x]; dst[3 * x + 1] = row[8 * x + 2]; dst[3 * x + 2] = row[8 * x + 4]
                    }
                default:
                    throw DecodeFailure("unsupported PNG bit depth \(depth) for colour type \(colorType)")
                }
            }
        }
        return DecodedImage(width: width, height: height, rgb: rgb, format: "PNG", sourceMode: mode)
    }

    private static func run(_ bytes: [UInt8], headerOnly: Bool, _ image: inout bn_png_image) throws(DecodeFailure) {
        var message = [CChar](repeating: 0, count: 200)
        let code = bytes.withUnsafeBufferPointer { data in
            message.withUnsafeMutableBufferPointer { text in
                bn_png_decode(data.baseAddress, data.count, headerOnly ? 1 : 0, &image, text.baseAddress, text.count)
            }
        }
        if code == 0 { return }
        let text = message.withUnsafeBufferPointer { String(cString: $0.baseAddress!) }
        switch Int(code) {
        case Int(BN_DECODE_TRUNCATED): throw DecodeFailure("truncated PNG: \(text)")
        case Int(BN_DECODE_NOMEM): throw DecodeFailure("out of memory decoding PNG")
        default: throw DecodeFailure("corrupt PNG: \(text)")
        }
    }
}
