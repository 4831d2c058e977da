import Crypto
import FileIntegrity
import Foundation
import Provenance
import Reporting
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// An error of the extraction journal (`<output>.parts/`).
public struct JournalError: Error, CustomStringConvertible, Sendable {
    public enum Reason: Sendable, Equatable {
        /// A resume whose inputs or settings differ from the manifest's; `changes` names each difference.
        case settingsChanged(changes: [String])
        case corruptPart
        case io
        /// Another process holds the journal's lock (another coordinator writing the same output).
        case inUse
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { "journal: \(message)" }
}

/// A contiguous run of images of one split, computed and stored as one unit.
public struct ShardSpan: Codable, Sendable, Equatable {
    public var id: Int
    public var split: String
    /// Index of the first image within its split.
    public var start: Int
    public var count: Int
    public init(id: Int, split: String, start: Int, count: Int) {
        self.id = id
        self.split = split
        self.start = start
        self.count = count
    }
}

/// One split of the job as the journal records it.
public struct JournalSplit: Codable, Sendable, Equatable {
    public var name: String
    public var imageCount: Int
    /// SHA-256 over the split's filenames and labels in order (see `ShardJournal.fileListHash`).
    public var fileListSHA256: String
    public init(name: String, imageCount: Int, fileListSHA256: String) {
        self.name = name
        self.imageCount = imageCount
        self.fileListSHA256 = fileListSHA256
    }
}

/// Everything that decides the bytes of the output; a resume must find exactly the same.
public struct JournalManifest: Codable, Sendable, Equatable {
    public var formatVersion = 3
    public var classNames: [String]
    public var splits: [JournalSplit]
    public var weightsSHA256: String
    public var imageHeight: Int
    public var imageWidth: Int
    public var preprocessing: String
    public var interpolation: String
    public var layer: String
    public var featureShape: [Int]
    public var shardSize: Int
    /// Rows of a split per range part file: a multiple of the shard size, at least `minimumRowsPerPart`.
    public var rowsPerPart: Int
    public var shards: [ShardSpan]
    /// What the finished shards were computed under; recorded when the first worker joins
    /// (`ShardJournal.record(_:)`), nil before.
    public var provenance: ComputeProfile?

    public init(
        classNames: [String], splits: [JournalSplit], weightsSHA256: String, imageHeight: Int, imageWidth: Int,
        preprocessing: String, interpolation: String, layer: String, featureShape: [Int], shardSize: Int,
        minimumRowsPerPart: Int = JournalManifest.defaultMinimumRowsPerPart
    ) {
        self.classNames = classNames
        self.splits = splits
        self.weightsSHA256 = weightsSHA256
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.preprocessing = preprocessing
        self.interpolation = interpolation
        self.layer = layer
        self.featureShape = featureShape
        self.shardSize = shardSize
        rowsPerPart = max(1, (max(1, minimumRowsPerPart) + shardSize - 1) / max(shardSize, 1)) * max(shardSize, 1)
        var shards: [ShardSpan] = []
        for split in splits {
            var start = 0
            while start < split.imageCount {
                let count = min(shardSize, split.imageCount - start)
                shards.append(ShardSpan(id: shards.count, split: split.name, start: start, count: count))
                start += count
            }
        }
        self.shards = shards
    }

    /// At most one part file per this many images of a split.
    public static let defaultMinimumRowsPerPart = 10_000

