import FileIntegrity
import Foundation
import ImageInput
import Logging
import Provenance
import Reporting
import Storage
import Wire

/// The coordinator's side of a distributed extraction: one ROUTER socket, the shard scheduler, the journal.
///
/// `run()` is the event loop; it blocks its thread, which owns the socket (one socket, one thread). Every message
/// from a peer is validated before it can touch the journal; anything malformed, oversized, unexpected or out of
/// order is logged and dropped.
final class ExtractionCoordinator {
    private struct Worker {
        struct Sent {
            var sequence: Int
            var at: Date
            /// Bytes of the shard message (image bytes, or paths).
            var bytes: Int
            /// Per image, its stamp as the coordinator read it (nil: missing); nil when the worker reads.
            var stamps: [InputStamp?]?
            /// Offsets of images that were missing when the coordinator read them.
            var missing: Set<Int>
        }
        var name: String
        /// Shards the coordinator may still send; recomputed from every status the worker reports.
        var credit = 0
        var lastHeard: Date
        var lastSent: Date
        /// Shards sent to this worker and not yet answered, by shard id.
        var assignments: [Int: Sent] = [:]
        /// Shard messages sent since the worker registered.
        var sentSequence = 0
        var welcomed = false
        /// Estimated bandwidth to this worker, bytes per second; measured from weights and shard deliveries.
        var bytesPerSecond = ExtractionCoordinator.assumedBytesPerSecond
        /// The highest shard sequence the worker has acknowledged.
        var acknowledgedSequence = 0
        /// Whether the worker has asked for shards of this job, i.e. set itself up for it.
        var acceptedJob = false
    }

    /// Refusals of the job by workers that never set themselves up for it, after which the job fails with their
    /// reason (when no worker has accepted it).
    static let refusalsBeforeGivingUp = 3

    /// The most of its own recent stalls the event loop allows for in timeouts, in worker timeouts.
    static let maxStallAllowance = 4.0
    /// Threads writing parts in plain mode: a few, for the fsyncs of several shards to overlap.
    static let writerThreads = 2
    /// Plain mode: threads reading image files ahead of dispatch, and how many shards ahead they read.
    static let prefetchThreads = 2
    static let prefetchShards = 4

    /// The bandwidth assumed to a worker before any delivery to it was measured, bytes per second.
    static let assumedBytesPerSecond = 1_000_000.0

    private let request: ExtractionRequest
    private let inputs: ExtractionInputs
    private let journal: ShardJournal
    private let logger: Logger
    private let job: JobSpec
    private let socket: WireSocket
    private let limits: WireLimits
    private var scheduler: ShardScheduler
    private var workers: [[UInt8]: Worker] = [:]
    /// The compute profile of the first worker that joined (recorded in the journal); later workers must match
    /// it (see `Hello`).
    private var computeProfile: ComputeProfile?
    private var weightsBytes: [UInt8]?
    /// Weights transfers under way (when each began) and workers waiting for one, in order.
    private var weightsSending: [[UInt8]: Date] = [:]
    private var weightsQueue: [[UInt8]] = []
    /// The identities in `weightsQueue` that still wait (membership without a scan of the queue).
    private var weightsQueued: Set<[UInt8]> = []
    /// The names of the registered workers (a name taken gets a suffix).
    private var workerNames: Set<String> = []
    /// Failed reads per image path: how many, and the last reason.
    private var readFailures: [String: (count: Int, reason: String)] = [:]
    /// Set when the job cannot go on (a journal write failed, reads kept failing, the profile differs …); the
    /// event loop tells the workers and throws it.
    private var fatal: ExtractionError?
    private let progress: ProgressSink
    private var resumedImages: Int
    /// A resume's input check, running beside the job; applied (its shards reopened) once it is over.
    private var inputCheck: InputCheck?
    /// Finished shards of the resume whose images had changed.
    private(set) var shardsChanged = 0
    private var localWorkers: LocalWorkerPool?
    /// Plain mode: the threads that write shards' rows into the part files.
    private let writers: ShardWriterPool
    /// Plain mode: the threads that read image files ahead of dispatch.
    private let prefetcher = ShardPrefetcher(
        threads: ExtractionCoordinator.prefetchThreads, capacity: 2 * ExtractionCoordinator.prefetchShards)
    /// Makes part files ahead of need, off the event loop (the range after the one a shard goes out in).
    private let partMaker = DispatchQueue(label: "part-files")
    /// Part files asked of `partMaker` (or made) so far.
    private var partsRequested = Set<String>()
    /// Shards stored and not yet in the journal log, with the worker that computed each.
    private var toCommit: [(record: ShardRecord, worker: String)] = []

