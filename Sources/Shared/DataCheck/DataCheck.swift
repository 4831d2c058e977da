import Crypto
import Dispatch
import Foundation
import ImageInput
import Reporting
import Synchronization

/// The data check of `inspect`: reads every image of each split once, in parallel, and reports what
/// would spoil supervised training.
///
/// Each file is read, hashed (SHA-256 of its bytes) and fully decoded; only a small record per file is
/// kept, so memory grows with the number of files, not their size.
public struct DataCheck: Sendable {
    /// Images smaller than this on either side are reported (VGG16 needs at least 32×32).
    public var minimumSide = 32
    /// Source modes that are converted correctly but worth knowing about.
    public var unusualModes: Set<String> = ["CMYK", "I;16", "I", "RGBA", "LA", "P", "PA", "1", "RGBX"]
    public var threads = max(1, ProcessInfo.processInfo.activeProcessorCount)

    public init() {}

    struct FileRecord: Sendable {
        var hash: Data?
        var size = 0
        var width = 0
        var height = 0
        var mode = ""
        var failure: (kind: DataCheckReport.Finding.Kind, reason: String)?
    }

    /// Checks the split directories (their last path component names the split).
    ///
    /// - Parameter progress: receives reports now and then, from any thread: task `inspect`, files done of the
    ///   files in all splits.
    public func run(directories: [String], progress: ProgressSink = .none) throws -> DataCheckReport {
        let scans = try directories.map { try DirectoryScan.scan(directory: $0) }
        return check(scans, names: Self.splitNames(directories), progress: progress)
    }

    /// Checks the splits listed in CSV image lists (see `ImageListFile`; a list's file name without its
    /// extension names the split), their filenames relative to `directory` (nil: paths as they stand). A listed
    /// file that is missing is an unreadable file. Throws `ImageListError` for a bad list.
    public func run(lists: [String], directory: String?, progress: ProgressSink = .none) throws -> DataCheckReport {
        let scans = try lists.map { list in
            let (classNames, images) = try ImageListFile.read(list, directory: directory)
            return DirectoryScan(directory: directory ?? "", classNames: classNames, entries: images)
        }
        let stems = lists.map { URL(fileURLWithPath: $0).deletingPathExtension().path }
        return check(scans, names: Self.splitNames(stems), progress: progress)
    }

    private func check(_ scans: [DirectoryScan], names: [String], progress: ProgressSink) -> DataCheckReport {
        let total = scans.reduce(0) { $0 + $1.entries.count }
        var records: [[FileRecord]] = []
        var done = 0
        for scan in scans {
            records.append(check(scan.entries, done: done, total: total, progress: progress))
            done += scan.entries.count
        }
        progress.report(Self.report(done: total, total: total))

        var findings: [DataCheckReport.Finding] = []
        func add(_ kind: DataCheckReport.Finding.Kind, _ attention: Bool, _ message: String, _ files: [String]) {
            if !files.isEmpty {
                findings.append(.init(kind: kind, needsAttention: attention, message: message, files: files))
            }
        }
        var splits: [DataCheckReport.Split] = []
        var hashes: [Data: [(split: Int, file: String)]] = [:]
        for (s, scan) in scans.enumerated() {
            let split = names[s]
            var counts = [Int](repeating: 0, count: scan.classNames.count)
            var failed: [DataCheckReport.Finding.Kind: [String]] = [:]
            var small: [String] = []
            var modes: [String: [String]] = [:]
            for (entry, record) in zip(scan.entries, records[s]) {
                let file = "\(split)/\(entry.filename)"
                if let failure = record.failure {
                    failed[failure.kind, default: []].append("\(file) — \(failure.reason)")
                    continue
                }
                counts[Int(entry.label)] += 1
                if let hash = record.hash { hashes[hash, default: []].append((s, file)) }
                if record.width < minimumSide || record.height < minimumSide {
                    small.append("\(file) (\(record.width)×\(record.height))")
                }
                if unusualModes.contains(record.mode) { modes[record.mode, default: []].append(file) }
            }
            for kind in DataCheckReport.Finding.Kind.allCases {
                guard let files = failed[kind] else { continue }
                add(kind, true, "\(split): \(files.count) \(Self.describe(kind)) file(s)", files)
            }
            add(.tooSmall, true, "\(split): \(small.count) image(s) smaller than \(minimumSide)×\(minimumSide)", small)
            for mode in modes.keys.sorted() {
                add(
                    .unusualMode, false,
                    "\(split): \(modes[mode]!.count) image(s) in mode \(mode) (converted to RGB as Keras does)",
                    modes[mode]!)
            }
            let empty = zip(scan.classNames, counts).filter { $0.1 == 0 }.map { "\(split)/\($0.0)" }
            add(.emptyClass, true, "\(split): \(empty.count) class(es) without a readable image", empty)
            splits.append(
                .init(
                    name: split, directory: scan.directory, images: counts.reduce(0, +),
                    classes: zip(scan.classNames, counts).map { .init(name: $0.0, images: $0.1) }))
        }
        var duplicates: [String] = []
        var leaks: [String] = []
        for group in hashes.values where group.count > 1 {
            let line = group.map(\.file).joined(separator: " = ")
            if Set(group.map(\.split)).count > 1 { leaks.append(line) }
            if Dictionary(grouping: group, by: \.split).values.contains(where: { $0.count > 1 }) {
                duplicates.append(line)
            }
        }
        add(.duplicate, true, "\(duplicates.count) set(s) of identical files within a split", duplicates.sorted())
        add(.leakage, true, "\(leaks.count) file(s) appear in more than one split (leakage)", leaks.sorted())
        if scans.count > 1 {
            let all = Set(scans.flatMap(\.classNames))
            var missing: [String] = []
            for (s, scan) in scans.enumerated() {
                for name in all.subtracting(scan.classNames).sorted() {
                    missing.append("class '\(name)' is missing from \(names[s])")
                }
            }
            add(.classInOneSplitOnly, true, "\(missing.count) class(es) not present in every split", missing)
        }
        return DataCheckReport(splits: splits, findings: findings)
    }

