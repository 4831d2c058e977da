import FileIntegrity
import Foundation
import HDF5
import Provenance
import Storage
import TestSupport
import Testing

@Suite("Shard journal: range part files and the journal log")
struct ShardJournalTests {
    /// Two splits (25 and 7 images) of 2×1×3 features, shards of 4, at least 8 rows per part file.
    static func manifest() -> JournalManifest {
        JournalManifest(
            classNames: ["cat", "dog"],
            splits: [
                JournalSplit(name: "train", imageCount: 25, fileListSHA256: "t"),
                JournalSplit(name: "validation", imageCount: 7, fileListSHA256: "v"),
            ], weightsSHA256: "w", imageHeight: 32, imageWidth: 32, preprocessing: "caffe", interpolation: "nearest",
            layer: "block5_pool", featureShape: [2, 1, 3], shardSize: 4, minimumRowsPerPart: 8)
    }

    /// The features of image `row` of a split: 6 values that name it.
    static func row(_ row: Int) -> [Float] { (0..<6).map { Float(row * 10 + $0) } }

    /// Stores shard `id` with its images at `skipped` offsets skipped, and commits it.
    @discardableResult
    static func store(_ journal: ShardJournal, _ id: Int, skipped: [Int] = []) throws -> ShardRecord {
        let span = journal.manifest.shards[id]
        let values = (0..<span.count).filter { !skipped.contains($0) }.flatMap { row(span.start + $0) }
        let record = try values.withUnsafeBytes {
            try journal.parts.writeShard(
                span, splitImageCount: journal.imageCount(of: span.split), rows: $0,
                skipped: skipped.map { ShardPart.Skipped(offset: $0, reason: "bad") },
                inputs: Array(repeating: InputStamp(size: 1, modifiedNanoseconds: 2), count: span.count))
        }
        try journal.commit([record])
        return record
    }

