import Foundation
import Provenance
import Storage
import TestSupport
import Testing

/// What a resume costs at scale: a journal of JOURNAL_BENCH_IMAGES images (default 10,000,000) in shards of 32,
/// every shard logged, then the time to open it (replaying the log) and to find the finished shards (existence
/// and size of each part file). Runs only with JOURNAL_BENCH=1; prints figures, asserts nothing about time.
/// The rows themselves are not written (the part files stay sparse): a resume does not read them.
@Suite("Journal resume at scale", .enabled(if: ProcessInfo.processInfo.environment["JOURNAL_BENCH"] != nil))
struct JournalBenchmark {
    @Test("open the journal log and find the finished shards")
    func resumeFigures() throws {
        let images = Int(ProcessInfo.processInfo.environment["JOURNAL_BENCH_IMAGES"] ?? "") ?? 10_000_000
        let directory = try TemporaryDirectory("journal-bench")
        defer { directory.remove() }
        let manifest = JournalManifest(
            classNames: ["a", "b"], splits: [JournalSplit(name: "train", imageCount: images, fileListSHA256: "x")],
            weightsSHA256: "w", imageHeight: 150, imageWidth: 150, preprocessing: "caffe", interpolation: "nearest",
            layer: "block5_pool", featureShape: [4, 4, 512], shardSize: 32)
        let path = directory.file("out.h5.parts")
        var started = ContinuousClock.now
        do {
            let journal = try ShardJournal.open(directory: path, manifest: manifest, restart: true)
            var batch: [ShardRecord] = []
            for span in journal.manifest.shards {
                let location = try journal.parts.location(of: span, splitImageCount: images)
                let stamps = (0..<span.count).map {
                    InputStamp(size: 20_000 + $0, modifiedNanoseconds: 1_764_000_000_123_456_789 + Int64($0))
                }
                batch.append(
                    ShardRecord(
                        shard: span.id, split: span.split, start: span.start, count: span.count, location: location,
                        sha256: String(repeating: "ab", count: 32), skipped: [], inputs: stamps))
                if batch.count == 1000 {
                    try journal.commit(batch)
                    batch.removeAll()
                }
            }
            try journal.commit(batch)
        }
        let written = ContinuousClock.now - started
        let logBytes = (try FileManager.default.attributesOfItem(atPath: path + "/journal.log")[.size] as? Int) ?? 0
        let parts = try FileManager.default.contentsOfDirectory(atPath: path).filter { $0.hasPrefix("part-") }.count
        started = ContinuousClock.now
        let journal = try ShardJournal.open(directory: path, manifest: manifest, restart: false)
        let opened = ContinuousClock.now - started
        started = ContinuousClock.now
        let finished = journal.finishedShards()
        let checked = ContinuousClock.now - started
        print(
            "journal of \(images) images: \(journal.manifest.shards.count) shards, \(parts) part files, log "
                + "\(logBytes / 1_000_000) MB, written in \(written); open (log replay) \(opened), finished shards "
                + "(part sizes) \(checked), \(finished.done.count) done")
    }
}