    private(set) var retried = 0
    private(set) var duplicates = 0
    private(set) var computedImages = 0
    private(set) var weightsTransfers = 0
    private(set) var perWorker: [String: Int] = [:]
    private var doneImages: Int
    private var droppedMessages = 0
    /// Reasons given by workers that left without accepting the job.
    private var refusals: [String] = []
    private var anyWorkerAccepted = false
    /// Recent stalls of this event loop, seconds, allowed for in timeouts until `stallAllowanceUntil`.
    private var stallAllowance = 0.0
    private var stallAllowanceUntil = Date.distantPast
    /// When the batch of messages being handled began (nil between batches).
    private var batchStarted: Date?
    /// Plain mode: feature bytes reserved per shard out (a whole shard's rows), and the most reserved at once.
    private let resultBytesPerShard: Int
    private(set) var peakResultBytesReserved = 0
    /// Plain mode: workers with credit that got no shard because the result-bytes budget was spent.
    private var budgetWaiters = BudgetWaiters<[UInt8]>()

    init(
        request: ExtractionRequest, inputs: ExtractionInputs, journal: ShardJournal, alreadyDone: Set<Int>,
        inputCheck: InputCheck? = nil, socket: WireSocket, logger: Logger
    ) {
        self.inputCheck = inputCheck
        self.request = request
        self.inputs = inputs
        self.journal = journal
        self.logger = logger
        self.socket = socket
        progress = request.progress
        writers = ShardWriterPool(parts: journal.parts, threads: Self.writerThreads)
        scheduler = ShardScheduler(shardCount: journal.manifest.shards.count, alreadyDone: alreadyDone)
        doneImages = alreadyDone.reduce(0) { $0 + journal.manifest.shards[$1].count }
        resumedImages = doneImages
        var limits = WireLimits()
        limits.maxShardImages = max(journal.manifest.shardSize, 1)
        limits.maxFeatureBytes = journal.manifest.shardSize * inputs.featureCount * 4
        self.limits = limits
        resultBytesPerShard = request.sharedFilesystem ? 0 : limits.maxFeatureBytes
        job = JobSpec(
            jobID: UUID().uuidString, weightsSHA256: inputs.weightsSHA256, weightsSize: inputs.weightsSize,
            imageHeight: request.settings.height, imageWidth: request.settings.width,
            interpolation: request.settings.interpolation.rawValue,
            preprocessing: request.settings.preprocessing.rawValue, layer: request.layer.rawValue,
            featureCount: inputs.featureCount, sharedFilesystem: request.sharedFilesystem,
            partsDirectory: request.sharedFilesystem ? OutputCheck.resolve(journal.directory) : nil,
            heartbeatIntervalMilliseconds: Int(request.heartbeatInterval * 1000),
            peerTimeoutMilliseconds: Int(request.workerTimeout * 1000), precision: request.precision.rawValue)
    }

    func attach(_ pool: LocalWorkerPool) { localWorkers = pool }

    /// The most feature bytes received and not yet written there have been at once (plain mode).
    var peakUnwrittenBytes: Int { writers.peakUnwrittenBytes }

    /// Plain mode: feature bytes that shards out may still bring (a whole shard's per holder) plus those received
    /// and not yet written. Only `dispatch` raises it; a result moves its shard's share from the first to the
    /// second term, smaller or equal.
    private var resultBytesReserved: Int { scheduler.holdings * resultBytesPerShard + writers.unwrittenBytes }

    /// Whether one more shard may go out within `ExtractionRequest.resultBytesBudget` (always when nothing is
    /// reserved, so that a budget below one shard still lets the job advance).
    private var budgetAllowsShard: Bool {
        guard resultBytesPerShard > 0 else { return true }
        let reserved = resultBytesReserved
        return reserved == 0 || reserved + resultBytesPerShard <= request.resultBytesBudget
    }

    /// Hands shards to the workers that waited for budget, in `BudgetWaiters`' order, while it allows.
    private func serveBudgetWaiters(now: Date) {
        while budgetAllowsShard, let identity = budgetWaiters.next() {
            dispatch(to: identity, now: now)
        }
    }

    /// Runs until every shard is done; then tells every worker the job is over.
    func run() throws {
        if let refusal = limits.refusal(of: job) {
            throw ExtractionError(.badInput, "no worker would take this job: \(refusal)")
        }
        if let parts = job.partsDirectory {
            // Workers that write parts check they see this directory by this file.
            do { try AtomicFile.write(Array(job.jobID.utf8), to: parts + "/job.id") } catch {
                throw ExtractionError(.failed, "cannot write \(parts)/job.id: \(error)")
            }
        }
        writers.start()
        defer { writers.stop() }
        // No part file is still being made once the job is over (the journal may be removed next).
        defer { partMaker.sync {} }
        if let first = journal.manifest.shards.indices.first(where: { !scheduler.isDone($0) }) {
            preparePartsAhead(journal.manifest.shards[first])
            if !request.sharedFilesystem {
                prefetcher.start()
                prefetchAfter(first - 1)
            }
        }
        defer { prefetcher.stop() }
        var lastHousekeeping = Date.distantPast
        while !scheduler.isComplete || writers.pending > 0 || !toCommit.isEmpty || inputCheck != nil {
            if let fatal {
                endJob(reason: "the job failed")
                throw fatal
            }
            if let signal = request.stop?.signal {
                endJob(reason: "the coordinator was stopped by \(signalName(signal))")
                throw ExtractionError(
                    .interrupted(signal: signal),
                    "stopped by \(signalName(signal)) with \(scheduler.doneCount) of \(journal.manifest.shards.count) "
                        + "shards done; they are kept in \(journal.directory), and the same job run again resumes")
            }
            let busy = writers.pending > 0 || !toCommit.isEmpty
            if try socket.waitReadable(timeoutMilliseconds: busy ? 5 : 100) {
                var handled = 0
                let started = Date()
                batchStarted = started
                while handled < 1000, let frames = try receiveFrames() {
                    handled += 1
                    handle(frames)
                    if fatal != nil { break }
                }
                batchStarted = nil
                noteStall(since: started)
            }
            let now = Date()
            if now.timeIntervalSince(lastHousekeeping) >= 0.1 {
                lastHousekeeping = now
                try housekeeping(now: now)
            }
            commitFinished()
            serveBudgetWaiters(now: Date())
            applyInputCheck()
            reportProgress()
        }
        reportProgress()
        let end = WireMessage.end(JobEnd(jobID: job.jobID, reason: "all shards are done"))
        for identity in workers.keys { send(end, to: identity) }
        try farewell(end)
    }

