/// Binary Netpbm (P4 bitmap, P5 graymap, P6 pixmap), following Pillow's PpmImagePlugin: header tokens
/// separated by whitespace with `#` comments; maxval 255 is read raw; another maxval is rescaled with
/// Python's `round(v / maxval * out_max)` (half to even); a P5 with maxval > 255 becomes mode "I"
/// (0...65535) which `convert('RGB')` clamps to 255. The plain (ASCII) variants P1–P3 follow Pillow's
/// `PpmPlainDecoder` (comments stripped, every P1 character must be 0 or 1, values above maxval refused),
/// with the whole pixel text taken as one block (Pillow reads 1 MiB blocks; comments spanning a block
/// boundary of a larger file are the only case that could differ).
enum PNMDecoding {
    typealias Header = (width: Int, height: Int, format: String, sourceMode: String)

    static func decode(_ data: [UInt8], headerOnly: Bool) throws(DecodeFailure) -> (
        header: Header, image: DecodedImage?
    ) {
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
        case "P1", "P2", "P3", "P4", "P5", "P6": break
        default: throw DecodeFailure("not a supported PPM file (magic \(kind.debugDescription))")
        }
        let plain = kind == "P1" || kind == "P2" || kind == "P3"

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
            guard text.count <= 10, let value = pythonInt(text), value >= 0 else {
                throw DecodeFailure(
                    "PPM header token \(String(decoding: text, as: UTF8.self).debugDescription) is not a size")
            }
            return value
        }
        let width = try token()
        let height = try token()
        var maxval = 1
        var mode: String
        switch kind {
        case "P1", "P4": mode = "1"
        case "P2", "P5": mode = "L"
        default: mode = "RGB"
        }
        if mode != "1" {
            maxval = try token()
            guard maxval > 0 && maxval < 65536 else {
                throw DecodeFailure("maxval must be greater than 0 and less than 65536")
            }
            if maxval > 255 && mode == "L" { mode = "I" }
        }
        try PixelLimit.check(width: width, height: height)
        let header: Header = (width, height, "PPM", mode)
        if headerOnly { return (header, nil) }

        if plain {
            let rgb = try decodePlain(
                UnsafeBufferPointer(rebasing: d[pos...]), width: width, height: height, mode: mode, maxval: maxval)
            return (header, DecodedImage(width: width, height: height, rgb: rgb, format: "PPM", sourceMode: mode))
        }
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

    /// Python's `int(token)` for an ASCII token: optional sign, digits, single underscores between digits.
    static func pythonInt(_ text: [UInt8]) -> Int? {
        var digits = text[...]
        var negative = false
        if let sign = digits.first, sign == UInt8(ascii: "+") || sign == UInt8(ascii: "-") {
            negative = sign == UInt8(ascii: "-")
            digits = digits.dropFirst()
        }
        var value = 0
        var previousWasDigit = false
        for c in digits {
            if c == UInt8(ascii: "_") {
                guard previousWasDigit else { return nil }
                previousWasDigit = false
                continue
            }
            guard c >= 0x30 && c <= 0x39 else { return nil }
            value = value * 10 + Int(c - 0x30)
            previousWasDigit = true
        }
        guard previousWasDigit else { return nil }
        return negative ? -value : value
    }

    /// Pillow's comment stripping of a plain-format block: `#` up to and including the next CR or LF is
    /// removed; a comment that never ends cuts the block there.
    static func stripComments(_ block: UnsafeBufferPointer<UInt8>) -> [UInt8] {
        var out = [UInt8]()
        out.reserveCapacity(block.count)
        var i = 0
        while i < block.count {
            if block[i] == UInt8(ascii: "#") {
                var end = i
                while end < block.count, block[end] != 0x0A, block[end] != 0x0D { end += 1 }
                if end == block.count { break }
                i = end + 1
                continue
            }
            out.append(block[i])
            i += 1
        }
        return out
    }

    /// Python's `bytes.split()` whitespace: space, \t, \n, \v, \f, \r.
    static func isSplitSpace(_ c: UInt8) -> Bool { c == 0x20 || (c >= 0x09 && c <= 0x0D) }

    static func decodePlain(_ block: UnsafeBufferPointer<UInt8>, width: Int, height: Int, mode: String, maxval: Int)
        throws(DecodeFailure) -> [UInt8]
    {
        let text = stripComments(block)
        let pixels = width * height
        if mode == "1" {
            // Every non-space character must be 0 (white) or 1 (black); tokens need no separators.
            var values = [UInt8]()
            values.reserveCapacity(pixels)
            for c in text where !isSplitSpace(c) {
                guard c == UInt8(ascii: "0") || c == UInt8(ascii: "1") else {
                    throw DecodeFailure("invalid token for a plain PBM: \(c)")
                }
                if values.count < pixels { values.append(c == UInt8(ascii: "0") ? 255 : 0) }
            }
            guard values.count == pixels else { throw DecodeFailure("truncated PPM: not enough image data") }
            return try makeRGB(width: width, height: height) { out throws(DecodeFailure) in
                for i in 0..<pixels { let v = values[i]; out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v }
            }
        }
        let bands = mode == "RGB" ? 3 : 1
        let total = pixels * bands
        let outMax = mode == "I" ? 65535 : 255
        var tokens: [ArraySlice<UInt8>] = []
        var start: Int? = nil
        for (i, c) in text.enumerated() {
            if isSplitSpace(c) {
                if let s = start { tokens.append(text[s..<i]); start = nil }
            } else if start == nil {
                start = i
            }
        }
        if let s = start {
            // Pillow holds back a token the block may have split and checks its length first.
            guard text.count - s <= 10 else { throw DecodeFailure("token too long in PPM data") }
            tokens.append(text[s...])
        }
        var values = [UInt8]()
        values.reserveCapacity(total)
        for token in tokens {
            guard token.count <= 10 else { throw DecodeFailure("token too long in PPM data") }
            guard let value = pythonInt(Array(token)) else { throw DecodeFailure("invalid token in PPM data") }
            guard value >= 0 else { throw DecodeFailure("channel value is negative: \(value)") }
            guard value <= maxval else { throw DecodeFailure("channel value too large for this mode: \(value)") }
            let scaled = Int((Double(value) / Double(maxval) * Double(outMax)).rounded(.toNearestOrEven))
            values.append(UInt8(min(scaled, 255)))
            if values.count == total { break }
        }
        guard values.count == total else { throw DecodeFailure("truncated PPM: not enough image data") }
        return try makeRGB(width: width, height: height) { out throws(DecodeFailure) in
            if bands == 3 {
                out.update(from: values, count: total)
            } else {
                for i in 0..<pixels { let v = values[i]; out[3 * i] = v; out[3 * i + 1] = v; out[3 * i + 2] = v }
            }
        }
    }
}
