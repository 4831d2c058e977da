/// Chunk-level rules Pillow's PNG reader applies that libpng does not, checked on the raw bytes:
///
/// - its handlers raise for a few chunks shorter than their fixed layout (IHDR, tRNS, gAMA, cHRM, sRGB,
///   pHYs, acTL, fcTL, fdAT), where libpng only warns;
/// - after the image data it keeps reading chunks up to IEND (`load_end`): a chunk whose declared length
///   runs past the end of the file is an error, while a cut-off chunk header, an invalid chunk type or
///   IEND ends the walk quietly.
enum PNGChunkRules {
    static func check(_ bytes: [UInt8]) throws(DecodeFailure) {
        try bytes.withUnsafeBufferPointer { (d) throws(DecodeFailure) in try check(d) }
    }

    static func isChunkType(_ d: UnsafeBufferPointer<UInt8>, _ at: Int) -> Bool {
        (at..<(at + 4)).allSatisfy { i in
            let c = d[i]
            return (c >= 0x30 && c <= 0x39) || (c >= 0x41 && c <= 0x5A) || (c >= 0x61 && c <= 0x7A) || c == 0x5F
        }
    }

    static func type(_ d: UnsafeBufferPointer<UInt8>, _ at: Int) -> String {
        String(decoding: d[at..<(at + 4)], as: UTF8.self)
    }

    /// Minimum data length Pillow's handler for `type` requires; `colorType` from IHDR decides tRNS.
    static func minimumLength(_ type: String, colorType: Int) -> Int {
        switch type {
        case "IHDR": return 13
        case "tRNS": return colorType == 2 ? 6 : (colorType == 0 ? 2 : 0)
        case "gAMA": return 4
        case "cHRM": return 32
        case "sRGB": return 1
        case "pHYs": return 9
        case "acTL": return 8
        case "fcTL": return 26
        case "fdAT": return 4
        default: return 0
        }
    }

    static func check(_ d: UnsafeBufferPointer<UInt8>) throws(DecodeFailure) {
        func length(_ at: Int) -> Int { Int(d[at]) << 24 | Int(d[at + 1]) << 16 | Int(d[at + 2]) << 8 | Int(d[at + 3]) }
        var pos = 8
        var colorType = -1
        // Before the image data (CRC and truncation are left to the decoder).
        while pos + 8 <= d.count, isChunkType(d, pos + 4) {
            let name = type(d, pos + 4)
            let n = length(pos)
            if name == "IDAT" { break }
            if name == "IHDR", n >= 13, pos + 8 + 10 <= d.count { colorType = Int(d[pos + 8 + 9]) }
            if n < minimumLength(name, colorType: colorType) {
                throw DecodeFailure("corrupt PNG: truncated \(name) chunk")
            }
            guard n <= d.count - pos - 12 else { return }
            pos += n + 12
        }
        guard pos + 8 <= d.count, type(d, pos + 4) == "IDAT" else { return }
        // After the first IDAT chunk: Pillow's load_end walk.
        pos += length(pos) + 12
        while pos + 8 <= d.count {
            guard isChunkType(d, pos + 4) else { return }
            let name = type(d, pos + 4)
            if name == "IEND" { return }
            let n = length(pos)
            guard n <= d.count - pos - 8 else {
                throw DecodeFailure("truncated PNG: \(name) chunk after the image data runs past the end of the file")
            }
            if n < minimumLength(name, colorType: colorType) {
                throw DecodeFailure("corrupt PNG: truncated \(name) chunk")
            }
            pos += n + 12
        }
    }
}
