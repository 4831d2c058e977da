import FileIntegrity
import Foundation
import ImageFeatures
import ImageInput
import Provenance
import Wire

/// A shard received and waiting to be computed, tagged with the session it belongs to.
struct PendingShard: Sendable {
    let session: Int
    let assignment: ShardAssignment
    let images: [[UInt8]]
}

/// A computed shard ready to be sent back.
struct ComputedShard: Sendable {
    let session: Int
    let result: ShardResult
    let features: [UInt8]
    /// Why the shard's rows could not be written into its part file (shared filesystem); the worker then leaves.
    var failure: String? = nil
}

/// The compute threads of a worker: each takes a whole shard from an inbox, computes it with an extractor of its
/// own (all sharing the job's prepared weights), and puts the result in an outbox that the I/O thread drains.
///
/// With `threads` compute threads, that many shards are computed at once, each decoding on its own thread while
/// the others compute: one worker process with N threads works like N single-threaded workers (an image's
/// bits do not depend on which thread computed it). Inbox and outbox are guarded by one condition lock; each
/// extractor is used by its own thread only. The inbox holds at most the worker's credit (threads + 1 shards),
/// so memory does not grow with the job.
final class ShardComputer: @unchecked Sendable {
    private let condition = NSCondition()
    private var inbox: [PendingShard] = []
    private var outbox: [ComputedShard] = []
    /// One extractor per compute thread, or empty when no job is set up.
    private var extractors: [FeatureExtractor] = []
    private var jobID = ""
    private var stopped = false
    private var threads: [Thread] = []
    private let threadCount: Int
    private let delay: Double

    init(threads: Int = 1, shardDelayMilliseconds: Int = 0) {
        threadCount = max(1, threads)
        delay = Double(shardDelayMilliseconds) / 1000
    }

    func start() {
        for index in 0..<threadCount {
            let thread = Thread { [self] in run(index) }
            thread.name = "shard-compute-\(index + 1)"
            thread.stackSize = 16 << 20
            threads.append(thread)
            thread.start()
        }
    }

    /// Installs the extractor for a job (and a sibling of it for every other compute thread); shards of other jobs
    /// queued before are dropped.
    func configure(jobID: String, extractor: FeatureExtractor?) {
        let extractors = extractor.map { first in [first] + (1..<threadCount).map { _ in first.sibling() } } ?? []
        condition.lock()
        self.jobID = jobID
        self.extractors = extractors
        inbox.removeAll()
        outbox.removeAll()
        condition.unlock()
    }

    func submit(_ shard: PendingShard) {
        condition.lock()
        inbox.append(shard)
        condition.signal()
        condition.unlock()
    }

    /// Results finished since the last call.
    func takeResults() -> [ComputedShard] {
        condition.lock()
        defer { condition.unlock() }
        let results = outbox
        outbox.removeAll()
        return results
    }