    @Test("part files hold a split's rows in ranges that are multiples of the shard size, as valid HDF5")
    func rangePartFiles() throws {
        let directory = try TemporaryDirectory("journal-ranges")
        defer { directory.remove() }
        let journal = try ShardJournal.open(
            directory: directory.file("parts"), manifest: Self.manifest(), restart: false)
        #expect(journal.manifest.rowsPerPart == 8)
        for shard in journal.manifest.shards { try Self.store(journal, shard.id, skipped: shard.id == 3 ? [1] : []) }
        let names = try FileManager.default.contentsOfDirectory(atPath: directory.file("parts")).sorted()
        #expect(
            names == [
                "journal.log", "lock", "manifest.json", "part-train-000000.h5", "part-train-000001.h5",
                "part-train-000002.h5", "part-train-000003.h5", "part-validation-000000.h5",
            ])
        // Part file 1 of train holds rows 8..<16 (shards 2 and 3), readable by HDF5 as a [8, 2, 1, 3] dataset.
        let file = try HDF5File.open(directory.file("parts/part-train-000001.h5"))
        let dataset = try file.root.dataset("features")
        #expect(dataset.shape == [8, 2, 1, 3])
        let values = try dataset.read(Float.self)
        #expect(Array(values[0..<6]) == Self.row(8))
        #expect(Array(values[(5 * 6)..<(6 * 6)]) == [Float](repeating: 0, count: 6), "row 13 was skipped")
        #expect(Array(values[(7 * 6)..<(8 * 6)]) == Self.row(15))
        let last = try HDF5File.open(directory.file("parts/part-train-000003.h5"))
        #expect(try last.root.dataset("features").shape == [1, 2, 1, 3], "the last range holds the split's rest")
        // Reading a shard back gives the rows of its images not skipped.
        #expect(try journal.readShard(3).features == [12, 14, 15].flatMap(Self.row))
    }

    @Test("a resume trusts the journal log: the shards it records are done, without reading a feature")
    func resumeFromLog() throws {
        let directory = try TemporaryDirectory("journal-resume")
        defer { directory.remove() }
        let path = directory.file("parts")
        do {
            let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
            for id in [0, 1, 2, 7] { try Self.store(journal, id) }
            try journal.invalidate([(1, "inputs changed")])
        }
        let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
        let finished = journal.finishedShards()
        #expect(finished.done == [0, 2, 7])
        #expect(finished.lost.isEmpty)
        #expect(journal.ignoredLogLines == 0)
    }

    @Test("a torn last line of the journal log is ignored and cut off; the next append starts a line of its own")
    func tornLogLine() throws {
        let directory = try TemporaryDirectory("journal-torn")
        defer { directory.remove() }
        let path = directory.file("parts")
        do {
            let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
            try Self.store(journal, 0)
            try Self.store(journal, 1)
        }
        // A crash in the middle of the append of shard 1's line: half of it is on disk, without its newline.
        let log = path + "/journal.log"
        var bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: log)))
        let lines = bytes.split(separator: 10)
        bytes.removeLast(lines[1].count / 2 + 1)
        try Data(bytes).write(to: URL(fileURLWithPath: log))

        do {
            let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
            #expect(journal.ignoredLogLines == 1)
            #expect(journal.finishedShards().done == [0])
            try Self.store(journal, 1)
        }
        let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
        #expect(journal.ignoredLogLines == 0)
        #expect(journal.finishedShards().done == [0, 1])
    }

    @Test("a part file that is missing or shorter than the log says loses its shards; the others stay done")
    func missingPartFile() throws {
        let directory = try TemporaryDirectory("journal-missing")
        defer { directory.remove() }
        let path = directory.file("parts")
        do {
            let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
            for id in 0..<4 { try Self.store(journal, id) }
        }
        try FileManager.default.removeItem(atPath: path + "/part-train-000001.h5")
        let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
        let finished = journal.finishedShards()
        #expect(finished.done == [0, 1])
        #expect(finished.lost.map(\.shardID) == [2, 3])
        #expect(finished.lost.allSatisfy { $0.reason.contains("part-train-000001.h5 is missing") })
    }

    @Test("verify finds a corrupted shard by its hash and names it, the part file, the offset and the hash expected")
    func verifyFindsCorruption() throws {
        let directory = try TemporaryDirectory("journal-verify")
        defer { directory.remove() }
        let path = directory.file("parts")
        let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
        for shard in journal.manifest.shards { try Self.store(journal, shard.id) }
        let record = try #require(journal.records[3])
        let handle = try #require(FileHandle(forUpdatingAtPath: path + "/" + record.location.part))
        try handle.seek(toOffset: UInt64(record.location.offset + 5))
        try handle.write(contentsOf: Data([0x7f]))
        try handle.close()

        let failures = journal.verify(Set(journal.manifest.shards.map(\.id)), threads: 4)
        #expect(failures.map(\.shardID) == [3])
        let reason = try #require(failures.first?.reason)
        #expect(reason.contains("shard 3"))
        #expect(reason.contains("part-train-000001.h5"))
        #expect(reason.contains("offset \(record.location.offset)"))
        #expect(reason.contains(String(record.sha256.prefix(16))))

        // Reading it for assembly fails the same way and withdraws its record, so that a rerun computes it.
        #expect(throws: JournalError.self) { try journal.readShard(3) }
        #expect(journal.records[3] == nil)
        #expect(journal.finishedShards().done.count == journal.manifest.shards.count - 1)
    }

    @Test("a shard stored with its sender's hash of the rows: equal to the hash of the bytes, or caught when read")
    func senderHashIsRecordedAndChecked() throws {
        let directory = try TemporaryDirectory("journal-sender-hash")
        defer { directory.remove() }
        let journal = try ShardJournal.open(
            directory: directory.file("parts"), manifest: Self.manifest(), restart: false)
        let rowBytes = 6 * 4
        for (id, skipped) in [(2, [1]), (3, [])] {
            let span = journal.manifest.shards[id]
            let values = (0..<span.count).filter { !skipped.contains($0) }.flatMap { Self.row(span.start + $0) }
            // The sender's hash of the rows as laid out, zeros for a skipped image, without laying them out.
            let given = values.withUnsafeBytes {
                ShardRows.sha256Hex($0, rowBytes: rowBytes, count: span.count, skipped: Set(skipped))
            }
            let record = try values.withUnsafeBytes {
                try journal.parts.writeShard(
                    span, splitImageCount: journal.imageCount(of: span.split), rows: $0,
                    skipped: skipped.map { ShardPart.Skipped(offset: $0, reason: "bad") },
                    inputs: Array(repeating: nil, count: span.count), sha256: given)
            }
            #expect(record.sha256 == given)
            let bytes = try journal.parts.read(record.location)
            #expect(Checksum.sha256Hex(bytes) == given, "shard \(id): the laid-out bytes hash to the sender's hash")
            try journal.commit([record])
        }
        #expect(journal.verify([2, 3], threads: 2).isEmpty)
        // A sender whose hash is not that of its rows: recorded as given, and reading the shard catches it.
        let span = journal.manifest.shards[4]
        let values = (0..<span.count).flatMap { Self.row(span.start + $0) }
        let wrong = String(repeating: "0", count: 64)
        let record = try values.withUnsafeBytes {
            try journal.parts.writeShard(
                span, splitImageCount: journal.imageCount(of: span.split), rows: $0, skipped: [],
                inputs: Array(repeating: nil, count: span.count), sha256: wrong)
        }
        try journal.commit([record])
        let failures = journal.verify([4], threads: 1)
        #expect(failures.map(\.shardID) == [4])
        #expect(failures.first?.reason.contains("checksum mismatch") == true, "\(failures)")
    }

    @Test("a journal of the former part-per-shard format is refused with the format named")
    func formerFormatRefused() throws {
        let directory = try TemporaryDirectory("journal-format")
        defer { directory.remove() }
        let path = directory.file("parts")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        try Data(#"{"formatVersion": 2, "shardSize": 4}"#.utf8).write(to: URL(fileURLWithPath: path + "/manifest.json"))
        do {
            _ = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
            Issue.record("opened a journal of format 2")
        } catch let error as JournalError {
            #expect(error.message.contains("journal format (was 2, now 3)"), "\(error.message)")
        }
    }

    @Test("the log replay reads its own lines from their bytes and any other spelling as JSON, to the same records")
    func replayReadsEverySpelling() throws {
        let directory = try TemporaryDirectory("journal-spellings")
        defer { directory.remove() }
        let path = directory.file("parts")
        var written: [Int: ShardRecord] = [:]
        do {
            let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
            written[0] = try Self.store(journal, 0)
            written[1] = try Self.store(journal, 1, skipped: [0, 2])
            // Reasons with escapes and non-ASCII text: the JSON decoder reads those lines.
            let span = journal.manifest.shards[2]
            let values = [1].flatMap { Self.row(span.start + $0) }
            let record = try values.withUnsafeBytes {
                try journal.parts.writeShard(
                    span, splitImageCount: journal.imageCount(of: span.split), rows: $0,
                    skipped: [
                        ShardPart.Skipped(offset: 0, reason: "a \"quoted\" reason\\ with a tab\t"),
                        ShardPart.Skipped(offset: 2, reason: "unlesbar: Größe 0"),
                        ShardPart.Skipped(offset: 3, reason: ""),
                    ],
                    inputs: Array(repeating: nil, count: span.count))
            }
            try journal.commit([record])
            written[2] = record
            written[3] = try Self.store(journal, 3)
            try journal.invalidate([(3, "its images changed")])
        }
        // Lines spelled otherwise than the coordinator spells them (whitespace, key order) still count.
        let record = written[0]!
        let other = """
            { "done" : {"split":"train","shard":4,"start":16,"count":4,"sha256":"\(record.sha256)","skipped":[],\
            "inputs":"\(record.inputs)","location":{"size":\(record.location.size),"part":"part-train-000002.h5",\
            "offset":\(record.location.offset)}}}
            {"invalidated":{"shard":0,"reason":"withdrawn"}}

            """
        let handle = try #require(FileHandle(forWritingAtPath: path + "/journal.log"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(other.utf8))
        try handle.close()

        let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
        #expect(journal.ignoredLogLines == 0)
        #expect(Set(journal.records.keys) == [1, 2, 4])
        #expect(journal.records[1] == written[1])
        #expect(journal.records[2] == written[2])
        #expect(
            journal.records[2]?.skipped.map(\.reason) == [
                "a \"quoted\" reason\\ with a tab\t", "unlesbar: Größe 0", "",
            ])
        #expect(
            journal.records[4]
                == ShardRecord(
                    shard: 4, split: "train", start: 16, count: 4,
                    location: PartLocation(
                        part: "part-train-000002.h5", offset: record.location.offset, size: record.location.size),
                    sha256: record.sha256, skipped: [],
                    inputs: Array(repeating: InputStamp(size: 1, modifiedNanoseconds: 2), count: 4)))
        // Every line reads as the JSON decoder reads it.
        let lines = try Data(contentsOf: URL(fileURLWithPath: path + "/journal.log")).split(separator: 10)
        var replayed: [Int: ShardRecord] = [:]
        for line in lines {
            switch try JSONDecoder().decode(JournalEvent.self, from: line) {
            case .done(let record): replayed[record.shard] = record
            case .invalidated(let shard, _): replayed[shard] = nil
            }
        }
        #expect(replayed == journal.records)
    }

    @Test("a damaged line in the middle of the log is ignored and counted; the lines after it still count")
    func damagedMiddleLine() throws {
        let directory = try TemporaryDirectory("journal-damaged")
        defer { directory.remove() }
        let path = directory.file("parts")
        do {
            let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
            for id in 0..<3 { try Self.store(journal, id) }
        }
        let log = path + "/journal.log"
        var lines = try Data(contentsOf: URL(fileURLWithPath: log)).split(separator: 10).map { Array($0) }
        // A line cut short and one with a number out of range, each followed by its newline.
        lines[1] = Array(lines[1].prefix(lines[1].count - 7))
        lines.insert(Array(#"{"invalidated":{"reason":"x","shard":99999999999999999999}}"#.utf8), at: 2)
        try Data(lines.joined(separator: [10]) + [10]).write(to: URL(fileURLWithPath: log))
        let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
        #expect(journal.ignoredLogLines == 2)
        #expect(journal.finishedShards().done == [0, 2])
    }

    @Test("a journal read ahead is used only while its files are unchanged: lines appended or cut since are read")
    func readAheadOnlyWhileUnchanged() throws {
        let directory = try TemporaryDirectory("journal-read-ahead")
        defer { directory.remove() }
        let path = directory.file("parts")
        do {
            let journal = try ShardJournal.open(directory: path, manifest: Self.manifest(), restart: false)
            for id in 0..<3 { try Self.store(journal, id) }
        }
        // Unchanged: the read-ahead state is the log's.
        let early = ShardJournal.readAhead(directory: path)
        #expect(early.recordedShards == 3)
        do {
            let journal = try ShardJournal.open(
                directory: path, manifest: Self.manifest(), restart: false, readAhead: early)
            #expect(journal.finishedShards().done == [0, 1, 2])
            // Another run appends after the read-ahead (a shard done, one withdrawn).
            try Self.store(journal, 5)
            try journal.invalidate([(1, "its images changed")])
        }
        do {
            let journal = try ShardJournal.open(
                directory: path, manifest: Self.manifest(), restart: false, readAhead: early)
            #expect(journal.finishedShards().done == [0, 2, 5], "the stale read-ahead was not used")
        }
        // A torn line appended after a read-ahead: the log is read again under the lock, the line cut off.
        let fresh = ShardJournal.readAhead(directory: path)
        let handle = try #require(FileHandle(forWritingAtPath: path + "/journal.log"))
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(#"{"done":{"count":4,"#.utf8))
        try handle.close()
        do {
            let journal = try ShardJournal.open(
                directory: path, manifest: Self.manifest(), restart: false, readAhead: fresh)
            #expect(journal.ignoredLogLines == 1)
            #expect(journal.finishedShards().done == [0, 2, 5])
        }
        // With a restart, nothing read ahead counts.
        let restarted = try ShardJournal.open(
            directory: path, manifest: Self.manifest(), restart: true,
            readAhead: ShardJournal.readAhead(directory: path))
        #expect(restarted.records.isEmpty)
    }

    @Test("a manifest's shard plan read from its bytes is what JSONDecoder reads, in any layout, edits included")
    func manifestPlanReader() throws {
        var manifest = Self.manifest()
        manifest.provenance = nil
        let pretty = JSONEncoder()
        pretty.outputFormatting = [.sortedKeys, .prettyPrinted]
        let compact = JSONEncoder()
        compact.outputFormatting = [.sortedKeys]
        for encoder in [pretty, compact] {
            let data = try encoder.encode(manifest)
            #expect(try JournalManifest.decode(data) == manifest)
            #expect(try JournalManifest.decode(data) == JSONDecoder().decode(JournalManifest.self, from: data))
        }
        // A plan edited by hand reads as edited, and a resume names the change.
        var text = String(decoding: try pretty.encode(manifest), as: UTF8.self)
        let shard = "\"count\" : 4,\n      \"id\" : 3,"
        #expect(text.contains(shard))
        text = text.replacingOccurrences(of: shard, with: "\"id\" : 3,\n      \"count\" : 3,")
        let edited = try JournalManifest.decode(Data(text.utf8))
        #expect(edited == (try JSONDecoder().decode(JournalManifest.self, from: Data(text.utf8))))
        #expect(edited.shards[3].count == 3)
        #expect(edited.changes(comparedTo: manifest) == ["shard plan or feature shape"])
        // Not JSON after the plan, or no plan: JSONDecoder's errors.
        #expect(throws: DecodingError.self) { try JournalManifest.decode(Data((text + "}").utf8)) }
        let noPlan = text.replacingOccurrences(of: "\"shards\" :", with: "\"shardz\" :")
        #expect(throws: DecodingError.self) { try JournalManifest.decode(Data(noPlan.utf8)) }
    }
}
