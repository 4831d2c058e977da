import Crypto
import FileIntegrity
import Foundation
import HDF5
import Provenance
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// What the journal records of a shard besides its features.
public enum ShardPart {
    public struct Skipped: Codable, Sendable, Equatable {
        /// Position within the shard, 0..<count.
        public var offset: Int
        public var reason: String
        public init(offset: Int, reason: String) {
            self.offset = offset
            self.reason = reason
        }
    }
}

/// Where a shard's rows live: a byte range of one range part file.
public struct PartLocation: Codable, Sendable, Equatable {
    /// The part file's name inside the journal directory.
    public var part: String
    /// The byte offset of the shard's first row in the part file.
    public var offset: Int
    /// Bytes of the shard's rows: `count × featureCount × 4` (skipped images' rows included, as zeros).
    public var size: Int
    public init(part: String, offset: Int, size: Int) {
        self.part = part
        self.offset = offset
        self.size = size
    }
}

/// The range part files of a journal: part file k of a split holds the split's rows [k·R, (k+1)·R) (R =
/// `rowsPerPart`, a multiple of the shard size) as a valid HDF5 file with one contiguous float32 dataset `features`
/// [rows, h, w, c] (the output's row shape), allocated when the file is made and never filled (sparse). Its
/// metadata never changes again: writers put a shard's rows in place with `pwrite` at the dataset's raw offset, so
/// the file is valid HDF5 whatever happens later.
///
/// Safe to use from several threads: the raw offsets found so far are kept under a mutex; each write opens, writes,
/// fsyncs and closes the file itself.
public final class PartFiles: Sendable {
    public let directory: String
    public let rowsPerPart: Int
    public let featureShape: [Int]
    public var featureCount: Int { featureShape.reduce(1, *) }
    /// Part file name → the raw offset of its `features` dataset, for files made or opened so far.
    private let offsets = Mutex<[String: Int]>([:])
    /// Serialises the making of part files (HDF5 calls), so one file is made once.
    private let making = Mutex<Void>(())

    public init(directory: String, rowsPerPart: Int, featureShape: [Int]) {
        self.directory = directory
        self.rowsPerPart = rowsPerPart
        self.featureShape = featureShape
    }

    public var rowBytes: Int { featureCount * 4 }

    /// The name of the part file holding row `row` of `split`.
    public func name(split: String, row: Int) -> String {
        let index = String(row / rowsPerPart)
        return "part-\(split)-" + String(repeating: "0", count: max(0, 6 - index.count)) + index + ".h5"
    }

    public func path(_ name: String) -> String { directory + "/" + name }

    /// Where the rows of `shard` go (the part file must exist for `offset` to be known: see `prepare`).
    public func location(of shard: ShardSpan, splitImageCount: Int) throws -> PartLocation {
        let name = name(split: shard.split, row: shard.start)
        let dataOffset = try prepare(shard, splitImageCount: splitImageCount)
        let rangeStart = shard.start / rowsPerPart * rowsPerPart
        return PartLocation(
            part: name, offset: dataOffset + (shard.start - rangeStart) * rowBytes, size: shard.count * rowBytes)
    }

    /// Makes the part file of `shard`'s range when it does not exist yet (temporary name, fsync, rename,
    /// directory fsync), and returns the raw offset of its `features` dataset.
    @discardableResult
    public func prepare(_ shard: ShardSpan, splitImageCount: Int) throws -> Int {
        let name = name(split: shard.split, row: shard.start)
        if let known = offsets.withLock({ $0[name] }) { return known }
        return try making.withLock { _ in
            if let known = offsets.withLock({ $0[name] }) { return known }
            let path = path(name)
            let offset: Int
            if FileManager.default.fileExists(atPath: path) {
                offset = try Self.dataOffset(path)
            } else {
                let rangeStart = shard.start / rowsPerPart * rowsPerPart
                let rows = min(rowsPerPart, splitImageCount - rangeStart)
                let temporary = AtomicFile.temporaryPath(for: path)
                do {
                    let file = try HDF5File.create(temporary)
                    offset = try file.root.createInPlaceFloatDataset("features", shape: [rows] + featureShape)
                    try file.closeChecked()
                    try AtomicFile.publish(temporary, as: path)
                } catch let error as FileIOError {
                    unlink(temporary)
                    throw JournalError(.io, "cannot make the part file \(path): \(error)")
                } catch {
                    unlink(temporary)
                    throw JournalError(.io, "cannot make the part file \(path): \(error)")
                }
            }
            offsets.withLock { $0[name] = offset }
            return offset
        }
    }

    /// The raw offset of the `features` dataset of an existing part file.
    static func dataOffset(_ path: String) throws -> Int {
        do {
            let file = try HDF5File.open(path)
            defer { file.close() }
            guard let offset = try file.root.dataset("features").rawDataOffset() else {
                throw JournalError(.corruptPart, "\(path): its features dataset has no storage")
            }
            return offset
        } catch let error as JournalError {
            throw error
        } catch {
            throw JournalError(.corruptPart, "\(path): not a readable part file: \(error)")
        }
    }