    /// Tells every worker the job is over (they stop computing its shards).
    private func endJob(reason: String) {
        let end = WireMessage.end(JobEnd(jobID: job.jobID, reason: reason))
        for identity in workers.keys { send(end, to: identity) }
    }

    /// Images done of all, the workers connected and the shards handed out again, to `request.progress`.
    private func reportProgress() {
        progress.report(
            ProgressReport(
                task: "extract", done: doneImages, total: inputs.imageCount, unit: "images",
                alreadyDone: resumedImages,
                fields: [
                    ProgressField("workers", .int(workers.count)),
                    ProgressField("shards_retried", label: "retried", .int(retried)),
                ]))
    }

    /// After the job: answers every message with `end` for a short while, so that a worker whose `end` was lost
    /// (a connection reset) still learns that the job is over instead of waiting to give up.
    private func farewell(_ end: WireMessage) throws {
        let remote = !request.bindEndpoints.isEmpty
        let deadline = Date().addingTimeInterval(remote ? 2 * request.heartbeatInterval + 0.5 : 1)
        let frames = WireCodec.encode(end)
        while Date() < deadline {
            if !remote, let pool = localWorkers, pool.runningCount == 0 { return }
            guard try socket.waitReadable(timeoutMilliseconds: 50) else { continue }
            while let message = try? socket.receive(maxFrames: limits.maxShardImages + 2) {
                if message.count >= 2 { try? socket.send([message[0]] + frames) }
            }
        }
    }

    private func receiveFrames() throws -> [[UInt8]]? {
        do {
            return try socket.receive(maxFrames: limits.maxShardImages + 2)
        } catch let error as WireError where error.reason == .oversized {
            drop("a message with too many frames")
            return []
        }
    }

    // MARK: - Messages

    private func handle(_ frames: [[UInt8]]) {
        guard frames.count >= 2 else {
            if !frames.isEmpty { drop("a message without payload") }
            return
        }
        let identity = frames[0]
        let message: WireMessage
        do {
            message = try WireCodec.decode(Array(frames.dropFirst()), limits: limits)
        } catch let error as WireError {
            if case .protocolMismatch(let peerVersion) = error.reason {
                let reason =
                    "protocol version mismatch: the coordinator speaks version \(WireCodec.protocolVersion), the "
                    + "worker speaks version \(peerVersion); run the same build of bottleneck on both sides"
                logger.error("refusing a worker: \(reason)")
                send(.reject(Rejection(reason: reason)), to: identity)
            } else {
                drop(error.message)
            }
            return
        } catch {
            drop("\(error)")
            return
        }
        let now = Date()
        if case .hello(let hello) = message {
            register(identity, hello: hello, now: now)
            return
        }
        guard workers[identity] != nil else {
            // A peer the coordinator does not know (declared dead, or from before a restart): its results are
            // ignored and it is asked to register again.
            if case .result(let result, _) = message {
                logger.info("ignoring a late result for shard \(result.shardID) from an unregistered worker")
                duplicates += 1
            }
            send(.reset(Reset(reason: "unknown worker; send hello")), to: identity)
            return
        }
        workers[identity]!.lastHeard = now
        switch message {
        case .request(let shardRequest):
            guard shardRequest.jobID == job.jobID else { return drop("a request for another job") }
            workers[identity]!.acceptedJob = true
            anyWorkerAccepted = true
            if let began = weightsSending.removeValue(forKey: identity) {
                // The worker is set up: its weights arrived. The transfer measures the link.
                let seconds = max(now.timeIntervalSince(began), 1e-3)
                workers[identity]!.bytesPerSecond = max(Double(job.weightsSize) / seconds, 10_000)
                pumpWeights(now: now)
            }
            reconcile(identity, status: shardRequest.status, now: now)
            dispatch(to: identity, now: now)
        case .needWeights(let weightsRequest):
            guard weightsRequest.sha256 == job.weightsSHA256 else { return drop("a request for unknown weights") }
            requestWeights(identity, now: now)
        case .result(let result, let features):
            accept(result, features: features, from: identity, now: now)
        case .heartbeat(let heartbeat):
            if let status = heartbeat.status { reconcile(identity, status: status, now: now) }
        case .goodbye(let goodbye):
            logger.warning("worker \(workers[identity]!.name) left: \(goodbye.reason)")
            if !workers[identity]!.acceptedJob { refusals.append(goodbye.reason) }
            remove(identity, why: "left")
            if !anyWorkerAccepted, refusals.count >= Self.refusalsBeforeGivingUp {
                fatal = ExtractionError(
                    .failed, "no worker can take this job (\(refusals.count) refused it): \(goodbye.reason)")
            }
        case .hello, .welcome, .shard, .weights, .end, .reject, .reset, .tuneWeights, .tuneChunk, .tuneGradient:
            drop("a \(message.kind) message, which only a coordinator sends")
        }
    }