    /// Drops queued shards and results (the coordinator is gone or reset us).
    func abandon() {
        condition.lock()
        inbox.removeAll()
        outbox.removeAll()
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    private func run(_ index: Int) {
        while true {
            condition.lock()
            while inbox.isEmpty && !stopped { condition.wait() }
            if stopped {
                condition.unlock()
                return
            }
            let shard = inbox.removeFirst()
            let extractor = index < extractors.count ? extractors[index] : nil
            let jobID = self.jobID
            condition.unlock()
            guard let extractor, shard.assignment.jobID == jobID else { continue }
            if delay > 0 { Thread.sleep(forTimeInterval: delay) }
            let computed = compute(shard, extractor: extractor)
            condition.lock()
            if self.jobID == jobID { outbox.append(computed) }
            condition.unlock()
        }
    }

    private func compute(_ shard: PendingShard, extractor: FeatureExtractor) -> ComputedShard {
        let assignment = shard.assignment
        var inputs: [(filename: String, bytes: [UInt8])] = []
        // Reading here (shared filesystem): each image's stamp; a missing file is skipped as "missing"; a failed
        // read makes the result a report of the failure, not features (the coordinator retries the shard).
        var stamps: [InputStamp?] = []
        var missing = Set<Int>()
        var unreadable: [UnreadableImage] = []
        for (offset, filename) in assignment.filenames.enumerated() {
            if let paths = assignment.paths {
                switch ImageFile.read(paths[offset]) {
                case .read(let bytes, let stamp):
                    inputs.append((filename, bytes))
                    stamps.append(stamp)
                case .missing:
                    inputs.append((filename, []))
                    stamps.append(nil)
                    missing.insert(offset)
                case .failed(let reason):
                    unreadable.append(UnreadableImage(offset: offset, reason: reason))
                }
            } else {
                inputs.append((filename, shard.images[offset]))
            }
        }
        let count = assignment.filenames.count
        guard unreadable.isEmpty else {
            let result = ShardResult(
                jobID: assignment.jobID, shardID: assignment.shardID, attempt: assignment.attempt,
                start: assignment.start, count: count, featureCount: extractor.featureCount,
                skipped: (0..<count).map { SkippedImage(offset: $0, reason: "not computed: unreadable images") },
                unreadable: unreadable)
            return ComputedShard(session: shard.session, result: result, features: [])
        }
        let outputs = extractor.extract(inputs)
        var skipped: [SkippedImage] = []
        var features: [UInt8] = []
        features.reserveCapacity(outputs.count * extractor.featureCount * 4)
        for (offset, output) in outputs.enumerated() {
            switch output {
            case _ where missing.contains(offset):
                skipped.append(SkippedImage(offset: offset, reason: "missing"))
            case .success(let row) where row.count == extractor.featureCount:
                row.withUnsafeBytes { features.append(contentsOf: $0) }
            case .success(let row):
                skipped.append(SkippedImage(offset: offset, reason: "extractor returned \(row.count) values"))
            case .failure(let error):
                skipped.append(SkippedImage(offset: offset, reason: error.reason))
            }
        }
        var result = ShardResult(
            jobID: assignment.jobID, shardID: assignment.shardID, attempt: assignment.attempt, start: assignment.start,
            count: count, featureCount: extractor.featureCount, skipped: skipped,
            inputs: assignment.paths == nil ? nil : stamps)
        if let part = assignment.part {
            // Shared filesystem: the rows go into the part file here, every image's row (zeros for a skipped
            // one); only the range and its hash go back.
            let rowBytes = extractor.featureCount * 4
            var rows = [UInt8](repeating: 0, count: count * rowBytes)
            features.withUnsafeBytes { sent in
                rows.withUnsafeMutableBytes {
                    ShardRows.layOut(
                        sent, rowBytes: rowBytes, count: count, skipped: Set(skipped.map(\.offset)), into: $0)
                }
            }
            guard part.size == rows.count else {
                let why =
                    "shard \(assignment.shardID): the part range of \(part.size) bytes does not hold its \(count) rows"
                return ComputedShard(session: shard.session, result: result, features: [], failure: why)
            }
            do {
                let sha256 = try rows.withUnsafeBytes { try InPlaceWrite.write($0, to: part.path, at: part.offset) }
                result.written = PartRange(path: part.path, offset: part.offset, size: part.size, sha256: sha256)
            } catch {
                return ComputedShard(
                    session: shard.session, result: result, features: [],
                    failure: "cannot write shard \(assignment.shardID) into the part file: \(error)")
            }
            return ComputedShard(session: shard.session, result: result, features: [])
        }
        // Plain mode: the hash of the rows as the part file will hold them goes with them (the coordinator
        // records it without hashing).
        result.rowsSHA256 = features.withUnsafeBytes {
            ShardRows.sha256Hex(
                $0, rowBytes: extractor.featureCount * 4, count: count, skipped: Set(skipped.map(\.offset)))
        }
        return ComputedShard(session: shard.session, result: result, features: features)
    }
}