    /// Writes `bytes` at `location` (pwrite, then fsync unless `sync` is false: then `sync(_:)` the part file
    /// before counting on them) and returns their SHA-256 (hex; empty when not `hashing`).
    @discardableResult
    public func write(
        _ bytes: UnsafeRawBufferPointer, at location: PartLocation, hashing: Bool = true, sync: Bool = true
    ) throws -> String {
        precondition(bytes.count == location.size, "\(bytes.count) bytes for a location of \(location.size)")
        do {
            return try InPlaceWrite.write(
                bytes, to: path(location.part), at: location.offset, hashing: hashing, sync: sync)
        } catch {
            throw JournalError(.io, error.description)
        }
    }

    /// fsyncs the part file `name` (after writes without `sync`).
    public func sync(_ name: String) throws {
        do { try InPlaceWrite.sync(path(name)) } catch { throw JournalError(.io, error.description) }
    }

    /// Reads the bytes at `location`; throws when the file is missing or shorter.
    public func read(_ location: PartLocation) throws -> [UInt8] {
        let path = path(location.part)
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw JournalError(.io, FileIOError(path: path, operation: "open", errno: errno).description)
        }
        defer { Glibc.close(fd) }
        var bytes = [UInt8](repeating: 0, count: location.size)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while done < location.size {
                let result = pread(fd, buffer.baseAddress! + done, location.size - done, off_t(location.offset + done))
                if result < 0 {
                    if errno == EINTR { continue }
                    throw JournalError(.io, FileIOError(path: path, operation: "read", errno: errno).description)
                }
                if result == 0 {
                    throw JournalError(
                        .corruptPart,
                        "\(path) ends before offset \(location.offset + done) (\(location.size) bytes expected at "
                            + "offset \(location.offset))")
                }
                done += result
            }
        }
        return bytes
    }

    /// Whether the part file exists and is long enough to hold `location`.
    public func holds(_ location: PartLocation) -> Bool {
        guard let size = size(of: location.part) else { return false }
        return size >= location.offset + location.size
    }

    /// The size in bytes of the part file `name`, nil when it does not exist.
    public func size(of name: String) -> Int? {
        var info = stat()
        guard stat(path(name), &info) == 0 else { return nil }
        return Int(info.st_size)
    }
}

extension PartFiles {
    /// Writes a finished shard's rows in place and returns its record for the journal log (not yet committed).
    /// The rows go past the page cache (`InPlaceWrite.writeDirect`) when they are laid out in `buffer` and the
    /// range is block-aligned (7×7×512 features: every shard); otherwise, or where the filesystem refuses direct
    /// I/O, through it.
    ///
    /// - Parameters:
    ///   - rows: float32 values of the shard's images that were not skipped, in shard order, `featureCount` each
    ///     (the layout the wire carries). Skipped images' rows are written as zeros.
    ///   - splitImageCount: images in the shard's split (the last part file of a split is shorter).
    ///   - sha256: the rows' SHA-256 as laid out (zeros for skipped images) when the sender computed it; the
    ///     record takes it as it stands (reading the part checks it). Computed here when nil.
    ///   - sync: fsync the part file after the write; when false, `sync(_:)` it before committing the record.
    ///   - buffer: the calling thread's buffer to lay the rows out in (one is made when rows are skipped).
    public func writeShard(
        _ span: ShardSpan, splitImageCount: Int, rows: UnsafeRawBufferPointer, skipped: [ShardPart.Skipped],
        inputs: [InputStamp?], sha256 given: String? = nil, sync: Bool = true, buffer: DirectWriteBuffer? = nil
    ) throws -> ShardRecord {
        let location = try location(of: span, splitImageCount: splitImageCount)
        let skippedOffsets = Set(skipped.map(\.offset))
        precondition(rows.count == (span.count - skippedOffsets.count) * rowBytes, "rows do not match the shard")
        // Without skipped images and without a buffer, the rows are written as they are (through the page cache:
        // an array's bytes are not page-aligned).
        let layout = buffer ?? (skippedOffsets.isEmpty ? nil : DirectWriteBuffer())
        let bytes: UnsafeRawBufferPointer
        if let layout {
            let target = layout.bytes(count: location.size)
            ShardRows.layOut(rows, rowBytes: rowBytes, count: span.count, skipped: skippedOffsets, into: target)
            bytes = UnsafeRawBufferPointer(target)
        } else {
            bytes = rows
        }
        let direct: Bool
        do { direct = try InPlaceWrite.writeDirect(bytes, to: path(location.part), at: location.offset) } catch {
            throw JournalError(.io, error.description)
        }
        let sha256: String
        if direct {
            if sync { try self.sync(location.part) }
            sha256 = given ?? Checksum.sha256Hex(bytes)
        } else {
            let computed = try write(bytes, at: location, hashing: given == nil, sync: sync)
            sha256 = given ?? computed
        }
        return ShardRecord(
            shard: span.id, split: span.split, start: span.start, count: span.count, location: location,
            sha256: sha256, skipped: skipped, inputs: inputs)
    }

