import Crypto
import FileIntegrity

/// `ShardJournal.fileListHash` fed one image at a time from bytes: the same digest (per image, the filename's
/// UTF-8, a 0 byte, the label in decimal, a line feed) without a `String` per image, hashed in 64 KiB blocks.
public struct FileListHasher {
    private var hasher = SHA256()
    private var block: [UInt8] = []

    public init() { block.reserveCapacity(1 << 16) }

    /// Adds one image: its filename's UTF-8 bytes and its label.
    public mutating func add(filename: UnsafeBufferPointer<UInt8>, label: Int32) {
        block.append(contentsOf: filename)
        block.append(0)
        var value = Int(label)
        if value < 0 {
            block.append(UInt8(ascii: "-"))
            value = -value
        }
        var digits: (UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8, UInt8) =
            (0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0)
        let count = withUnsafeMutableBytes(of: &digits) { digits in
            var count = 0
            repeat {
                digits[count] = UInt8(ascii: "0") + UInt8(value % 10)
                value /= 10
                count += 1
            } while value > 0
            return count
        }
        withUnsafeBytes(of: digits) { digits in
            for index in stride(from: count - 1, through: 0, by: -1) { block.append(digits[index]) }
        }
        block.append(10)
        if block.count >= 1 << 16 { flush() }
    }

    private mutating func flush() {
        hasher.update(data: block)
        block.removeAll(keepingCapacity: true)
    }

    /// The digest, lowercase hex.
    public mutating func finish() -> String {
        flush()
        return Checksum.hex(hasher.finalize())
    }
}
