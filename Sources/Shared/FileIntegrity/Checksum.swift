import Crypto
import Foundation

/// SHA-256 digests as lowercase hexadecimal text, the form the journal, the wire and the file attributes use.
public enum Checksum {
    /// The SHA-256 of `data`, as 64 lowercase hex digits.
    public static func sha256Hex<D: DataProtocol>(_ data: D) -> String {
        hex(SHA256.hash(data: data))
    }

    /// The SHA-256 of the file at `path`, read in 4 MiB chunks; throws `FileIOError` when it cannot be read.
    public static func sha256Hex(ofFile path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw FileIOError(path: path, operation: "read", errno: errno)
        }
        defer { try? handle.close() }
        var hasher = SHA256()
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 4 << 20) ?? Data()
            } catch {
                throw FileIOError(path: path, operation: "read", error: error)
            }
            if chunk.isEmpty { break }
            hasher.update(data: chunk)
        }
        return hex(hasher.finalize())
    }

    /// Bytes (a finalized digest, for one) as lowercase hex digits.
    public static func hex<S: Sequence>(_ bytes: S) -> String where S.Element == UInt8 {
        let digits = Array("0123456789abcdef".utf8)
        var text: [UInt8] = []
        for byte in bytes {
            text.append(digits[Int(byte >> 4)])
            text.append(digits[Int(byte & 15)])
        }
        return String(decoding: text, as: UTF8.self)
    }
}
