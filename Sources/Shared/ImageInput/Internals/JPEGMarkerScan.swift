/// The marker walk Pillow's `JpegImageFile._open` does in Python before libjpeg sees the data. It is
/// stricter than libjpeg in a few places (a stray byte pair that is not a marker, a bad quantisation table
/// length, a frame header of the wrong size), and Keras gets Pillow's verdict, so the same walk runs here
/// and refuses what it refuses. Stops at the first SOS.
enum JPEGMarkerScan {
    /// How Pillow reads what follows each marker it knows (its `MARKER` table); nil for an unknown marker.
    enum Segment { case noSegment, skip, frame, quantization }

    static func segmentKind(_ marker: Int) -> Segment? {
        switch marker {
        case 0xFFC0...0xFFC3, 0xFFC5...0xFFC7, 0xFFC9...0xFFCB, 0xFFCD...0xFFCF, 0xFFDE: return .frame
        case 0xFFC4, 0xFFCC, 0xFFDA, 0xFFDC, 0xFFDD, 0xFFDF, 0xFFE0...0xFFEF, 0xFFFE: return .skip
        case 0xFFDB: return .quantization
        case 0xFFC8, 0xFFD0...0xFFD9, 0xFFF0...0xFFFD: return .noSegment
        default: return nil
        }
    }

    static func check(_ bytes: [UInt8]) throws(DecodeFailure) {
        try bytes.withUnsafeBufferPointer { (d) throws(DecodeFailure) in try check(d) }
    }

    static func check(_ d: UnsafeBufferPointer<UInt8>) throws(DecodeFailure) {
        var pos = 3  // Pillow has read FF D8 FF
        var first: UInt8? = 0xFF  // Python's `s`, one byte (or nothing at end of data)
        func readByte() -> UInt8? {
            guard pos < d.count else { return nil }
            pos += 1
            return d[pos - 1]
        }
        func readSegment() throws(DecodeFailure) -> UnsafeBufferPointer<UInt8> {
            guard pos + 2 <= d.count else {
                throw DecodeFailure("not a supported image (JPEG marker segment cut short)")
            }
            let n = (Int(d[pos]) << 8 | Int(d[pos + 1])) - 2
            pos += 2
            guard n > 0 else { return UnsafeBufferPointer(rebasing: d[pos..<pos]) }
            guard n <= d.count - pos else {
                throw DecodeFailure("truncated JPEG: marker segment runs past the end of the file")
            }
            pos += n
            return UnsafeBufferPointer(rebasing: d[(pos - n)..<pos])
        }
        var iccChunks: [UnsafeBufferPointer<UInt8>] = []
        func starts(_ s: UnsafeBufferPointer<UInt8>, _ prefix: String) -> Bool {
            let p = Array(prefix.utf8)
            return s.count >= p.count && zip(s, p).allSatisfy { $0 == $1 }
        }
        func malformed(_ what: String) -> DecodeFailure {
            DecodeFailure("not a supported image (malformed JPEG \(what))")
        }
        while let byte = first {
            guard byte == 0xFF else {
                first = readByte()  // skip junk that is not 0xFF
                continue
            }
            guard let second = readByte() else { break }
            let marker = 0xFF00 | Int(second)
            if let kind = segmentKind(marker) {
                switch kind {
                case .noSegment:
                    break
                case .skip:
                    let s = try readSegment()
                    // Pillow's APP handler reads fields of the segments it recognises without length checks.
                    if marker == 0xFFE0 && starts(s, "JFIF") && s.count < 7 { throw malformed("JFIF segment") }
                    if marker == 0xFFEE && starts(s, "Adobe") && s.count < 7 { throw malformed("Adobe segment") }
                    if marker == 0xFFE2 && starts(s, "ICC_PROFILE\0") { iccChunks.append(s) }
                    if marker == 0xFFED && starts(s, "Photoshop 3.0\0") { try checkPhotoshop(s) }
                case .frame:
                    let s = try readSegment()
                    guard s.count >= 6 else {
                        throw DecodeFailure("not a supported image (JPEG frame header too short)")
                    }
                    guard s[0] == 8 else { throw DecodeFailure("cannot handle \(s[0])-bit JPEG layers") }
                    guard [1, 3, 4].contains(s[5]) else {
                        throw DecodeFailure("cannot handle \(s[5])-layer JPEG images")
                    }
                    if !iccChunks.isEmpty {
                        // Pillow sorts the ICC chunks and reads byte 13 of the first.
                        let firstChunk = iccChunks.min { $0.lexicographicallyPrecedes($1) }!
                        if firstChunk.count < 14 { throw malformed("ICC profile segment") }
                        iccChunks = []
                    }
                case .quantization:
                    var s = try readSegment()
                    while !s.isEmpty {
                        let length = 1 + (s[0] / 16 == 0 ? 1 : 2) * 64
                        guard s.count >= length else {
                            throw DecodeFailure("not a supported image (bad quantization table marker)")
                        }
                        s = UnsafeBufferPointer(rebasing: s[length...])
                    }
                }
                if marker == 0xFFDA { return }
                first = readByte()
            } else if marker == 0xFFFF {
                first = 0xFF
            } else if marker == 0xFF00 {
                first = readByte()
            } else {
                throw DecodeFailure("not a supported image (no JPEG marker found)")
            }
        }
    }

    /// Pillow's walk over "8BIM" resource blocks of an APP13 Photoshop segment: a block cut before its name
    /// length byte raises IndexError (an unidentified image); other short reads end the walk quietly.
    static func checkPhotoshop(_ s: UnsafeBufferPointer<UInt8>) throws(DecodeFailure) {
        var offset = 14
        let tag = Array("8BIM".utf8)
        while offset + 4 <= s.count, Array(s[offset..<(offset + 4)]) == tag {
            offset += 4
            guard offset + 2 <= s.count else { return }  // struct.error, caught
            offset += 2
            guard offset < s.count else {
                throw DecodeFailure("not a supported image (malformed JPEG Photoshop segment)")
            }
            offset += 1 + Int(s[offset])
            offset += offset & 1
            guard offset + 4 <= s.count else { return }
            let size = Int(s[offset]) << 24 | Int(s[offset + 1]) << 16 | Int(s[offset + 2]) << 8 | Int(s[offset + 3])
            offset += 4
            offset += size
            offset += offset & 1
        }
    }
}
