/// The NumPy `.npy` format, version 1.0, as `numpy.save` writes it.
///
/// Layout: magic `\x93NUMPY`, version bytes 1 and 0, the header length as little-endian uint16, then the
/// header: the Python dict literal `{'descr': '<f4', 'fortran_order': False, 'shape': (N, 4, 4, 512), }`,
/// NumPy's spare space for growing the first axis (21 − digits of `shape[0]` spaces), padding spaces and a
/// final `\n` so that magic + length + header is a multiple of 64 bytes. The data follow in C order.
public enum NpyFormat {
    /// Element types this writer produces.
    public enum ElementType: String, Sendable {
        case float32 = "<f4"
        case int32 = "<i4"

        /// Bytes per element.
        public var size: Int { 4 }
    }

    /// Alignment of the data start (NumPy's `ARRAY_ALIGN`).
    static let alignment = 64
    /// Digits NumPy reserves for the growth axis (`GROWTH_AXIS_MAX_DIGITS`).
    static let growthAxisMaxDigits = 21

    /// Python's `repr` of a shape tuple: `()`, `(3,)`, `(3, 4)`.
    public static func shapeLiteral(_ shape: [Int]) -> String {
        switch shape.count {
        case 0: return "()"
        case 1: return "(\(shape[0]),)"
        default: return "(" + shape.map(String.init).joined(separator: ", ") + ")"
        }
    }

    /// The complete preamble (magic, version, length, header) of a C-order array of `type` with `shape`;
    /// its length is a multiple of 64. Identical to the bytes `numpy.save` writes for such an array.
    public static func header(type: ElementType, shape: [Int]) -> [UInt8] {
        precondition(shape.allSatisfy { $0 >= 0 }, "shape sizes must not be negative")
        var dict = "{'descr': '\(type.rawValue)', 'fortran_order': False, 'shape': \(shapeLiteral(shape)), }"
        if let first = shape.first {
            dict += String(repeating: " ", count: max(0, growthAxisMaxDigits - String(first).count))
        }
        let prefixLength = 6 + 2 + 2
        let unpadded = dict.utf8.count + 1  // the final newline
        let padding = alignment - (prefixLength + unpadded) % alignment
        let headerLength = unpadded + padding
        precondition(headerLength <= Int(UInt16.max), "shape too long for a version 1.0 header")
        var bytes: [UInt8] = [0x93] + Array("NUMPY".utf8) + [1, 0]
        bytes += [UInt8(headerLength & 0xFF), UInt8(headerLength >> 8)]
        bytes += Array(dict.utf8) + [UInt8](repeating: 0x20, count: padding) + [0x0A]
        return bytes
    }
}