    /// What differs between the journal's manifest (`self`) and a new run's, in words a user can act on.
    public func changes(comparedTo new: JournalManifest) -> [String] {
        var changes: [String] = []
        if formatVersion != new.formatVersion {
            changes.append("journal format (was \(formatVersion), now \(new.formatVersion))")
        }
        if imageHeight != new.imageHeight || imageWidth != new.imageWidth {
            changes.append("image size (was \(imageHeight)x\(imageWidth), now \(new.imageHeight)x\(new.imageWidth))")
        }
        if preprocessing != new.preprocessing {
            changes.append("preprocessing (was \(preprocessing), now \(new.preprocessing))")
        }
        if interpolation != new.interpolation {
            changes.append("interpolation (was \(interpolation), now \(new.interpolation))")
        }
        if layer != new.layer { changes.append("layer (was \(layer), now \(new.layer))") }
        if weightsSHA256 != new.weightsSHA256 {
            changes.append(
                "weights (was sha256 \(weightsSHA256.prefix(12))…, now \(new.weightsSHA256.prefix(12))…)")
        }
        if classNames != new.classNames {
            changes.append(
                "class names (was \(classNames.joined(separator: ",")), now \(new.classNames.joined(separator: ",")))")
        }
        let oldSplits = Dictionary(uniqueKeysWithValues: splits.map { ($0.name, $0) })
        let newSplits = Dictionary(uniqueKeysWithValues: new.splits.map { ($0.name, $0) })
        for name in Set(oldSplits.keys).union(newSplits.keys).sorted() {
            switch (oldSplits[name], newSplits[name]) {
            case (nil, _?): changes.append("\(name) split (not in the journal, now given)")
            case (_?, nil): changes.append("\(name) split (in the journal, now not given)")
            case (let old?, let now?) where old.fileListSHA256 != now.fileListSHA256:
                changes.append("\(name) file list (was \(old.imageCount) images, now \(now.imageCount), or renamed)")
            default: break
            }
        }
        if shardSize != new.shardSize { changes.append("shard size (was \(shardSize), now \(new.shardSize))") }
        if changes.isEmpty
            && (featureShape != new.featureShape || shards != new.shards || rowsPerPart != new.rowsPerPart)
        {
            changes.append("shard plan or feature shape")
        }
        return changes
    }
}

/// The journal of an extraction: a manifest, range part files holding the features (`PartFiles`), and the
/// journal log (`JournalLog`, `journal.log`) with one line per finished shard.
///
/// A shard counts as done once its log line is durable; its rows were written and fsynced before. A resume
/// trusts the log and checks only that each part file exists and is long enough; `verify(_:)` hashes the rows.
/// Used from one thread; `parts` may be used from any.
public final class ShardJournal {
    public let directory: String
    public private(set) var manifest: JournalManifest
    public let parts: PartFiles

    private let lock: JournalLock
    private let log: JournalLog

    private init(directory: String, manifest: JournalManifest, lock: JournalLock, log: JournalLog) {
        self.directory = directory
        self.manifest = manifest
        self.lock = lock
        self.log = log
        parts = PartFiles(
            directory: directory, rowsPerPart: manifest.rowsPerPart, featureShape: manifest.featureShape)
    }

