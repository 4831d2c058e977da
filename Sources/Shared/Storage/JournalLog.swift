import Dispatch
import FileIntegrity
import Foundation
import Provenance
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A finished shard as the journal log records it: where its rows are, their SHA-256, the images skipped, and
/// each image's stamp when it was read.
public struct ShardRecord: Codable, Sendable, Equatable {
    public var shard: Int
    public var split: String
    /// Index of the shard's first image within its split.
    public var start: Int
    public var count: Int
    public var location: PartLocation
    /// SHA-256 (hex) of the `location.size` bytes at `location`.
    public var sha256: String
    public var skipped: [ShardPart.Skipped]
    /// The digest of the shard's input stamps (`ShardRecord.digest(of:)`): each image's size and modification
    /// time when it was read, or its absence. A resume recomputes the shard when its images' stamps now give
    /// another digest. A digest, not the stamps, keeps a line the same length whatever the shard size.
    public var inputs: String

    public init(
        shard: Int, split: String, start: Int, count: Int, location: PartLocation, sha256: String,
        skipped: [ShardPart.Skipped], inputs: [InputStamp?]
    ) {
        self.init(
            shard: shard, split: split, start: start, count: count, location: location, sha256: sha256,
            skipped: skipped, inputsDigest: Self.digest(of: inputs))
    }

    /// A record whose input stamps' digest is known already (read back from the log).
    init(
        shard: Int, split: String, start: Int, count: Int, location: PartLocation, sha256: String,
        skipped: [ShardPart.Skipped], inputsDigest: String
    ) {
        self.shard = shard
        self.split = split
        self.start = start
        self.count = count
        self.location = location
        self.sha256 = sha256
        self.skipped = skipped
        self.inputs = inputsDigest
    }

    /// SHA-256 over `size:modifiedNanoseconds\n` per image in order (`-\n` for a missing one), its first 16
    /// bytes as hex.
    public static func digest(of stamps: [InputStamp?]) -> String {
        var text = ""
        text.reserveCapacity(stamps.count * 32)
        for stamp in stamps {
            if let stamp { text += "\(stamp.size):\(stamp.modifiedNanoseconds)\n" } else { text += "-\n" }
        }
        return String(Checksum.sha256Hex(Array(text.utf8)).prefix(32))
    }
}

/// One line of the journal log: a shard done, or a shard's earlier record withdrawn (its rows failed a check,
/// or its inputs changed) so that it is computed again.
///
/// As JSON: `{"done": {"shard": 3, "split": "train", "start": 12, "count": 4, "location": {"part":
/// "part-train-000000.h5", "offset": 2144, "size": 401408}, "sha256": "…", "skipped": [{"offset": 1, "reason":
/// "…"}], "inputs": "<digest of the input stamps>"}}` or `{"invalidated": {"shard": 3, "reason": "…"}}`.
public enum JournalEvent: Codable, Sendable, Equatable {
    case done(ShardRecord)
    case invalidated(shard: Int, reason: String)

    private enum Key: String, CodingKey { case done, invalidated }
    private struct Invalidation: Codable {
        var shard: Int
        var reason: String
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: Key.self)
        if let record = try container.decodeIfPresent(ShardRecord.self, forKey: .done) {
            self = .done(record)
        } else {
            let invalidation = try container.decode(Invalidation.self, forKey: .invalidated)
            self = .invalidated(shard: invalidation.shard, reason: invalidation.reason)
        }
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        switch self {
        case .done(let record): try container.encode(record, forKey: .done)
        case .invalidated(let shard, let reason):
            try container.encode(Invalidation(shard: shard, reason: reason), forKey: .invalidated)
        }
    }
}

/// `journal.log`: append-only JSON lines, one `JournalEvent` each.
///
/// A line counts once it and its newline are durable; a torn last line (a crash mid-append) is ignored and cut
/// off when the log is opened, so the next append starts on a line of its own. Appends write a group of lines
/// with one `write` and one `fsync`. Used from one thread.
public final class JournalLog {
    public static let name = "journal.log"

    public let path: String
    private var fd: Int32

    /// The state the log describes: each shard's latest record, invalidations applied.
    public private(set) var records: [Int: ShardRecord]
    /// Lines that were present but could not be read (a torn last line, or damage), ignored.
    public let ignoredLines: Int

    private init(path: String, fd: Int32, records: [Int: ShardRecord], ignoredLines: Int) {
        self.path = path
        self.fd = fd
        self.records = records
        self.ignoredLines = ignoredLines
    }

    deinit { close() }

    /// The log as read at one moment: the state its whole lines describe, and the identity of the file read.
    public struct Replay: Sendable {
        public let records: [Int: ShardRecord]
        /// Whole lines that could not be read (damage), ignored; a torn last line is not counted here.
        public let ignoredLines: Int
        /// Bytes of whole lines (up to and including the last newline); more bytes are a torn last line.
        let complete: Int
        let identity: FileIdentity
    }

