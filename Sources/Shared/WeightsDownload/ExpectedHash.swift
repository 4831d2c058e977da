import Crypto
import FileIntegrity
import Foundation

/// The hash a downloaded file must have: MD5 or SHA-256, told apart by length as Keras' `get_file` does
/// (64 hex digits: SHA-256, otherwise MD5).
public enum ExpectedHash: Sendable, Equatable, CustomStringConvertible {
    case md5(String)
    case sha256(String)

    /// Parses lowercase or uppercase hex; nil unless it is 32 (MD5) or 64 (SHA-256) hex digits.
    public init?(hex: String) {
        let lower = hex.lowercased()
        guard lower.allSatisfy(\.isHexDigit) else { return nil }
        switch lower.count {
        case 64: self = .sha256(lower)
        case 32: self = .md5(lower)
        default: return nil
        }
    }

    public var algorithm: String {
        switch self {
        case .md5: "md5"
        case .sha256: "sha256"
        }
    }

    public var hex: String {
        switch self {
        case .md5(let hex), .sha256(let hex): hex
        }
    }

    public var description: String { "\(algorithm) \(hex)" }

    /// The same algorithm's digest of the file at `path`, in lowercase hex, read in 1 MiB chunks.
    public func digest(ofFileAt path: String) throws -> String {
        guard let handle = FileHandle(forReadingAtPath: path) else {
            throw DownloadError.io(path: path, reason: "cannot be opened for reading")
        }
        defer { try? handle.close() }
        switch self {
        case .md5:
            // MD5 is what Keras publishes for its weight files: an integrity check against a damaged or
            // wrong download, not a security boundary (use an SHA-256 override for that).
            var hasher = Insecure.MD5()
            try Self.readChunks(handle, path: path) { hasher.update(data: $0) }
            return Checksum.hex(hasher.finalize())
        case .sha256:
            var hasher = SHA256()
            try Self.readChunks(handle, path: path) { hasher.update(data: $0) }
            return Checksum.hex(hasher.finalize())
        }
    }

    private static func readChunks(_ handle: FileHandle, path: String, _ body: (Data) -> Void) throws {
        while true {
            let chunk: Data
            do {
                chunk = try handle.read(upToCount: 1 << 20) ?? Data()
            } catch {
                throw DownloadError.io(path: path, reason: "cannot be read: \(error.localizedDescription)")
            }
            if chunk.isEmpty { return }
            body(chunk)
        }
    }
}