    /// Reads a recorded shard's rows and checks them against the record's SHA-256; returns the rows of the images
    /// not skipped, in shard order. A mismatch throws `corruptPart` naming the shard, the part file, the offset
    /// and the hash expected.
    ///
    /// With `reader` (shards read in order, as assembly does), the bytes come from its read-ahead block.
    public func readShard(_ record: ShardRecord, using reader: PartReader? = nil) throws -> [Float] {
        if let reader {
            return try reader.withBytes(at: record.location) { try rows(of: record, from: $0) }
        }
        return try read(record.location).withUnsafeBytes { try rows(of: record, from: $0) }
    }

    /// Checks `bytes` (the record's whole range) against its SHA-256 and returns the rows of the images not
    /// skipped.
    private func rows(of record: ShardRecord, from bytes: UnsafeRawBufferPointer) throws -> [Float] {
        let actual = Checksum.sha256Hex(bytes)
        guard actual == record.sha256 else {
            throw JournalError(
                .corruptPart,
                "shard \(record.shard): \(record.location.size) bytes at offset \(record.location.offset) of "
                    + "\(path(record.location.part)) have SHA-256 \(actual.prefix(16))…, the journal log expects "
                    + "\(record.sha256.prefix(16))… (checksum mismatch)")
        }
        let skipped = Set(record.skipped.map(\.offset))
        let perRow = featureCount
        var values = [Float](repeating: 0, count: (record.count - skipped.count) * perRow)
        values.withUnsafeMutableBytes { target in
            if skipped.isEmpty {
                target.copyMemory(from: bytes)
                return
            }
            var row = 0
            for offset in 0..<record.count where !skipped.contains(offset) {
                (target.baseAddress! + row * rowBytes).copyMemory(
                    from: bytes.baseAddress! + offset * rowBytes, byteCount: rowBytes)
                row += 1
            }
        }
        return values
    }
}

/// Reads byte ranges of part files in increasing order, as assembly does (shard after shard, part file after part
/// file): keeps the current part file open and reads blocks of `blockSize` bytes ahead, so consecutive shards
/// cost one large read, not an open, a read and a close each. Used from one thread.
public final class PartReader {
    private let parts: PartFiles
    private let blockSize: Int
    private var fd: Int32 = -1
    private var name = ""
    private var block: [UInt8] = []
    /// The file offset of `block[0]`, and how many bytes of `block` hold data.
    private var blockOffset = 0
    private var blockCount = 0

    public init(_ parts: PartFiles, blockSize: Int = 8 << 20) {
        self.parts = parts
        self.blockSize = blockSize
    }

    deinit { if fd >= 0 { Glibc.close(fd) } }

    /// Calls `body` with the `location.size` bytes at `location`; throws `io` when the file cannot be read,
    /// `corruptPart` when it ends before them.
    public func withBytes<R>(at location: PartLocation, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let path = parts.path(location.part)
        if location.part != name || fd < 0 {
            if fd >= 0 { Glibc.close(fd) }
            fd = -1
            blockCount = 0
            name = location.part
            fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
            guard fd >= 0 else {
                throw JournalError(.io, FileIOError(path: path, operation: "open", errno: errno).description)
            }
        }
        let end = location.offset + location.size
        if location.offset < blockOffset || end > blockOffset + blockCount {
            let wanted = max(location.size, blockSize)
            if block.count < wanted { block = [UInt8](repeating: 0, count: wanted) }
            blockOffset = location.offset
            blockCount = 0
            let fd = fd
            try block.withUnsafeMutableBytes { buffer in
                while blockCount < wanted {
                    let result = pread(
                        fd, buffer.baseAddress! + blockCount, wanted - blockCount, off_t(blockOffset + blockCount))
                    if result < 0 {
                        if errno == EINTR { continue }
                        throw JournalError(.io, FileIOError(path: path, operation: "read", errno: errno).description)
                    }
                    if result == 0 { break }
                    blockCount += result
                }
            }
            guard blockCount >= location.size else {
                throw JournalError(
                    .corruptPart,
                    "\(path) ends before offset \(blockOffset + blockCount) (\(location.size) bytes expected at "
                        + "offset \(location.offset))")
            }
        }
        return try block.withUnsafeBytes { buffer in
            try body(UnsafeRawBufferPointer(rebasing: buffer[(location.offset - blockOffset)..<(end - blockOffset)]))
        }
    }
}
