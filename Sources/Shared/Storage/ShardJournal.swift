import Crypto
import FileIntegrity
import Foundation
import Provenance
import Reporting

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
    public var formatVersion = 2
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
    public var shards: [ShardSpan]
    /// What the finished shards were computed under; recorded when the first worker joins
    /// (`ShardJournal.record(_:)`), nil before.
    public var provenance: ComputeProfile?

    public init(
        classNames: [String], splits: [JournalSplit], weightsSHA256: String, imageHeight: Int, imageWidth: Int,
        preprocessing: String, interpolation: String, layer: String, featureShape: [Int], shardSize: Int
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
        if changes.isEmpty && (featureShape != new.featureShape || shards != new.shards) {
            changes.append("shard plan or feature shape")
        }
        return changes
    }
}

/// The journal of an extraction: a manifest and one checksummed part file per finished shard.
///
/// Every file is written to a temporary name, fsynced, renamed, and the directory fsynced, so a part that exists
/// under its final name is whole unless the disk lies; the checksum catches the rest. Used from one thread.
public final class ShardJournal {
    public let directory: String
    public private(set) var manifest: JournalManifest

    private let lock: JournalLock

    private init(directory: String, manifest: JournalManifest, lock: JournalLock) {
        self.directory = directory
        self.manifest = manifest
        self.lock = lock
    }

    /// Opens the journal in `directory` for `manifest`, creating it when absent.
    ///
    /// First takes the journal's lock (`JournalLock`, held until the journal is released): when another process
    /// holds it, throws `inUse` naming its pid and host, having touched nothing. With `restart`, an existing
    /// journal is then emptied. Without it, an existing manifest that differs from `manifest` throws
    /// `settingsChanged` naming each change.
    public static func open(directory: String, manifest: JournalManifest, restart: Bool) throws -> ShardJournal {
        let fileManager = FileManager.default
        let manifestPath = directory + "/manifest.json"
        do {
            try fileManager.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw JournalError(.io, FileIOError(path: directory, operation: "create", error: error).description)
        }
        let lock = try JournalLock.acquire(directory: directory)
        if restart {
            for name in (try? fileManager.contentsOfDirectory(atPath: directory)) ?? [] where name != JournalLock.name {
                do { try fileManager.removeItem(atPath: directory + "/" + name) } catch {
                    throw JournalError(
                        .io,
                        FileIOError(path: directory + "/" + name, operation: "remove (for a restart)", error: error)
                            .description)
                }
            }
        }
        if fileManager.fileExists(atPath: manifestPath) {
            let old: JournalManifest
            do {
                old = try JSONDecoder().decode(
                    JournalManifest.self, from: Data(contentsOf: URL(fileURLWithPath: manifestPath)))
            } catch {
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
            return ShardJournal(directory: directory, manifest: old, lock: lock)
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted]
        try writeAtomically(Array(try encoder.encode(manifest)), to: manifestPath)
        return ShardJournal(directory: directory, manifest: manifest, lock: lock)
    }

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

    /// The path of a shard's part file.
    public func partPath(_ shardID: Int) -> String {
        directory + "/part-" + String(repeating: "0", count: max(0, 6 - String(shardID).count)) + "\(shardID).bin"
    }

    /// Checks every part present: returns the shards whose parts are whole and match the plan with the input
    /// stamps each recorded, removes leftover temporary files and corrupt parts, and reports each corrupt one
    /// (`shardID`, why).
    public func scanFinishedShards() -> (
        done: Set<Int>, corrupt: [(shardID: Int, reason: String)], inputs: [Int: [ShardPart.InputStamp?]]
    ) {
        let fileManager = FileManager.default
        for name in (try? fileManager.contentsOfDirectory(atPath: directory)) ?? [] where name.contains(".tmp-") {
            try? fileManager.removeItem(atPath: directory + "/" + name)
        }
        var done = Set<Int>()
        var corrupt: [(Int, String)] = []
        var inputs: [Int: [ShardPart.InputStamp?]] = [:]
        for shard in manifest.shards {
            let path = partPath(shard.id)
            guard fileManager.fileExists(atPath: path) else { continue }
            do {
                let part = try readPart(shard.id)
                let header = part.header
                guard header.shardID == shard.id, header.split == shard.split, header.start == shard.start,
                    header.count == shard.count, header.featureCount == manifest.featureShape.reduce(1, *)
                else {
                    throw JournalError(.corruptPart, "\(path): does not match shard \(shard.id) of the plan")
                }
                done.insert(shard.id)
                inputs[shard.id] = header.inputs
            } catch {
                corrupt.append((shard.id, "\(error)"))
                try? fileManager.removeItem(atPath: path)
            }
        }
        return (done, corrupt, inputs)
    }

    /// Removes a finished shard's part, so that the shard is computed again (its inputs changed).
    public func discardPart(_ shardID: Int) throws {
        let path = partPath(shardID)
        guard unlink(path) == 0 || errno == ENOENT else {
            throw JournalError(.io, "cannot remove \(path): \(String(cString: strerror(errno)))")
        }
        do { try AtomicFile.syncDirectory(containing: path) } catch let error as FileIOError {
            throw JournalError(.io, error.description)
        }
    }

    /// Stores a finished shard atomically (temporary name, fsync, rename, directory fsync).
    public func writePart(_ part: ShardPart) throws {
        try Self.writeAtomically(part.encoded(), to: partPath(part.header.shardID))
    }

    public func readPart(_ shardID: Int) throws -> ShardPart {
        let path = partPath(shardID)
        guard let data = FileManager.default.contents(atPath: path) else {
            throw JournalError(.io, "cannot read \(path)")
        }
        return try ShardPart.decode(Array(data), name: path)
    }

    /// Removes the whole journal directory (after the output is complete).
    public func remove() throws {
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