    /// Reads and replays the log at `path` without changing it (nil when it does not exist or cannot be read):
    /// `open(_:replayed:)` uses the result when the file has not changed since. Lets a resume replay the log while
    /// it reads its inputs, before it holds the journal's lock.
    public static func replay(_ path: String) -> Replay? {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { Glibc.close(fd) }
        guard let identity = FileIdentity(fd), let bytes = try? readAll(fd, path: path, size: identity.size) else {
            return nil
        }
        return replay(bytes, identity: identity)
    }

    /// Opens (or creates) the log at `path`, replays it, and cuts off a torn last line.
    ///
    /// With `replayed` (`replay(_:)` of this path, read earlier): when the file is still the one it read, size
    /// and times unchanged, its state is taken as it stands; otherwise the log is read again.
    public static func open(_ path: String, replayed: Replay? = nil) throws -> JournalLog {
        let existed = access(path, F_OK) == 0
        let fd = Glibc.open(path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw JournalError(.io, FileIOError(path: path, operation: "open", errno: errno).description)
        }
        let replay: Replay
        if let replayed, let identity = FileIdentity(fd), identity == replayed.identity {
            replay = replayed
        } else {
            do {
                guard let identity = FileIdentity(fd) else {
                    throw JournalError(.io, FileIOError(path: path, operation: "stat", errno: errno).description)
                }
                replay = Self.replay(try readAll(fd, path: path, size: identity.size), identity: identity)
            } catch {
                Glibc.close(fd)
                throw error
            }
        }
        var ignored = replay.ignoredLines
        if replay.complete < replay.identity.size {
            // A torn last line: never durable as a whole, so never counted. Cut it off.
            ignored += 1
            guard ftruncate(fd, off_t(replay.complete)) == 0, fsync(fd) == 0 else {
                let code = errno
                Glibc.close(fd)
                throw JournalError(
                    .io, FileIOError(path: path, operation: "truncate a torn line of", errno: code).description)
            }
        }
        if !existed {
            do { try AtomicFile.syncDirectory(containing: path) } catch {
                Glibc.close(fd)
                throw JournalError(.io, "\(error)")
            }
        }
        return JournalLog(path: path, fd: fd, records: replay.records, ignoredLines: ignored)
    }

    /// The file's `size` bytes from its start (fewer if it is shorter by now).
    private static func readAll(_ fd: Int32, path: String, size: Int) throws -> [UInt8] {
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        try bytes.withUnsafeMutableBytes { buffer in
            while done < size {
                let result = pread(fd, buffer.baseAddress! + done, size - done, off_t(done))
                if result < 0 {
                    if errno == EINTR { continue }
                    throw JournalError(.io, FileIOError(path: path, operation: "read", errno: errno).description)
                }
                if result == 0 { break }
                done += result
            }
        }
        if done < size { bytes.removeLast(size - done) }
        return bytes
    }

    /// Replays whole lines of `bytes`; whatever follows the last newline is a torn line, left to the caller.
    private static func replay(_ bytes: [UInt8], identity: FileIdentity) -> Replay {
        let complete = (bytes.lastIndex(of: 10) ?? -1) + 1
        // Decoding is the cost of a resume at scale: chunks of whole lines decode in parallel, then apply in order.
        let chunkCount = max(1, min(ProcessInfo.processInfo.activeProcessorCount, complete / (1 << 20) + 1))
        var bounds = [0]
        for chunk in 1..<chunkCount {
            var cut = complete * chunk / chunkCount
            while cut < complete && bytes[cut - 1] != 10 { cut += 1 }
            if cut > bounds.last! { bounds.append(cut) }
        }
        if complete > bounds.last! { bounds.append(complete) }
        let decoded = Mutex([[JournalEvent]?](repeating: nil, count: max(0, bounds.count - 1)))
        let ignoredLines = Atomic<Int>(0)
        let chunks = bounds
        DispatchQueue.concurrentPerform(iterations: max(0, chunks.count - 1)) { chunk in
            bytes.withUnsafeBufferPointer { buffer in
                let decoder = JSONDecoder()
                var events: [JournalEvent] = []
                var start = chunks[chunk]
                let end = chunks[chunk + 1]
                while start < end {
                    var newline = start
                    while buffer[newline] != 10 { newline += 1 }
                    if newline > start {
                        var reader = JournalLineReader(buffer, start..<newline)
                        if let event = reader.event() {
                            events.append(event)
                        } else if let event = try? decoder.decode(
                            JournalEvent.self, from: Data(UnsafeBufferPointer(rebasing: buffer[start..<newline])))
                        {
                            events.append(event)
                        } else {
                            ignoredLines.add(1, ordering: .relaxed)
                        }
                    }
                    start = newline + 1
                }
                decoded.withLock { $0[chunk] = events }
            }
        }
        var records: [Int: ShardRecord] = [:]
        for events in decoded.withLock({ $0 }) {
            for event in events ?? [] { apply(event, to: &records) }
        }
        return Replay(
            records: records, ignoredLines: ignoredLines.load(ordering: .relaxed), complete: complete,
            identity: identity)
    }

    fileprivate static func apply(_ event: JournalEvent, to records: inout [Int: ShardRecord]) {
        switch event {
        case .done(let record): records[record.shard] = record
        case .invalidated(let shard, _): records[shard] = nil
        }
    }