    private func register(_ identity: [UInt8], hello: Hello, now: Date) {
        if let existing = workers[identity] {
            // A repeated hello (the worker's welcome was late or lost): welcome it again; its status, which
            // follows, reconciles what it holds.
            logger.debug("worker \(existing.name) said hello again")
        } else {
            guard let profile = hello.computeProfile else {
                let reason =
                    "the worker \(hello.workerName) did not report its compute profile (kernel set, grouping, "
                    + "precision, build and library versions), which this coordinator records with the features; "
                    + "run the same build of bottleneck on both sides"
                logger.warning("refusing a worker: \(reason)")
                send(.reject(Rejection(reason: reason)), to: identity)
                return
            }
            guard profile.precision == request.precision.rawValue else {
                let reason =
                    "this job computes in \(request.precision.rawValue), the worker \(hello.workerName) in "
                    + "\(profile.precision): precision (job \(request.precision.rawValue), worker \(profile.precision)); "
                    + "start the worker with the job's precision setting"
                logger.warning("refusing a worker: \(reason)")
                send(.reject(Rejection(reason: reason)), to: identity)
                if request.bindEndpoints.isEmpty { fatal = ExtractionError(.failed, reason) }
                return
            }
            if let expected = computeProfile {
                let differences = expected.differences(from: profile)
                guard differences.isEmpty else {
                    let reason =
                        "this job's features are computed with \(expected.summary), this worker's differ: "
                        + differences.joined(separator: "; ")
                        + "; the output would depend on which worker computed an image (run the same build with "
                        + "BOTTLENECK_OPENBLAS_CORETYPE set the same on every worker)"
                    logger.warning("refusing worker \(hello.workerName): \(reason)")
                    send(.reject(Rejection(reason: reason)), to: identity)
                    return
                }
            } else {
                do {
                    try journal.record(profile.withHDF5OfThisProcess)
                } catch let error as JournalError {
                    logger.error("refusing worker \(hello.workerName): \(error.message)")
                    send(.reject(Rejection(reason: error.message)), to: identity)
                    if case .settingsChanged = error.reason {
                        // Only local workers: they all compute alike, so no worker can continue this journal.
                        if request.bindEndpoints.isEmpty { fatal = ExtractionError(.resumeRefused, error.message) }
                    } else {
                        fatal = ExtractionError(.failed, error.message)
                    }
                    return
                } catch {
                    fatal = ExtractionError(.failed, "\(error)")
                    return
                }
                computeProfile = profile
                logger.info("compute profile: \(profile.summary), build \(profile.buildVersion)")
            }
            var name = hello.workerName
            if workerNames.contains(name) { name += "#\(workers.count + 1)" }
            workers[identity] = Worker(name: name, lastHeard: now, lastSent: now)
            workerNames.insert(name)
            logger.info("worker \(name) joined (pid \(hello.pid), \(hello.threads) threads)")
        }
        workers[identity]!.welcomed = true
        send(.welcome(Welcome(job: job)), to: identity)
    }

    /// Queues a worker's request for the weights; at most `maxWeightsTransfers` go out at a time.
    private func requestWeights(_ identity: [UInt8], now: Date) {
        // A repeated request while the transfer is under way or queued changes nothing.
        guard weightsSending[identity] == nil, !weightsQueued.contains(identity) else { return }
        weightsQueue.append(identity)
        weightsQueued.insert(identity)
        if weightsSending.count >= max(1, request.maxWeightsTransfers) {
            let name = workers[identity]?.name ?? "?"
            logger.info(
                "\(name) waits for the weights behind \(weightsQueue.count - 1) others (\(weightsSending.count) under way)"
            )
        }
        pumpWeights(now: now)
    }

    /// Starts queued weights transfers while fewer than `maxWeightsTransfers` are under way.
    private func pumpWeights(now: Date) {
        while weightsSending.count < max(1, request.maxWeightsTransfers), !weightsQueue.isEmpty {
            let identity = weightsQueue.removeFirst()
            guard weightsQueued.remove(identity) != nil, workers[identity] != nil else { continue }
            weightsSending[identity] = now
            if !sendWeights(to: identity) { weightsSending[identity] = nil }
        }
    }

