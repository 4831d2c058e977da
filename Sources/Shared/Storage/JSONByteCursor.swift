/// A position in bytes of JSON, for the readers that take the files this module writes straight from their bytes
/// (`JournalLineReader`, `ShardPlanReader`): each step reads one thing as this module spells it, or gives
/// false / nil and the reader leaves the text to `JSONDecoder`.
struct JSONByteCursor {
    let bytes: UnsafeBufferPointer<UInt8>
    private(set) var index: Int
    let end: Int

    /// Reads `bytes[range]`.
    init(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        self.bytes = bytes
        index = range.lowerBound
        end = range.upperBound
    }

    var atEnd: Bool { index == end }

    /// Moves to `position` (within the range).
    mutating func move(to position: Int) {
        precondition(position >= index && position <= end)
        index = position
    }

    /// Takes `byte` if it comes next.
    mutating func take(_ byte: UInt8) -> Bool {
        guard index < end, bytes[index] == byte else { return false }
        index += 1
        return true
    }

    /// Takes `text` if it comes next, byte for byte.
    mutating func literal(_ text: StaticString) -> Bool {
        let count = text.utf8CodeUnitCount
        guard end - index >= count else { return false }
        let expected = text.utf8Start
        for offset in 0..<count where bytes[index + offset] != expected[offset] { return false }
        index += count
        return true
    }

    /// Skips JSON whitespace.
    mutating func skipSpace() {
        while index < end, bytes[index] == 32 || bytes[index] == 10 || bytes[index] == 13 || bytes[index] == 9 {
            index += 1
        }
    }

    /// An integer as JSON spells one (no leading zeros, no fraction or exponent) that fits an `Int`.
    mutating func integer() -> Int? {
        let negative = take(UInt8(ascii: "-"))
        let first = index
        var value = 0
        while index < end, bytes[index] &- UInt8(ascii: "0") < 10 {
            let (product, overflowed) = value.multipliedReportingOverflow(by: 10)
            let (sum, carried) = product.addingReportingOverflow(Int(bytes[index] &- UInt8(ascii: "0")))
            guard !overflowed && !carried else { return nil }
            value = sum
            index += 1
        }
        guard index > first, index - first == 1 || bytes[first] != UInt8(ascii: "0") else { return nil }
        return negative ? -value : value
    }

    /// A string of printable ASCII without escapes.
    mutating func string() -> String? {
        guard take(UInt8(ascii: "\"")) else { return nil }
        let first = index
        while index < end {
            let byte = bytes[index]
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: UnsafeBufferPointer(rebasing: bytes[first..<(index - 1)]), as: UTF8.self)
            }
            guard byte >= 0x20, byte < 0x80, byte != UInt8(ascii: "\\") else { return nil }
            index += 1
        }
        return nil
    }
}