    /// Opens the journal in `directory` for `manifest`, creating it when absent.
    ///
    /// First takes the journal's lock (`JournalLock`, held until the journal is released): when another process
    /// holds it, throws `inUse` naming its pid and host, having touched nothing. With `restart`, an existing
    /// journal is then emptied. Without it, an existing manifest that differs from `manifest` throws
    /// `settingsChanged` naming each change. Temporary files a crashed run left are removed.
    ///
    /// With `readAhead` (`readAhead(directory:)`, run while the inputs were read): the manifest and the log state it
    /// read are used when their files are still the ones it read (same inode, size and times, checked under the
    /// lock); anything else is read again here.
    public static func open(
        directory: String, manifest: JournalManifest, restart: Bool, readAhead: ReadAhead? = nil
    ) throws -> ShardJournal {
        let fileManager = FileManager.default
        let manifestPath = directory + "/manifest.json"
        do {
            try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw JournalError(.io, FileIOError(path: directory, operation: "create", error: error).description)
        }
        let lock = try JournalLock.acquire(directory: directory)
        for name in (try? fileManager.contentsOfDirectory(atPath: directory)) ?? []
        where name != JournalLock.name && (restart || name.contains(".tmp-")) {
            do { try fileManager.removeItem(atPath: directory + "/" + name) } catch {
                throw JournalError(
                    .io,
                    FileIOError(path: directory + "/" + name, operation: "remove (for a restart)", error: error)
                        .description)
            }
        }
        var opened = manifest
        if fileManager.fileExists(atPath: manifestPath) {
            let old: JournalManifest
            do {
                if !restart, let early = readAhead?.manifest, FileIdentity(path: manifestPath) == early.identity {
                    old = early.manifest
                } else {
                    old = try JournalManifest.decode(Data(contentsOf: URL(fileURLWithPath: manifestPath)))
                }
            } catch {
                if let version = try? JSONDecoder().decode(
                    FormatVersionOnly.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath))),
                    version.formatVersion != manifest.formatVersion
                {
                    let change = "journal format (was \(version.formatVersion), now \(manifest.formatVersion))"
                    throw JournalError(
                        .settingsChanged(changes: [change]),
                        "cannot resume \(directory): changed since the interrupted run: \(change). Restart the job "
                            + "to start over.")
                }
                throw JournalError(
                    .settingsChanged(changes: ["manifest unreadable"]),
                    "\(manifestPath) is unreadable; restart the job to start over")
            }
            let changes = old.changes(comparedTo: manifest)
            if !changes.isEmpty {
                throw JournalError(
                    .settingsChanged(changes: changes),
                    "cannot resume \(directory): changed since the interrupted run: \(changes.joined(separator: "; "))"
                        + ". Restart the job to start over.")
            }
            opened = old
        } else {
            let encoder = JSONEncoder()
            encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
            try writeAtomically(Array(try encoder.encode(manifest)), to: manifestPath)
        }
        let log = try JournalLog.open(directory + "/" + JournalLog.name, replayed: restart ? nil : readAhead?.log)
        return ShardJournal(directory: directory, manifest: opened, lock: lock, log: log)
    }

    /// An existing journal's manifest and log state, read without its lock and without changing anything, so that
    /// a resume can read them while it reads its inputs; `open` checks that the files are unchanged before using
    /// them.
    public struct ReadAhead: Sendable {
        let manifest: (manifest: JournalManifest, identity: FileIdentity)?
        let log: JournalLog.Replay?
        /// Shards the log read ahead records as done (before any check of their part files).
        public var recordedShards: Int { log?.records.count ?? 0 }
    }

    /// Reads the manifest and replays the log of the journal in `directory`, if there is one (nil parts when a
    /// file is missing or unreadable: `open` then reads it and reports what is wrong). Changes nothing; may run
    /// on any thread.
    public static func readAhead(directory: String) -> ReadAhead {
        let manifestPath = directory + "/manifest.json"
        var manifest: (JournalManifest, FileIdentity)?
        if let identity = FileIdentity(path: manifestPath),
            let data = try? Data(contentsOf: URL(fileURLWithPath: manifestPath)), data.count == identity.size,
            let decoded = try? JournalManifest.decode(data)
        {
            manifest = (decoded, identity)
        }
        return ReadAhead(manifest: manifest, log: JournalLog.replay(directory + "/" + JournalLog.name))
    }

    private struct FormatVersionOnly: Decodable { var formatVersion: Int }

    /// Records what the shards are computed under. The first record is written to the manifest; a later one
    /// (a resume, another worker) must equal it, or `settingsChanged` names each difference.
    public func record(_ provenance: ComputeProfile) throws {
        if let recorded = manifest.provenance {
            let changes = recorded.differences(from: provenance)
            guard changes.isEmpty else {
                throw JournalError(
                    .settingsChanged(changes: changes),
                    "cannot resume \(directory): the features were computed under another profile: "
                        + changes.joined(separator: "; ") + ". Restart the job to start over.")
            }
            return
        }
        var updated = manifest
        updated.provenance = provenance
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try Self.writeAtomically(Array(try encoder.encode(updated)), to: directory + "/manifest.json")
        manifest = updated
    }

    /// The path of the journal log.
    public var logPath: String { log.path }

    /// Lines of the log that could not be read when it was opened (a torn last line after a crash), ignored.
    public var ignoredLogLines: Int { log.ignoredLines }

    /// Each finished shard's record, by shard id, as the log says.
    public var records: [Int: ShardRecord] { log.records }

    /// Images of `split` (the last part file of a split is shorter than the others).
    public func imageCount(of split: String) -> Int {
        manifest.splits.first { $0.name == split }?.imageCount ?? 0
    }

    /// The shards the log records as done whose part file exists and is long enough, without reading a feature;
    /// and those it records whose record does not match the plan or whose part file is missing or short
    /// (`shardID`, why), which must be computed again.
    public func finishedShards() -> (done: Set<Int>, lost: [(shardID: Int, reason: String)]) {
        var done = Set<Int>()
        var lost: [(Int, String)] = []
        let featureCount = manifest.featureShape.reduce(1, *)
        // One stat per part file, not per shard (a split's shards come in order, part file by part file).
        var lastPart: (name: String, size: Int?)?
        let records = log.records
        for id in records.keys where id >= manifest.shards.count {
            lost.append((id, "the journal log names shard \(id), beyond the plan"))
        }
        for shard in manifest.shards {
            guard let record = records[shard.id] else { continue }
            guard record.split == shard.split, record.start == shard.start, record.count == shard.count,
                record.location.size == shard.count * featureCount * 4
            else {
                lost.append((shard.id, "its record in \(log.path) does not match shard \(shard.id) of the plan"))
                continue
            }
            let name = record.location.part
            if lastPart?.name != name { lastPart = (name, parts.size(of: name)) }
            guard let size = lastPart!.size, size >= record.location.offset + record.location.size else {
                lost.append(
                    (shard.id, "\(parts.path(name)) is missing or shorter than the journal log says"))
                continue
            }
            done.insert(shard.id)
        }
        return (done, lost)
    }

    /// Reads and hashes every recorded shard of `shards`, on `threads` threads; returns those whose rows do not
    /// match their SHA-256 or cannot be read (`shardID`, why), in shard order.
    public func verify(_ shards: Set<Int>, threads: Int) -> [(shardID: Int, reason: String)] {
        let records = shards.sorted().compactMap { log.records[$0] }
        let failures = Mutex<[(Int, String)]>([])
        let parts = parts
        let next = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: max(1, min(threads, records.count))) { _ in
            while true {
                let index = next.wrappingAdd(1, ordering: .relaxed).oldValue
                guard index < records.count else { return }
                do { _ = try parts.readShard(records[index]) } catch {
                    let reason = (error as? JournalError)?.message ?? "\(error)"
                    failures.withLock { $0.append((records[index].shard, reason)) }
                }
            }
        }
        return failures.withLock { $0 }.sorted { $0.0 < $1.0 }
    }

    /// Makes the log lines of finished shards durable (one write, one fsync): from then on they count as done.
    public func commit(_ records: [ShardRecord]) throws {
        try log.append(records.map { .done($0) })
    }

    /// Withdraws shards' records (a log line each, one fsync), so that they are computed again.
    public func invalidate(_ shards: [(shardID: Int, reason: String)]) throws {
        try log.append(shards.map { .invalidated(shard: $0.shardID, reason: $0.reason) })
    }

    /// Reads a finished shard's rows (images not skipped, shard order), checking their SHA-256; on a mismatch
    /// withdraws the shard's record (so that a rerun recomputes it) and throws `corruptPart` naming the shard,
    /// the part file, the offset and the hash expected.
    ///
    /// With `reader`, shards read in order share its read-ahead blocks (`PartReader`).
    public func readShard(_ shardID: Int, using reader: PartReader? = nil) throws -> (
        record: ShardRecord, features: [Float]
    ) {
        guard let record = log.records[shardID] else {
            throw JournalError(.corruptPart, "shard \(shardID) has no record in \(log.path)")
        }
        do {
            return (record, try parts.readShard(record, using: reader))
        } catch let error as JournalError where error.reason == .corruptPart {
            try? invalidate([(shardID, error.message)])
            throw error
        }
    }

    /// Removes the whole journal directory (after the output is complete).
    public func remove() throws {
        log.close()
        do { try FileManager.default.removeItem(atPath: directory) } catch {
            throw JournalError(.io, FileIOError(path: directory, operation: "remove", error: error).description)
        }
        do { try AtomicFile.syncDirectory(containing: directory) } catch let error as FileIOError {
            throw JournalError(.io, error.description)
        }
    }

    /// SHA-256 over filenames and labels in order: `filename \0 label \n` per image.
    public static func fileListHash(filenames: [String], labels: [Int32]) -> String {
        var hasher = SHA256()
        for (filename, label) in zip(filenames, labels) {
            hasher.update(data: Array(filename.utf8) + [0] + Array(String(label).utf8) + [10])
        }
        return Checksum.hex(hasher.finalize())
    }

    static func writeAtomically(_ bytes: [UInt8], to path: String) throws {
        do { try AtomicFile.write(bytes, to: path) } catch let error as FileIOError {
            throw JournalError(.io, error.description)
        }
    }
}

