/// Windows BMP, following Pillow's BmpImagePlugin: headers of 12, 40, 52, 56, 64, 108 and 124 bytes;
/// 1/4/8-bit palettes (a palette that is exactly the gray ramp makes the image "L" or "1", read with those
/// raw modes even when the stored depth differs, as Pillow does); 16-bit (5-5-5), 24-bit, 32-bit (BGRX)
/// and the BITFIELDS layouts Pillow accepts; RLE8/RLE4 as Pillow's Python RLE decoder does them. Rows are
/// bottom-up unless the height is negative.
enum BMPDecoding {
    typealias Header = (width: Int, height: Int, format: String, sourceMode: String)

    /// Raw layouts of the pixel data after the header has been interpreted.
    enum Layout {
        case palette(bits: Int, lut: [UInt8])  // lut: 256 RGB triplets
        case bilevel  // Pillow raw mode "1": packed bits, MSB first, 1 = white
        case gray8  // Pillow raw mode "L": one byte per pixel from the row start
        case rgb15(blueLow: Bool)  // BGR;15
        case rgb16  // BGR;16 (5-6-5)
        case bytes(bytesPerPixel: Int, r: Int, g: Int, b: Int)
    }

    static func decode(_ data: [UInt8], headerOnly: Bool) throws(DecodeFailure) -> (
        header: Header, image: DecodedImage?
    ) {
        try data.withUnsafeBufferPointer { (buf) throws(DecodeFailure) in try decode(buf, headerOnly: headerOnly) }
    }