    /// How long a weights transfer to `identity` may take before its slot is given to the next: the worker
    /// timeout plus the transfer at the link's estimated bandwidth, twice over.
    private func weightsTransferTimeout(_ identity: [UInt8]) -> Double {
        let bandwidth = workers[identity]?.bytesPerSecond ?? Self.assumedBytesPerSecond
        return request.workerTimeout + 2 * Double(job.weightsSize) / bandwidth
    }

    @discardableResult
    private func sendWeights(to identity: [UInt8]) -> Bool {
        if weightsBytes == nil {
            guard let data = FileManager.default.contents(atPath: request.weightsPath),
                Checksum.sha256Hex(data) == job.weightsSHA256
            else {
                logger.error("the weights file \(request.weightsPath) changed during the job; cannot send it")
                return false
            }
            weightsBytes = Array(data)
        }
        logger.info("sending weights (\(job.weightsSize) bytes) to \(workers[identity]?.name ?? "?")")
        weightsTransfers += 1
        return send(
            .weights(WeightsTransfer(sha256: job.weightsSHA256, size: weightsBytes!.count), bytes: weightsBytes!),
            to: identity)
    }

    private func accept(_ result: ShardResult, features: [UInt8], from identity: [UInt8], now: Date) {
        let name = workers[identity]!.name
        let shards = journal.manifest.shards
        guard result.jobID == job.jobID, result.shardID < shards.count else {
            return drop("a result for another job or an unknown shard from \(name)")
        }
        let span = shards[result.shardID]
        // A result that cannot be stored: the shard goes back to the scheduler, to be computed again.
        func dropResult(_ why: String) {
            scheduler.release(identity, shard: result.shardID)
            workers[identity]!.assignments[result.shardID] = nil
            drop("a result for shard \(result.shardID) from \(name) \(why)")
        }
        guard result.start == span.start, result.count == span.count, result.featureCount == inputs.featureCount
        else { return dropResult("that does not match the plan") }
        if scheduler.isDone(result.shardID) {
            duplicates += 1
            workers[identity]!.assignments[result.shardID] = nil
            logger.debug("dropping a duplicate result for shard \(result.shardID) from \(name)")
            return
        }
        guard scheduler.holds(identity, shard: result.shardID, attempt: result.attempt) else {
            duplicates += 1
            return drop(
                "a result for shard \(result.shardID) that \(name) was not assigned (attempt \(result.attempt))")
        }
        let sent = workers[identity]!.assignments[result.shardID]
        let entries = inputs.splits.first { $0.name == span.split }!.entries
        if let unreadable = result.unreadable, !unreadable.isEmpty {
            // Not the shard's features: the worker could not read some images. Another try, elsewhere if possible.
            scheduler.release(identity, shard: result.shardID)
            workers[identity]!.assignments[result.shardID] = nil
            readFailed(
                shard: result.shardID,
                failures: unreadable.filter { $0.offset < span.count }.map {
                    (entries[span.start + $0.offset].path, "\($0.reason) (on \(name))")
                }, on: identity, now: now)
            return
        }
        let stamps = sent?.stamps ?? result.inputs ?? Array(repeating: nil, count: span.count)
        let missing = sent?.missing ?? []
        let skipped = result.skipped.map {
            ShardPart.Skipped(offset: $0.offset, reason: missing.contains($0.offset) ? "missing" : $0.reason)
        }
        let skippedOffsets = Set(skipped.map(\.offset))
        if let written = result.written {
            // Shared filesystem: the worker wrote the rows into the part file; only the range and hash came.
            let expected: PartLocation
            do {
                expected = try journal.parts.location(of: span, splitImageCount: journal.imageCount(of: span.split))
            } catch {
                fatal = ExtractionError(.failed, "cannot store shard \(result.shardID): \(error)")
                return
            }
            guard written.path == journal.parts.path(expected.part), written.offset == expected.offset,
                written.size == expected.size, let sha256 = written.sha256
            else { return dropResult("written to another part range") }
            toCommit.append(
                (
                    ShardRecord(
                        shard: span.id, split: span.split, start: span.start, count: span.count, location: expected,
                        sha256: sha256, skipped: skipped, inputs: stamps), name
                ))
        } else {
            guard skippedOffsets.count == skipped.count, skippedOffsets.allSatisfy({ $0 >= 0 && $0 < span.count }),
                features.count == (span.count - skipped.count) * inputs.featureCount * 4
            else { return dropResult("whose features do not match its images") }
            guard let sha256 = result.rowsSHA256, sha256.utf8.count == 64 else {
                return dropResult("without the SHA-256 of its rows")
            }
            // Plain mode: the rows go to the writer threads; the shard is logged when they are on disk, with the
            // worker's hash of them (checked whenever the part is read).
            writers.submit(
                ShardWriterPool.Job(
                    span: span, splitImageCount: journal.imageCount(of: span.split), features: features,
                    sha256: sha256, skipped: skipped, inputs: stamps, worker: name))
        }
        // Done for scheduling from now on (no copy is handed out again); it counts as done once its journal log
        // line is durable (`commitFinished`). A write that fails ends the job.
        for other in scheduler.complete(result.shardID) where other != identity {
            // The copies elsewhere are moot; their results will be dropped as duplicates.
            logger.debug("shard \(result.shardID) done; \(workers[other]?.name ?? "?") computes a moot copy")
        }
        workers[identity]!.assignments[result.shardID] = nil
    }