    /// Appends `events` as lines with one write and one fsync; they count once this returns.
    public func append(_ events: [JournalEvent]) throws {
        guard !events.isEmpty else { return }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var bytes: [UInt8] = []
        for event in events {
            do { bytes += try encoder.encode(event) } catch {
                preconditionFailure("a journal event of strings and integers failed to encode: \(error)")
            }
            bytes.append(10)
        }
        let before = lseek(fd, 0, SEEK_END)
        var written = 0
        while written < bytes.count {
            let result = bytes.withUnsafeBytes { Glibc.write(fd, $0.baseAddress! + written, $0.count - written) }
            if result < 0 {
                if errno == EINTR { continue }
                let code = errno
                // No half line may stay ahead of a later append.
                if before >= 0 { _ = ftruncate(fd, before) }
                throw JournalError(.io, FileIOError(path: path, operation: "append to", errno: code).description)
            }
            written += result
        }
        guard fdatasync(fd) == 0 else {
            throw JournalError(.io, FileIOError(path: path, operation: "fsync", errno: errno).description)
        }
        for event in events { Self.apply(event, to: &records) }
    }

    public func close() {
        if fd >= 0 {
            Glibc.close(fd)
            fd = -1
        }
    }
}

/// Reads one journal log line spelled exactly as `JournalLog.append` writes it (`JSONEncoder` with sorted keys,
/// no whitespace), straight from its bytes: a resume at scale replays hundreds of thousands of lines, and this
/// costs a fraction of `JSONDecoder`'s time per line.
///
/// `event()` gives nil for any other spelling (whitespace, escapes or non-ASCII bytes in a string, keys in
/// another order, a number that is not a plain integer, anything after the closing brace); the caller then hands
/// the line to `JSONDecoder`, which decides. So a line this reader accepts is one `JSONDecoder` reads the same way.
struct JournalLineReader {
    private var cursor: JSONByteCursor

    /// Reads the bytes `range` of `bytes` (one line, without its newline).
    init(_ bytes: UnsafeBufferPointer<UInt8>, _ range: Range<Int>) {
        cursor = JSONByteCursor(bytes, range)
    }

    /// The line's event, or nil when it is not spelled as `append` spells it.
    mutating func event() -> JournalEvent? {
        if literal("{\"done\":{\"count\":") {
            guard let count = integer(), literal(",\"inputs\":"), let inputs = string(),
                literal(",\"location\":{\"offset\":"), let offset = integer(), literal(",\"part\":"),
                let part = string(), literal(",\"size\":"), let size = integer(), literal("},\"sha256\":"),
                let sha256 = string(), literal(",\"shard\":"), let shard = integer(), literal(",\"skipped\":["),
                let skipped = skippedImages(), literal(",\"split\":"), let split = string(),
                literal(",\"start\":"), let start = integer(), literal("}}"), cursor.atEnd
            else { return nil }
            return .done(
                ShardRecord(
                    shard: shard, split: split, start: start, count: count,
                    location: PartLocation(part: part, offset: offset, size: size), sha256: sha256, skipped: skipped,
                    inputsDigest: inputs))
        }
        if literal("{\"invalidated\":{\"reason\":") {
            guard let reason = string(), literal(",\"shard\":"), let shard = integer(), literal("}}"), cursor.atEnd
            else { return nil }
            return .invalidated(shard: shard, reason: reason)
        }
        return nil
    }

    /// After `[`: `]`, or `{"offset":N,"reason":S}` items separated by commas and then `]`.
    private mutating func skippedImages() -> [ShardPart.Skipped]? {
        var skipped: [ShardPart.Skipped] = []
        if literal("]") { return skipped }
        while true {
            guard literal("{\"offset\":"), let offset = integer(), literal(",\"reason\":"), let reason = string(),
                literal("}")
            else { return nil }
            skipped.append(ShardPart.Skipped(offset: offset, reason: reason))
            if literal("]") { return skipped }
            guard literal(",") else { return nil }
        }
    }

    private mutating func literal(_ text: StaticString) -> Bool { cursor.literal(text) }
    private mutating func integer() -> Int? { cursor.integer() }
    private mutating func string() -> String? { cursor.string() }
}

/// What tells one state of a file from another: device, inode, size, and modification and status-change times
/// (ns). A file replaced (rename) has another inode; one written to, truncated or appended to has other times.
struct FileIdentity: Sendable, Equatable {
    let device: UInt64
    let inode: UInt64
    let size: Int
    let modified: Int64
    let changed: Int64

    init?(_ fd: Int32) {
        var info = stat()
        guard fstat(fd, &info) == 0 else { return nil }
        self.init(info)
    }

    init?(path: String) {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        self.init(info)
    }

    private init(_ info: stat) {
        device = UInt64(info.st_dev)
        inode = UInt64(info.st_ino)
        size = Int(info.st_size)
        modified = Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec)
        changed = Int64(info.st_ctim.tv_sec) * 1_000_000_000 + Int64(info.st_ctim.tv_nsec)
    }
}