    static func decode(_ d: UnsafeBufferPointer<UInt8>, headerOnly: Bool) throws(DecodeFailure)
        -> (header: Header, image: DecodedImage?)
    {
        func u16(_ o: Int) throws(DecodeFailure) -> Int {
            guard o + 2 <= d.count else { throw DecodeFailure("truncated BMP header") }
            return Int(d[o]) | Int(d[o + 1]) << 8
        }
        func u32(_ o: Int) throws(DecodeFailure) -> Int {
            guard o + 4 <= d.count else { throw DecodeFailure("truncated BMP header") }
            return Int(d[o]) | Int(d[o + 1]) << 8 | Int(d[o + 2]) << 16 | Int(d[o + 3]) << 24
        }
        var offset = try u32(10)
        let headerSize = try u32(14)
        guard 14 + headerSize <= d.count else { throw DecodeFailure("truncated BMP header") }
        var width: Int, height: Int, bits: Int, compression: Int, colors: Int, paletteEntrySize: Int
        var topDown = false
        var masks: (r: Int, g: Int, b: Int, a: Int)? = nil
        var paletteStart = 14 + headerSize
        switch headerSize {
        case 12:
            width = try u16(18)
            height = try u16(20)
            bits = try u16(24)
            compression = 0
            colors = 0
            paletteEntrySize = 3
        case 40, 52, 56, 64, 108, 124:
            width = try u32(18)
            topDown = d[25] == 0xFF
            let rawHeight = try u32(22)
            height = topDown ? (1 << 32) - rawHeight : rawHeight
            bits = try u16(28)
            compression = try u32(30)
            colors = try u32(46)
            paletteEntrySize = 4
            if compression == 3 {
                let r = try u32(54), g = try u32(58), b = try u32(62)
                let a = headerSize >= 56 ? try u32(66) : 0
                masks = (r, g, b, a)
                if headerSize == 40 { paletteStart += 12 }
            }
        default:
            throw DecodeFailure("unsupported BMP header type (\(headerSize))")
        }
        if colors == 0 { colors = 1 << min(bits, 24) }
        if offset == 14 + headerSize && bits <= 8 { offset += paletteEntrySize * colors }

        var mode: String
        var layout: Layout
        switch bits {
        case 1, 4, 8: mode = "P"; layout = .palette(bits: bits, lut: [])
        case 16: mode = "RGB"; layout = .rgb15(blueLow: true)
        case 24: mode = "RGB"; layout = .bytes(bytesPerPixel: 3, r: 2, g: 1, b: 0)
        case 32: mode = "RGB"; layout = .bytes(bytesPerPixel: 4, r: 2, g: 1, b: 0)
        default: throw DecodeFailure("unsupported BMP pixel depth (\(bits))")
        }
        switch compression {
        case 0:
            break
        case 3:
            guard let m = masks else { throw DecodeFailure("unsupported BMP bitfields layout") }
            switch (bits, m.r, m.g, m.b, m.a) {
            case (32, 0xFF0000, 0xFF00, 0xFF, 0): layout = .bytes(bytesPerPixel: 4, r: 2, g: 1, b: 0)  // BGRX
            case (32, 0xFF00_0000, 0xFF0000, 0xFF00, 0): layout = .bytes(bytesPerPixel: 4, r: 3, g: 2, b: 1)  // XBGR
            case (32, 0xFF00_0000, 0xFF00, 0xFF, 0): layout = .bytes(bytesPerPixel: 4, r: 3, g: 1, b: 0)  // BGXR
            case (32, 0xFF00_0000, 0xFF0000, 0xFF00, 0xFF):
                layout = .bytes(bytesPerPixel: 4, r: 3, g: 2, b: 1); mode = "RGBA"  // ABGR
            case (32, 0xFF, 0xFF00, 0xFF0000, 0xFF00_0000):
                layout = .bytes(bytesPerPixel: 4, r: 0, g: 1, b: 2); mode = "RGBA"  // RGBA
            case (32, 0xFF0000, 0xFF00, 0xFF, 0xFF00_0000), (32, 0, 0, 0, 0):
                layout = .bytes(bytesPerPixel: 4, r: 2, g: 1, b: 0); mode = "RGBA"  // BGRA
            case (32, 0xFF00_0000, 0xFF00, 0xFF, 0xFF0000):
                layout = .bytes(bytesPerPixel: 4, r: 3, g: 1, b: 0); mode = "RGBA"  // BGAR
            case (24, 0xFF0000, 0xFF00, 0xFF, _): layout = .bytes(bytesPerPixel: 3, r: 2, g: 1, b: 0)
            case (16, 0xF800, 0x7E0, 0x1F, _): layout = .rgb16
            case (16, 0x7C00, 0x3E0, 0x1F, _): layout = .rgb15(blueLow: true)
            default: throw DecodeFailure("unsupported BMP bitfields layout")
            }
        case 1, 2:
            guard bits <= 8 else { throw DecodeFailure("unsupported BMP: RLE compression with \(bits)-bit pixels") }
        default:
            throw DecodeFailure("unsupported BMP compression (\(compression))")
        }

        // Where Pillow's file position is after the header, masks and palette: the pixel data starts there
        // when the header's offset is 0 (`offset or fp.tell()`).
        var afterHeader = paletteStart
        if case .palette = layout {
            guard colors > 0 && colors <= 65536 else { throw DecodeFailure("unsupported BMP palette size (\(colors))") }
            let start = min(paletteStart, d.count)
            let available = max(0, min(paletteEntrySize * colors, d.count - start))
            afterHeader = start + available
            let palette = UnsafeBufferPointer(rebasing: d[start..<(start + available)])
            // Pillow drops a palette that is exactly black/white (2 colours) or the ramp 0, 1, 2, ...
            var grayscale = true
            let indices = colors == 2 ? [0, 255] : Array(0..<colors)
            for (i, value) in indices.enumerated() {
                let at = i * paletteEntrySize
                let v = UInt8(truncatingIfNeeded: value)  // Pillow's o8 keeps the low byte
                if at + 3 > palette.count || palette[at] != v || palette[at + 1] != v || palette[at + 2] != v {
                    grayscale = false
                    break
                }
            }
            if grayscale {
                mode = colors <= 2 ? "1" : "L"
                layout = colors <= 2 ? .bilevel : .gray8
            } else {
                // Pillow's putpalette refuses more than 256 entries.
                guard palette.count / paletteEntrySize <= 256 else {
                    throw DecodeFailure("invalid BMP palette size (\(palette.count / paletteEntrySize) entries)")
                }
                var lut = [UInt8](repeating: 0, count: 256 * 3)
                for i in 0..<min(256, palette.count / paletteEntrySize) {
                    lut[3 * i] = palette[i * paletteEntrySize + 2]
                    lut[3 * i + 1] = palette[i * paletteEntrySize + 1]
                    lut[3 * i + 2] = palette[i * paletteEntrySize]
                }
                layout = .palette(bits: bits, lut: lut)
            }
        }
        try PixelLimit.check(width: width, height: height)
        if offset == 0 { offset = afterHeader }
        let header: Header = (width, height, "BMP", mode)
        if headerOnly { return (header, nil) }

        if compression == 1 || compression == 2 {
            let indices = try rleIndices(d, from: offset, width: width, height: height, rle4: compression == 2)
            let rgb = try makeRGB(width: width, height: height) { out throws(DecodeFailure) in
                for y in 0..<height {
                    // Rows are stored bottom-up unless the height was negative.
                    let row = (topDown ? y : height - 1 - y) * width
                    for x in 0..<width {
                        let index = Int(indices[row + x])
                        let o = (y * width + x) * 3
                        switch layout {
                        case .palette(_, let lut):
                            out[o] = lut[3 * index]; out[o + 1] = lut[3 * index + 1]; out[o + 2] = lut[3 * index + 2]
                        case .bilevel:
                            // Pillow reads the indices of a "1" image with its "L" unpacker: > 127 is white.
                            let v: UInt8 = index > 127 ? 255 : 0
                            out[o] = v; out[o + 1] = v; out[o + 2] = v
                        default:
                            let v = UInt8(index)
                            out[o] = v; out[o + 1] = v; out[o + 2] = v
                        }
                    }
                }
            }
            return (header, DecodedImage(width: width, height: height, rgb: rgb, format: "BMP", sourceMode: mode))
        }

        let stride = ((width * bits + 31) >> 3) & ~3
        // Pillow's raw decoder reads ceil(width * rawbits / 8) bytes per row, where the raw mode's bits can
        // differ from the file's (the gray-palette quirk), then skips to the stride; the padding after the
        // last row need not be present, and a row longer than the stride is a configuration error.
        let rawBits: Int
        switch layout {
        case .palette(let bits, _): rawBits = bits
        case .bilevel: rawBits = 1
        case .gray8: rawBits = 8
        case .rgb15, .rgb16: rawBits = 16
        case .bytes(let n, _, _, _): rawBits = 8 * n
        }
        let rowBytes = (width * rawBits + 7) / 8
        guard rowBytes <= stride else {
            throw DecodeFailure("unsupported BMP layout: \(rowBytes)-byte rows do not fit a \(stride)-byte stride")
        }
        let needed = stride * (height - 1) + rowBytes
        guard offset >= 0, offset <= d.count, needed <= d.count - offset else {
            throw DecodeFailure(
                "truncated BMP: pixel data needs \(needed) bytes at offset \(offset), file has \(d.count)")
        }
        let base = d.baseAddress! + offset
        let rgb = try makeRGB(width: width, height: height) { out throws(DecodeFailure) in
            for y in 0..<height {
                let row = base + (topDown ? y : height - 1 - y) * stride
                let dst = out + y * width * 3
                switch layout {
                case .palette(let bits, let lut):
                    lut.withUnsafeBufferPointer { lut in
                        for x in 0..<width {
                            let index: Int
                            switch bits {
                            case 8: index = Int(row[x])
                            case 4: index = Int((row[x >> 1] >> (x & 1 == 0 ? 4 : 0)) & 0x0F)
                            default: index = Int((row[x >> 3] >> UInt8(7 - (x & 7))) & 1)
                            }
                            dst[3 * x] = lut[3 * index]; dst[3 * x + 1] = lut[3 * index + 1];
                            dst[3 * x + 2] = lut[3 * index + 2]
                        }
                    }
                case .bilevel:
                    for x in 0..<width {
                        let v: UInt8 = (row[x >> 3] >> UInt8(7 - (x & 7))) & 1 == 1 ? 255 : 0
                        dst[3 * x] = v; dst[3 * x + 1] = v; dst[3 * x + 2] = v
                    }
                case .gray8:
                    for x in 0..<width { let v = row[x]; dst[3 * x] = v; dst[3 * x + 1] = v; dst[3 * x + 2] = v }
                case .rgb15:
                    for x in 0..<width {
                        let p = Int(row[2 * x]) | Int(row[2 * x + 1]) << 8
                        dst[3 * x] = UInt8(((p >> 10) & 31) * 255 / 31)
                        dst[3 * x + 1] = UInt8(((p >> 5) & 31) * 255 / 31)
                        dst[3 * x + 2] = UInt8((p & 31) * 255 / 31)
                    }
                case .rgb16:
                    for x in 0..<width {
                        let p = Int(row[2 * x]) | Int(row[2 * x + 1]) << 8
                        dst[3 * x] = UInt8(((p >> 11) & 31) * 255 / 31)
                        dst[3 * x + 1] = UInt8(((p >> 5) & 63) * 255 / 63)
                        dst[3 * x + 2] = UInt8((p & 31) * 255 / 31)
                    }
                case .bytes(let n, let r, let g, let b):
                    for x in 0..<width {
                        dst[3 * x] = row[n * x + r]; dst[3 * x + 1] = row[n * x + g]; dst[3 * x + 2] = row[n * x + b]
                    }
                }
            }
        }
        return (header, DecodedImage(width: width, height: height, rgb: rgb, format: "BMP", sourceMode: mode))
    }