    /// Once the resume's input check is over: withdraws the records of the finished shards whose images changed
    /// (a journal log line each) and hands those shards out again.
    private func applyInputCheck() {
        guard let check = inputCheck, let changed = check.changed else { return }
        inputCheck = nil
        guard !changed.isEmpty else { return }
        do {
            try journal.invalidate(changed.sorted().map { ($0, "its images changed") })
        } catch {
            if fatal == nil { fatal = ExtractionError(.failed, "\(error)") }
            return
        }
        for shard in changed.sorted() {
            scheduler.reopen(shard)
            doneImages -= journal.manifest.shards[shard].count
            resumedImages -= journal.manifest.shards[shard].count
        }
        shardsChanged = changed.count
        let note = changedInputsNote(changed.count)
        logger.notice("\(note)")
        progress.note(note)
    }

    /// Makes the journal log lines of the shards stored since the last call durable in one append (one fsync),
    /// then counts them done. A failed write or append ends the job; what is not logged is computed by a rerun.
    private func commitFinished() {
        for outcome in writers.takeFinished() {
            switch outcome {
            case .stored(let record, let worker): toCommit.append((record, worker))
            case .failed(let shard, let reason):
                // A part that cannot be written (disk full, quota, I/O error, read-only) would fail again on every
                // retry: stop the job. The shards logged so far stay, so a rerun resumes once there is room.
                if fatal == nil { fatal = ExtractionError(.failed, "cannot store shard \(shard): \(reason)") }
            }
        }
        guard !toCommit.isEmpty else { return }
        let committing = toCommit
        toCommit.removeAll()
        do {
            try journal.commit(committing.map(\.record))
        } catch {
            if fatal == nil {
                fatal = ExtractionError(.failed, "cannot log shards \(committing.map(\.record.shard)): \(error)")
            }
            return
        }
        for (record, worker) in committing {
            doneImages += record.count
            computedImages += record.count
            perWorker[worker, default: 0] += record.count
            let entries = inputs.splits.first { $0.name == record.split }!.entries
            for skipped in record.skipped {
                logger.warning("skipping \(entries[record.start + skipped.offset].filename): \(skipped.reason)")
            }
        }
    }

    /// Counts failed reads of a shard's images (the shard already waits again); postpones its retry (for
    /// `worker` only, when a worker read), and fails the job once an image has failed `maxReadAttempts` times.
    private func readFailed(shard: Int, failures: [(path: String, reason: String)], on worker: [UInt8]?, now: Date) {
        var attempts = 0
        for (path, reason) in failures {
            let count = (readFailures[path]?.count ?? 0) + 1
            readFailures[path] = (count, reason)
            attempts = max(attempts, count)
            logger.warning("cannot read \(path) (attempt \(count) of \(request.maxReadAttempts)): \(reason)")
        }
        let exhausted = readFailures.filter { $0.value.count >= request.maxReadAttempts }.sorted { $0.key < $1.key }
        if !exhausted.isEmpty {
            fatal = ExtractionError(
                .failed,
                "cannot read \(exhausted.count) image file(s), \(request.maxReadAttempts) attempts each (an I/O "
                    + "error, not a bad image; the finished shards are kept for a rerun): "
                    + exhausted.map { "\($0.key): \($0.value.reason)" }.joined(separator: "; "))
            return
        }
        retried += 1
        scheduler.postpone(shard, until: now.addingTimeInterval(0.5 * Double(attempts)), for: worker)
    }

