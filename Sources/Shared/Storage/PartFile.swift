import Crypto
import Foundation

/// The features of one finished shard, as stored in `part-<shard>.bin` in the journal directory.
///
/// Layout (all little-endian): magic "BNPART01"; UInt32 length of the JSON header; the header (`ShardPart.Header`);
/// (count − skipped) × featureCount float32 values, rows in shard order with skipped images left out, each row in
/// the layer's NHWC order; then the 32-byte SHA-256 of everything before it.
public struct ShardPart: Sendable, Equatable {
    public struct Skipped: Codable, Sendable, Equatable {
        /// Position within the shard, 0..<count.
        public var offset: Int
        public var reason: String
        public init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }
    }

    /// An image's size and modification time (nanoseconds since the epoch) as it was read for this shard.
    public struct InputStamp: Codable, Sendable, Hashable {
        public var size: Int
        public var modifiedNanoseconds: Int64
        public init(size: Int, modifiedNanoseconds: Int64) {
            self.size = size
            self.modifiedNanoseconds = modifiedNanoseconds
        }
    }

    public struct Header: Codable, Sendable, Equatable {
        public var shardID: Int
        public var split: String
        /// Index of the shard's first image within its split.
        public var start: Int
        public var count: Int
        public var featureCount: Int
        public var skipped: [Skipped]
        /// Per image in shard order: its stamp when read, nil when it was missing. A resume recomputes the shard
        /// when any image's stamp differs now.
        public var inputs: [InputStamp?]
    }

    public var header: Header
    /// float32 features, `rowCount × featureCount` values.
    public var features: [Float]

    public init(
        shardID: Int, split: String, start: Int, count: Int, featureCount: Int, skipped: [Skipped],
        inputs: [InputStamp?], features: [Float]
    ) {
        header = Header(
            shardID: shardID, split: split, start: start, count: count, featureCount: featureCount, skipped: skipped,
            inputs: inputs)
        self.features = features
    }

    public var rowCount: Int { header.count - header.skipped.count }

    static let magic: [UInt8] = Array("BNPART01".utf8)

    /// The bytes of the part file, checksum included.
    public func encoded() -> [UInt8] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        let json: [UInt8]
        do { json = Array(try encoder.encode(header)) } catch {
            preconditionFailure("a part header of strings and integers failed to encode: \(error)")
        }
        var bytes = Self.magic
        bytes.reserveCapacity(8 + 4 + json.count + features.count * 4 + 32)
        withUnsafeBytes(of: UInt32(json.count).littleEndian) { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: json)
        features.withUnsafeBytes { bytes.append(contentsOf: $0) }
        bytes.append(contentsOf: SHA256.hash(data: bytes))
        return bytes
    }

    /// Parses and verifies part-file bytes; throws `JournalError.corruptPart` naming what is wrong.
    public static func decode(_ bytes: [UInt8], name: String) throws -> ShardPart {
        func corrupt(_ why: String) -> JournalError { JournalError(.corruptPart, "\(name): \(why)") }
        guard bytes.count >= 8 + 4 + 32 else { throw corrupt("\(bytes.count) bytes, too short for a part file") }
        guard Array(bytes[0..<8]) == magic else { throw corrupt("not a part file (bad magic)") }
        let body = bytes[0..<(bytes.count - 32)]
        guard Array(SHA256.hash(data: body)) == Array(bytes[(bytes.count - 32)...]) else {
            throw corrupt("checksum mismatch")
        }
        let jsonLength = Int(
            UInt32(bytes[8]) | UInt32(bytes[9]) << 8 | UInt32(bytes[10]) << 16 | UInt32(bytes[11]) << 24)
        guard 12 + jsonLength <= body.count else { throw corrupt("header length \(jsonLength) beyond the file") }
        let header: Header
        do {
            header = try JSONDecoder().decode(Header.self, from: Data(bytes[12..<(12 + jsonLength)]))
        } catch {
            throw corrupt("unreadable header")
        }
        guard header.inputs.count == header.count else {
            throw corrupt("\(header.inputs.count) input stamps for \(header.count) images")
        }
        let featureBytes = body.count - 12 - jsonLength
        let rows = header.count - header.skipped.count
        guard header.featureCount > 0, rows >= 0, featureBytes == rows * header.featureCount * 4 else {
            throw corrupt("\(featureBytes) feature bytes for \(rows) rows of \(header.featureCount) floats")
        }
        var features = [Float](repeating: 0, count: rows * header.featureCount)
        features.withUnsafeMutableBytes { target in
            bytes.withUnsafeBytes { source in
                target.copyMemory(from: UnsafeRawBufferPointer(rebasing: source[(12 + jsonLength)..<body.count]))
            }
        }
        return ShardPart(header: header, features: features)
    }

    init(header: Header, features: [Float]) {
        self.header = header
        self.features = features
    }
}
