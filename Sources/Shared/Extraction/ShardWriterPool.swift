import Dispatch
import FileIntegrity
import Foundation
import Provenance
import Storage
import Synchronization

/// Stores finished shards' rows into the range part files on threads of its own, so that the coordinator's event
/// loop only schedules and moves messages: each job is a `pwrite` of one shard's rows (`PartFiles.writeShard`),
/// recorded with the SHA-256 the worker computed of them (the coordinator hashes no feature byte). A thread takes
/// every job waiting (up to `batch`), writes them, then fsyncs each part file they touched once: under load the
/// fsyncs are grouped. The loop takes the outcomes with `takeFinished()` and makes their journal log lines durable
/// in one append (one fsync for the group).
///
/// Each thread lays its shards out in a `DirectWriteBuffer` of its own, so that rows go past the page cache where
/// the range allows (`PartFiles.writeShard`); either way the fsync of the batch makes them durable.
///
/// Jobs of different shards write disjoint ranges, so any number may run at once. `submit` and `takeFinished`
/// may be called from any thread; state is under one mutex, and a semaphore counts the jobs waiting.
final class ShardWriterPool: Sendable {
    struct Job: Sendable {
        let span: ShardSpan
        let splitImageCount: Int
        /// The rows of the images not skipped, float32, as the worker sent them.
        let features: [UInt8]
        /// The worker's SHA-256 of the shard's rows as laid out in the part file (`ShardResult.rowsSHA256`).
        let sha256: String
        let skipped: [ShardPart.Skipped]
        let inputs: [InputStamp?]
        /// The worker that computed the shard, for the summary.
        let worker: String
    }

    enum Outcome: Sendable {
        case stored(ShardRecord, worker: String)
        case failed(shard: Int, reason: String)
    }

    private struct State {
        /// Jobs submitted and not yet taken by a thread.
        var queue: [Job] = []
        var finished: [Outcome] = []
        /// Jobs submitted whose outcome has not been taken yet.
        var pending = 0
        /// Feature bytes submitted and not yet written and synced, and the most there have been at once.
        var unwrittenBytes = 0
        var peakUnwrittenBytes = 0
        var stopped = false
    }

    private let parts: PartFiles
    private let state = Mutex(State())
    private let waiting = DispatchSemaphore(value: 0)
    private let threadCount: Int

    init(parts: PartFiles, threads: Int) {
        self.parts = parts
        threadCount = max(1, threads)
    }

    func start() {
        for index in 0..<threadCount {
            let thread = Thread { [self] in run() }
            thread.name = "part-writer-\(index + 1)"
            thread.start()
        }
    }

    /// Ends the threads once each has finished the job it is on; jobs not started are dropped (their shards
    /// are not in the journal log, so a rerun computes them).
    func stop() {
        state.withLock { $0.stopped = true }
        for _ in 0..<threadCount { waiting.signal() }
    }

    func submit(_ job: Job) {
        state.withLock {
            $0.queue.append(job)
            $0.pending += 1
            $0.unwrittenBytes += job.features.count
            $0.peakUnwrittenBytes = max($0.peakUnwrittenBytes, $0.unwrittenBytes)
        }
        waiting.signal()
    }

    /// Shards submitted whose outcome has not been taken.
    var pending: Int { state.withLock { $0.pending } }

    /// Feature bytes of the jobs submitted and not yet written and synced (they are held in memory until then).
    var unwrittenBytes: Int { state.withLock { $0.unwrittenBytes } }

    /// The most feature bytes submitted and not yet written there have been at once.
    var peakUnwrittenBytes: Int { state.withLock { $0.peakUnwrittenBytes } }

    /// The outcomes finished since the last call.
    func takeFinished() -> [Outcome] {
        state.withLock { state in
            let finished = state.finished
            state.finished.removeAll(keepingCapacity: true)
            state.pending -= finished.count
            return finished
        }
    }

    /// Jobs a thread takes at once (their part files are fsynced once for all of them).
    static let batch = 64

    private func run() {
        // This thread's aligned buffer for direct writes, grown to the largest shard.
        let buffer = DirectWriteBuffer()
        while true {
            waiting.wait()
            let jobs: [Job] = state.withLock { state in
                guard !state.stopped, !state.queue.isEmpty else { return [] }
                // Taken out of the queue, not just passed: a job holds its shard's features (megabytes), which
                // must go once written. The queue holds only jobs not yet started, so this moves little.
                let end = min(state.queue.count, Self.batch)
                let jobs = Array(state.queue[0..<end])
                state.queue.removeFirst(end)
                return jobs
            }
            guard !jobs.isEmpty else {
                if state.withLock({ $0.stopped }) { return }
                continue
            }
            var outcomes: [Outcome] = []
            var written: [(record: ShardRecord, worker: String)] = []
            for job in jobs {
                do {
                    let record = try job.features.withUnsafeBytes {
                        try parts.writeShard(
                            job.span, splitImageCount: job.splitImageCount, rows: $0, skipped: job.skipped,
                            inputs: job.inputs, sha256: job.sha256, sync: false, buffer: buffer)
                    }
                    written.append((record, job.worker))
                } catch {
                    outcomes.append(.failed(shard: job.span.id, reason: "\(error)"))
                }
            }
            // One fsync per part file for the whole batch; a shard counts only once its file is synced.
            var failedFiles: [String: String] = [:]
            for name in Set(written.map(\.record.location.part)) {
                do { try parts.sync(name) } catch { failedFiles[name] = "\(error)" }
            }
            for (record, worker) in written {
                if let reason = failedFiles[record.location.part] {
                    outcomes.append(.failed(shard: record.shard, reason: reason))
                } else {
                    outcomes.append(.stored(record, worker: worker))
                }
            }
            let bytes = jobs.reduce(0) { $0 + $1.features.count }
            state.withLock {
                $0.finished.append(contentsOf: outcomes)
                $0.unwrittenBytes -= bytes
            }
        }
    }
}