    private func dispatch(to identity: [UInt8], now: Date) {
        while fatal == nil, request.stop?.signal == nil, let worker = workers[identity], worker.credit > 0 {
            if resultBytesPerShard > 0 {
                let busy = !worker.assignments.isEmpty
                guard budgetAllowsShard, budgetWaiters.mayServe(busy: busy) else {
                    budgetWaiters.wait(identity, busy: busy)
                    return
                }
            }
            guard let (shard, attempt) = scheduler.next(for: identity, now: now) else { return }
            if resultBytesPerShard > 0 {
                peakResultBytesReserved = max(peakResultBytesReserved, resultBytesReserved)
            }
            let span = journal.manifest.shards[shard]
            preparePartsAhead(span)
            let entries = inputs.splits.first { $0.name == span.split }!.entries[span.start..<(span.start + span.count)]
            let sequence = worker.sentSequence + 1
            let assignment = ShardAssignment(
                jobID: job.jobID, shardID: shard, attempt: attempt, sequence: sequence, start: span.start,
                filenames: entries.map(\.filename), paths: request.sharedFilesystem ? entries.map(\.path) : nil,
                part: partRange(for: span))
            if request.sharedFilesystem && assignment.part == nil {
                scheduler.release(identity, shard: shard)
                return
            }
            var images: [[UInt8]] = []
            var stamps: [InputStamp?]?
            var missing = Set<Int>()
            if !request.sharedFilesystem {
                // The coordinator reads (ahead, on the prefetch threads, when it could): it records each image's
                // stamp, and tells a failed read from a missing file.
                let read = prefetcher.take(shard) ?? ShardPrefetcher.read(entries.map(\.path))
                if let failure = read.failure {
                    scheduler.release(identity, shard: shard)
                    readFailed(shard: shard, failures: [failure], on: nil, now: now)
                    return
                }
                images = read.images
                missing = read.missing
                prefetchAfter(shard)
                stamps = read.stamps
            }
            let bytes = images.reduce(0) { $0 + $1.count } + assignment.filenames.reduce(0) { $0 + $1.utf8.count * 2 }
            workers[identity]!.credit -= 1
            workers[identity]!.sentSequence = sequence
            workers[identity]!.assignments[shard] = Worker.Sent(
                sequence: sequence, at: now, bytes: bytes, stamps: stamps, missing: missing)
            if !send(.shard(assignment, images: images), to: identity) { return }
        }
    }

    /// Asks for the part files of `span`'s range and of the next range of its split to be made in the background,
    /// so that neither the event loop (shared filesystem) nor a writer thread waits for one. A failure there is
    /// met again, and reported, where the file is needed.
    private func preparePartsAhead(_ span: ShardSpan) {
        let rows = journal.manifest.rowsPerPart
        let count = journal.imageCount(of: span.split)
        let rangeStart = span.start / rows * rows
        for start in [rangeStart, rangeStart + rows] where start < count {
            let name = journal.parts.name(split: span.split, row: start)
            guard partsRequested.insert(name).inserted else { continue }
            let parts = journal.parts
            let first = ShardSpan(id: -1, split: span.split, start: start, count: 1)
            partMaker.async { _ = try? parts.prepare(first, splitImageCount: count) }
        }
    }

    /// Plain mode: asks for the files of the shards after `shard` in its split to be read ahead.
    private func prefetchAfter(_ shard: Int) {
        let shards = journal.manifest.shards
        for next in (shard + 1)..<min(shards.count, shard + 1 + Self.prefetchShards) where !scheduler.isDone(next) {
            let span = shards[next]
            let entries = inputs.splits.first { $0.name == span.split }!.entries
            prefetcher.want(next, paths: entries[span.start..<(span.start + span.count)].map(\.path))
        }
    }

    /// Shared filesystem: the part range a worker writes `span`'s rows into, making its part file first when needed
    /// (a failure to make it ends the job, and returns nil). Nil in plain mode.
    private func partRange(for span: ShardSpan) -> PartRange? {
        guard request.sharedFilesystem else { return nil }
        do {
            let location = try journal.parts.location(of: span, splitImageCount: journal.imageCount(of: span.split))
            return PartRange(path: journal.parts.path(location.part), offset: location.offset, size: location.size)
        } catch {
            fatal = ExtractionError(.failed, "cannot prepare shard \(span.id): \(error)")
            return nil
        }
    }

    /// Brings the coordinator's view of a worker in line with the status it reports: shards it should hold but
    /// does not (a message lost to a connection reset) go back to the queue; its credit becomes what it asks for
    /// minus the shards still on their way to it.
    private func reconcile(_ identity: [UInt8], status: WorkerStatus, now: Date) {
        guard var worker = workers[identity] else { return }
        guard status.lastShardSequence <= worker.sentSequence else {
            return drop("a status from \(worker.name) acknowledging shards never sent")
        }
        let held = Set(status.held)
        for (_, sent) in worker.assignments
        where sent.sequence > worker.acknowledgedSequence && sent.sequence <= status.lastShardSequence
            && sent.bytes >= 1 << 16
        {
            // A delivery of some size measures the link; the status came later, so this errs on the slow side.
            let seconds = max(now.timeIntervalSince(sent.at), 1e-3)
            worker.bytesPerSecond = max(10_000, (worker.bytesPerSecond + Double(sent.bytes) / seconds) / 2)
        }
        worker.acknowledgedSequence = max(worker.acknowledgedSequence, status.lastShardSequence)
        for (shard, sent) in worker.assignments {
            let delivered = sent.sequence <= status.lastShardSequence
            let lost =
                delivered
                ? !held.contains(shard) : now.timeIntervalSince(sent.at) > inTransitTimeout(sent, worker, now: now)
            guard lost else { continue }
            worker.assignments[shard] = nil
            if !scheduler.isDone(shard) {
                logger.warning(
                    "shard \(shard) \(delivered ? "result" : "assignment") to \(worker.name) was lost in transit; reassigning"
                )
                retried += 1
            }
            scheduler.release(identity, shard: shard)
        }
        let inTransit = worker.assignments.values.filter { $0.sequence > status.lastShardSequence }.count
        worker.credit = max(0, status.free - inTransit)
        workers[identity] = worker
    }