extension JournalError: ReportedError {
    public var category: FailureCategory { reason == .io ? .failedRun : .badInput }
    public var remedy: Remedy? {
        if case .settingsChanged = reason { return .restartJob }
        return nil
    }
}

extension JournalManifest {
    /// Decodes a manifest as `JSONDecoder` does. The shard plan (312,500 shards at 10 million images, most of the
    /// file) costs that decoder seconds; when the file is laid out as `ShardJournal` writes it, the plan is read
    /// straight from its bytes (`ShardPlanReader`) and the rest by `JSONDecoder`, which still checks the whole
    /// file. Any other layout is decoded by `JSONDecoder` alone, with its errors.
    public static func decode(_ data: Data) throws -> JournalManifest {
        if let manifest = try? decodeWithPlanReader(data) { return manifest }
        return try JSONDecoder().decode(JournalManifest.self, from: data)
    }

    /// Every field but the plan.
    private struct WithoutPlan: Decodable {
        var formatVersion: Int
        var classNames: [String]
        var splits: [JournalSplit]
        var weightsSHA256: String
        var imageHeight: Int
        var imageWidth: Int
        var preprocessing: String
        var interpolation: String
        var layer: String
        var featureShape: [Int]
        var shardSize: Int
        var rowsPerPart: Int
        var provenance: ComputeProfile?
    }