    static func describe(_ kind: DataCheckReport.Finding.Kind) -> String {
        switch kind {
        case .zeroByte: "zero-byte"
        case .notAnImage: "non-image"
        case .unsupportedFormat: "unsupported-format"
        case .truncated: "truncated"
        case .undecodable: "undecodable"
        case .unreadable: "unreadable"
        default: kind.rawValue
        }
    }

    /// Split names from the directories' last components, made unique ("train", "train-2").
    static func splitNames(_ directories: [String]) -> [String] {
        var seen: [String: Int] = [:]
        return directories.map { directory in
            let base = URL(fileURLWithPath: directory).standardizedFileURL.lastPathComponent
            seen[base, default: 0] += 1
            return seen[base]! == 1 ? base : "\(base)-\(seen[base]!)"
        }
    }

    static func report(done: Int, total: Int) -> ProgressReport {
        ProgressReport(task: "inspect", done: done, total: total, unit: "files")
    }

    private func check(_ entries: ImageList, done: Int, total: Int, progress: ProgressSink) -> [FileRecord] {
        let results = RecordBuffer(count: entries.count)
        let chunk = 64
        let chunks = (entries.count + chunk - 1) / chunk
        let counter = ProgressCounter()
        let workers = max(1, min(threads, chunks))
        DispatchQueue.concurrentPerform(iterations: workers) { worker in
            var c = worker
            while c < chunks {
                for index in (c * chunk)..<min(entries.count, (c + 1) * chunk) {
                    results.set(index, Self.inspect(entries[index]))
                }
                let finished = counter.add(min(chunk, entries.count - c * chunk))
                progress.report(Self.report(done: done + finished, total: total))
                c += workers
            }
        }
        return results.records
    }

    static func inspect(_ entry: ImageEntry) -> FileRecord {
        var record = FileRecord()
        guard let data = FileManager.default.contents(atPath: entry.path) else {
            record.failure = (.unreadable, "cannot be read (missing, dangling link or no permission)")
            return record
        }
        let bytes = [UInt8](data)
        record.size = bytes.count
        if bytes.isEmpty {
            record.failure = (.zeroByte, "empty file")
            return record
        }
        record.hash = Data(SHA256.hash(data: bytes))
        let header: (width: Int, height: Int, format: String, sourceMode: String)
        do {
            header = try ImageDecoder.header(bytes, filename: entry.filename)
        } catch {
            let unsupported = error.reason.lowercased().contains("unsupported")
            record.failure = (unsupported ? .unsupportedFormat : .notAnImage, error.reason)
            return record
        }
        do {
            let image = try ImageDecoder.decode(bytes, filename: entry.filename)
            record.width = image.width
            record.height = image.height
            record.mode = image.sourceMode
        } catch {
            let reason = error.reason.lowercased()
            let truncated = reason.contains("truncat") || reason.contains("premature") || reason.contains("end of")
            record.failure = (truncated ? .truncated : .undecodable, error.reason)
            record.width = header.width
            record.height = header.height
        }
        return record
    }
}

/// Records written by concurrent workers at distinct indices; read after they finish.
private final class RecordBuffer: Sendable {
    private let storage: Mutex<[DataCheck.FileRecord]>
    init(count: Int) { storage = Mutex(Array(repeating: .init(), count: count)) }
    var records: [DataCheck.FileRecord] { storage.withLock { $0 } }
    func set(_ index: Int, _ record: DataCheck.FileRecord) {
        storage.withLock { $0[index] = record }
    }
}

/// Files finished so far, counted by concurrent workers.
private final class ProgressCounter: Sendable {
    private let value = Mutex(0)
    func add(_ n: Int) -> Int {
        value.withLock {
            $0 += n
            return $0
        }
    }
}