    /// Records a stall of this event loop (a batch of messages took over a second: fsyncs on a busy disk, a
    /// backlog of large results): for a worker timeout after it, the statuses and silences it caused are not
    /// taken for lost shards or dead workers (messages queued behind the batch are as old as it is long, and a
    /// status queued then predates the shards sent just before).
    private func noteStall(since started: Date) {
        let now = Date()
        let length = now.timeIntervalSince(started)
        guard length > 1 else { return }
        logger.debug("the event loop spent \(String(format: "%.1f", length)) s on one batch of messages")
        // Capped, so that a dead worker is still found while this loop stays overloaded (its shards are also
        // copied to idle workers near the end).
        stallAllowance = min(
            now < stallAllowanceUntil ? stallAllowance + length : length, Self.maxStallAllowance * request.workerTimeout
        )
        stallAllowanceUntil = now.addingTimeInterval(request.workerTimeout + stallAllowance)
    }

    /// Seconds by which a message handled now may be older than it looks: the current batch's time so far plus
    /// this loop's recent stalls (those older than a worker timeout no longer count).
    private func allowance(at now: Date) -> Double {
        (batchStarted.map { now.timeIntervalSince($0) } ?? 0) + (now < stallAllowanceUntil ? stallAllowance : 0)
    }

    /// How long an unacknowledged shard may be on its way before it counts as lost: the worker timeout plus the
    /// time to deliver it and everything queued ahead of it to that worker at the link's estimated bandwidth, plus
    /// this loop's recent stalls.
    private func inTransitTimeout(_ sent: Worker.Sent, _ worker: Worker, now: Date) -> Double {
        let queued = worker.assignments.values.filter { $0.sequence <= sent.sequence }.reduce(0) { $0 + $1.bytes }
        return request.workerTimeout + Double(queued) / max(worker.bytesPerSecond, 1) + allowance(at: now)
    }

    // MARK: - Liveness

    private func housekeeping(now: Date) throws {
        for (identity, began) in weightsSending where now.timeIntervalSince(began) > weightsTransferTimeout(identity) {
            logger.warning("the weights transfer to \(workers[identity]?.name ?? "?") timed out; next in line")
            weightsSending[identity] = nil
        }
        pumpWeights(now: now)
        for (identity, worker) in workers {
            let silent = now.timeIntervalSince(worker.lastHeard)
            if silent > request.workerTimeout + allowance(at: now) {
                logger.warning(
                    "worker \(worker.name) silent for \(String(format: "%.1f", silent)) s; reassigning its shards")
                remove(identity, why: "timed out")
            } else if now.timeIntervalSince(worker.lastSent) >= request.heartbeatInterval {
                send(.heartbeat(Heartbeat()), to: identity)
            }
        }
        if let pool = localWorkers, !pool.replaceExited(), workers.isEmpty, pool.runningCount == 0,
            request.bindEndpoints.isEmpty
        {
            throw ExtractionError(
                .failed,
                "every local worker has exited (last status \(pool.lastExitStatus)) and no remote worker can join; "
                    + "see the workers' messages above")
        }
        // Credit left over after a dispatch found nothing (all shards in flight) is used when shards come back.
        for (identity, worker) in workers where worker.credit > 0 { dispatch(to: identity, now: now) }
    }

    private func remove(_ identity: [UInt8], why: String) {
        guard let worker = workers.removeValue(forKey: identity) else { return }
        workerNames.remove(worker.name)
        weightsSending[identity] = nil
        weightsQueued.remove(identity)  // its entry in `weightsQueue` is skipped when it comes up
        let requeued = scheduler.withdraw(identity)
        retried += requeued.count
        if !requeued.isEmpty {
            logger.warning(
                "worker \(worker.name) \(why); shards \(requeued.map(String.init).joined(separator: ", ")) go to others"
            )
        }
    }

    @discardableResult
    private func send(_ message: WireMessage, to identity: [UInt8]) -> Bool {
        do {
            try socket.send([identity] + WireCodec.encode(message))
            if workers[identity] != nil { workers[identity]!.lastSent = Date() }
            return true
        } catch let error as WireError {
            if workers[identity] != nil {
                logger.warning("cannot send \(message.kind) to \(workers[identity]!.name): \(error.message)")
                remove(identity, why: "is unreachable")
            }
            return false
        } catch {
            return false
        }
    }

    private func drop(_ what: String) {
        droppedMessages += 1
        if droppedMessages <= 20 || droppedMessages % 1000 == 0 {
            logger.warning("dropping \(what) (\(droppedMessages) dropped so far)")
        }
    }
}

/// The usual name of a signal number, e.g. "SIGINT".
func signalName(_ number: Int32) -> String {
    switch number {
    case 2: "SIGINT"
    case 15: "SIGTERM"
    case 1: "SIGHUP"
    default: "signal \(number)"
    }
}