    /// Pillow's `BmpRleDecoder`: palette indices in file row order (`width * height`), RLE8 or RLE4 with
    /// encoded runs clipped to the row, end-of-line padding, end-of-bitmap, delta, and absolute runs
    /// aligned to 16-bit file offsets. Data that ends before every pixel is set is an error, as Pillow's
    /// `set_as_raw` raises "not enough image data".
    static func rleIndices(_ d: UnsafeBufferPointer<UInt8>, from start: Int, width: Int, height: Int, rle4: Bool)
        throws(DecodeFailure) -> [UInt8]
    {
        let destination = width * height
        var data = [UInt8]()
        data.reserveCapacity(destination)
        var pos = start
        var x = 0
        func read() -> UInt8? {
            guard pos < d.count else { return nil }
            pos += 1
            return d[pos - 1]
        }
        decoding: while data.count < destination {
            guard let count = read(), let value = read() else { break }
            if count != 0 {
                var run = Int(count)
                if x + run > width { run = max(0, width - x) }
                for i in 0..<run {
                    data.append(rle4 ? (i % 2 == 0 ? value >> 4 : value & 0x0F) : value)
                }
                x += run
                continue
            }
            switch value {
            case 0:
                while data.count % width != 0 { data.append(0) }
                x = 0
            case 1:
                break decoding
            case 2:
                guard let right = read(), let up = read() else { break decoding }
                let zeros = min(destination - data.count, Int(right) + Int(up) * width)
                data.append(contentsOf: repeatElement(0, count: zeros))
                x = data.count % width
            default:
                let dataCount = min(destination - data.count, Int(value))
                let byteCount = rle4 ? (dataCount + 1) / 2 : dataCount
                let available = min(byteCount, d.count - pos)
                for i in 0..<available {
                    let b = d[pos + i]
                    if rle4 {
                        data.append(b >> 4)
                        if i * 2 + 1 < dataCount { data.append(b & 0x0F) }
                    } else {
                        data.append(b)
                    }
                }
                pos += available
                if available < byteCount || data.count == destination { break decoding }
                x += Int(value)
                if pos % 2 != 0 { pos += 1 }  // Pillow aligns the absolute file offset
            }
        }
        guard data.count >= destination else {
            throw DecodeFailure("truncated BMP: RLE data sets \(data.count) of \(destination) pixels")
        }
        return Array(data.prefix(destination))
    }
}
