/// Binary Netpbm (P4 bitmap, P5 graymap, P6 pixmap), following Pillow's PpmImagePlugin: header tokens
/// separated by whitespace with `#` comments; maxval 255 is read raw; another maxval is rescaled with
/// Python's `round(v / maxval * out_max)` (half to even); a P5 with maxval > 255 becomes mode "I"
/// (0...65535) which `convert('RGB')` clamps to 255. The plain (ASCII) variants P1–P3 are not decoded.
enum PNMDecoding {
    typealias Header = (width: Int, height: Int, format: String, sourceMode: String)

    static func decode(_ data: [UInt8], headerOnly: Bool) throws(DecodeFailure) -> (header: Header, image: DecodedImage?) {
        try data.withUnsafeBufferPointer { (buf) throws(DecodeFailure) in try decode(buf, headerOnly: headerOnly) }
    }

    static func isWhitespace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }

    static func decode(_ d: UnsafeBufferPointer<UInt8>, headerOnly: Bool) throws(DecodeFailure)
        -> (header: Header, image: DecodedImage?)
    {
        var pos = 0
        var magic: [UInt8] = []
        while magic.count < 6, pos < d.count {
            let c = d[pos]
            pos += 1
            if isWhitespace(c) { break }
            magic.append(c)
        }
        let kind = String(decoding: magic, as: UTF8.self)
        switch kind {
        case "P4", "P5", "P6": break
        case "P1", "P2", "P3": throw DecodeFailure("unsupported format PPM plain (ASCII) variant \(kind)")
        default: throw DecodeFailure("not a supported PPM file (magic \(kind.debugDescription))")
        }

        func token() throws(DecodeFailure) -> Int {
            var text: [UInt8] = []
            while text.count <= 10 {
                guard pos < d.count else { break }
                let c = d[pos]
                pos += 1
                if isWhitespace(c) {
                    if text.isEmpty { continue }
                    break
                } else if c == UInt8(ascii: "#") {
                    while pos < d.count, d[pos] != 0x0D, d[pos] != 0x0A { pos += 1 }
                    if pos < d.count { pos += 1 }
                    continue
                }
                text.append(c)
            }
            if text.isEmpty { throw DecodeFailure("truncated PPM: reached end of file while reading header") }
            guard text.count <= 10, let value = Int(String(decoding: text, as: UTF8.self)), value >= 0 else {
                throw DecodeFailure("PPM header token \(String(decoding: text, as: UTF8.self).debugDescription) is not a size")
            }
            return value
        }
        let width = try token()
        let height = try token()
        var maxval = 1
        var mode: String
        switch kind {
        case "P4": mode = "1"
        case "P5": mode = "L"
        default: mode = "RGB"
        }
        if kind != "P4" {
            maxval = try token()
            guard maxval > 0 && maxval < 65536 else {
                throw DecodeFailure("maxval must be greater than 0 and less than 65536")
            }
            if maxval > 255 && mode == "L" { mode = "I" }
        }
        try PixelLimit.check(width: width, height: height)
        let header: Header = (width, height, "PPM", mode)
        if headerOnly { return (header, nil) }

        let bands = kind == "P6" ? 3 : 1
        let sampleBytes = maxval < 256 ? 1 : 2
        let needed = kind == "P4" ? ((width + 7) / 8) * height : width * height * bands * sampleBytes
        guard needed <= d.count - pos else {
            throw DecodeFailure("truncated PPM: pixel data needs \(needed) bytes, \(d.count - pos) present")
        }
        let src = d.baseAddress! + pos
        let rgb = try makeRGB(width: width, height: height) { out throws(DecodeFailure) in
            if kind == "P4" {
                let stride = (width + 7) / 8
                for y in 0..<height {
                    for x in 0..<width {
                        // "1;I": a set bit is black.
                        let v: UInt8 = (src[y * stride + x >> 3] >> UInt8(7 - (x & 7))) & 1 == 1 ? 0 : 255
                        let o = 3 * (y * width + x)
                        out[o] = v; out[o + 1] = v; out[o + 2] = v
                    }
                }
                return
            }
            let count = width * height * bands
            // Per-sample mapping to the 8-bit RGB value, through a lookup table over all maxval+1 inputs.
            let outMax = mode == "I" ? 65535 : 255
            var lut = [UInt8](repeating: 255, count: 65536)
            for v in 0...maxval {
                var scaled = v
                if maxval != 255 && !(maxval == 65535 && mode == "I") {
                    scaled = min(outMax, Int((Double(v) / Double(maxval) * Double(outMax)).rounded(.toNearestOrEven)))
                }
                lut[v] = UInt8(min(scaled, 255))
            }
            lut.withUnsafeBufferPointer { lut in
                for i in 0..<count {
                    let v = sampleBytes == 1 ? Int(src[i]) : (Int(src[2 * i]) << 8 | Int(src[2 * i + 1]))
                    let value = lut[min(v, maxval) & 0xFFFF]
                    if bands == 3 {
                        out[i] = value
                    } else {
                        out[3 * i] = value; out[3 * i + 1] = value; out[3 * i + 2] = value
                    }
                }
            }
        }
        return (header, DecodedImage(width: width, height: height, rgb: rgb, format: "PPM", sourceMode: mode))
    }
}