    private static func decodeWithPlanReader(_ data: Data) throws -> JournalManifest? {
        let plan = data.withUnsafeBytes { bytes in
            var reader = ShardPlanReader(bytes.bindMemory(to: UInt8.self))
            return reader.shards()
        }
        guard let shards = plan else { return nil }
        let fields = try JSONDecoder().decode(WithoutPlan.self, from: data)
        var manifest = JournalManifest(
            classNames: fields.classNames, splits: [], weightsSHA256: fields.weightsSHA256,
            imageHeight: fields.imageHeight, imageWidth: fields.imageWidth, preprocessing: fields.preprocessing,
            interpolation: fields.interpolation, layer: fields.layer, featureShape: fields.featureShape,
            shardSize: fields.shardSize)
        manifest.formatVersion = fields.formatVersion
        manifest.splits = fields.splits
        manifest.rowsPerPart = fields.rowsPerPart
        manifest.provenance = fields.provenance
        manifest.shards = shards
        return manifest
    }
}

/// Reads the `shards` array of a manifest written by `ShardJournal` (pretty-printed: the key at the top level, on
/// a line of its own indented by two spaces) from its bytes: objects with exactly the keys `count`, `id`, `split`
/// and `start`, in any order, integers as JSON spells them, the split a string without escapes. Gives nil for
/// anything else, which is then left to `JSONDecoder`.
struct ShardPlanReader {
    private var cursor: JSONByteCursor

    init(_ bytes: UnsafeBufferPointer<UInt8>) { cursor = JSONByteCursor(bytes, 0..<bytes.count) }

    mutating func shards() -> [ShardSpan]? {
        // A raw line feed is never inside a JSON string, and only the top level's keys are indented by two spaces.
        let bytes = cursor.bytes
        let key = Array("\n  \"shards\" : [".utf8)
        guard bytes.count >= key.count,
            let found = (0...(bytes.count - key.count)).first(where: { start in
                bytes[start] == 10 && (0..<key.count).allSatisfy { bytes[start + $0] == key[$0] }
            })
        else { return nil }
        cursor.move(to: found + key.count)
        var shards: [ShardSpan] = []
        cursor.skipSpace()
        if cursor.take(UInt8(ascii: "]")) { return shards }
        while true {
            guard let shard = shard() else { return nil }
            shards.append(shard)
            cursor.skipSpace()
            if cursor.take(UInt8(ascii: "]")) { return shards }
            guard cursor.take(UInt8(ascii: ",")) else { return nil }
            cursor.skipSpace()
        }
    }

    private mutating func shard() -> ShardSpan? {
        guard cursor.take(UInt8(ascii: "{")) else { return nil }
        var id: Int?
        var split: String?
        var start: Int?
        var count: Int?
        while true {
            cursor.skipSpace()
            guard let name = cursor.string() else { return nil }
            cursor.skipSpace()
            guard cursor.take(UInt8(ascii: ":")) else { return nil }
            cursor.skipSpace()
            switch name {
            case "id" where id == nil: id = cursor.integer()
            case "start" where start == nil: start = cursor.integer()
            case "count" where count == nil: count = cursor.integer()
            case "split" where split == nil: split = cursor.string()
            default: return nil
            }
            cursor.skipSpace()
            if cursor.take(UInt8(ascii: "}")) { break }
            guard cursor.take(UInt8(ascii: ",")) else { return nil }
        }
        guard let id, let split, let start, let count else { return nil }
        return ShardSpan(id: id, split: split, start: start, count: count)
    }
}
