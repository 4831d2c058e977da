import FileIntegrity
import Foundation
import Logging
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
        /// Whether the worker has asked for shards of this job, i.e. set itself up for it.
        var acceptedJob = false
    }

    /// Refusals of the job by workers that never set themselves up for it, after which the job fails with their
    /// reason (when no worker has accepted it).
    static let refusalsBeforeGivingUp = 3

    private let request: ExtractionRequest
    private let inputs: ExtractionInputs
    private let journal: ShardJournal
    private let logger: Logger
    private let job: JobSpec
    private let socket: WireSocket
    private let limits: WireLimits
    private var scheduler: ShardScheduler
    private var workers: [[UInt8]: Worker] = [:]
    /// The compute profile of the first worker that joined; later workers must match it (see `Hello`).
    private var computeProfile: String?
    private var weightsBytes: [UInt8]?
    private let progress: ProgressSink
    private let resumedImages: Int
    private var localWorkers: LocalWorkerPool?

    private(set) var retried = 0
    private(set) var duplicates = 0
    private(set) var computedImages = 0
    private(set) var perWorker: [String: Int] = [:]
    private var doneImages: Int
    private var droppedMessages = 0
    /// Reasons given by workers that left without accepting the job.
    private var refusals: [String] = []
    private var anyWorkerAccepted = false
    /// A failure found while handling a message (a journal write), thrown by the event loop.
    private var fatal: (any Error)?
    /// Images of a shard that the coordinator could not read when it sent the shard (removed during the run),
    /// by shard and offset: their skip reason says so instead of the worker's ("empty file").
    private var unreadable: [Int: [Int: String]] = [:]

    init(
        request: ExtractionRequest, inputs: ExtractionInputs, journal: ShardJournal, alreadyDone: Set<Int>,
        socket: WireSocket, logger: Logger
    ) {
        self.request = request
        self.inputs = inputs
        self.journal = journal
        self.logger = logger
        self.socket = socket
        progress = request.progress
        scheduler = ShardScheduler(shardCount: journal.manifest.shards.count, alreadyDone: alreadyDone)
        doneImages = alreadyDone.reduce(0) { $0 + journal.manifest.shards[$1].count }
        resumedImages = doneImages
        var limits = WireLimits()
        limits.maxShardImages = max(journal.manifest.shardSize, 1)
        limits.maxFeatureBytes = journal.manifest.shardSize * inputs.featureCount * 4
        self.limits = limits
        job = JobSpec(
            jobID: UUID().uuidString, weightsSHA256: inputs.weightsSHA256, weightsSize: inputs.weightsSize,
            imageHeight: request.settings.height, imageWidth: request.settings.width,
            interpolation: request.settings.interpolation.rawValue,
            preprocessing: request.settings.preprocessing.rawValue, layer: request.layer.rawValue,
            featureCount: inputs.featureCount, sharedFilesystem: request.sharedFilesystem,
            heartbeatIntervalMilliseconds: Int(request.heartbeatInterval * 1000),
            peerTimeoutMilliseconds: Int(request.workerTimeout * 1000))
    }

    func attach(_ pool: LocalWorkerPool) { localWorkers = pool }

    /// Runs until every shard is done; then tells every worker the job is over.
    func run() throws {
        if let refusal = limits.refusal(of: job) {
            throw ExtractionError(.badInput, "no worker would take this job: \(refusal)")
        }
        var lastHousekeeping = Date.distantPast
        while !scheduler.isComplete {
            if try socket.waitReadable(timeoutMilliseconds: 100) {
                var handled = 0
                while handled < 1000, let frames = try receiveFrames() {
                    handled += 1
                    handle(frames)
                    if let fatal { throw fatal }
                }
            }
            let now = Date()
            if now.timeIntervalSince(lastHousekeeping) >= 0.1 {
                lastHousekeeping = now
                try housekeeping(now: now)
            }
            reportProgress()
        }
        reportProgress()
        let end = WireMessage.end(JobEnd(jobID: job.jobID, reason: "all shards are done"))
        for identity in workers.keys { send(end, to: identity) }
        try farewell(end)
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
            reconcile(identity, status: shardRequest.status, now: now)
            dispatch(to: identity, now: now)
        case .needWeights(let weightsRequest):
            guard weightsRequest.sha256 == job.weightsSHA256 else { return drop("a request for unknown weights") }
            sendWeights(to: identity)
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
        case .hello, .welcome, .shard, .weights, .end, .reject, .reset:
            drop("a \(message.kind) message, which only a coordinator sends")
        }
    }

    private func register(_ identity: [UInt8], hello: Hello, now: Date) {
        if let existing = workers[identity] {
            // A repeated hello (the worker's welcome was late or lost): welcome it again; its status, which
            // follows, reconciles what it holds.
            logger.debug("worker \(existing.name) said hello again")
        } else {
            if let profile = hello.computeProfile {
                if let expected = computeProfile, profile != expected {
                    logger.warning(
                        "refusing worker \(hello.workerName): it computes with \(profile), this job with \(expected)")
                    send(
                        .reject(
                            Rejection(
                                reason:
                                    "this job's features are computed with \(expected), this worker's with \(profile); "
                                    + "the output would depend on which worker computed an image (set "
                                    + "BOTTLENECK_OPENBLAS_CORETYPE the same on every worker)")),
                        to: identity)
                    return
                }
                computeProfile = profile
            }
            var name = hello.workerName
            if workers.values.contains(where: { $0.name == name }) { name += "#\(workers.count + 1)" }
            workers[identity] = Worker(name: name, lastHeard: now, lastSent: now)
            logger.info("worker \(name) joined (pid \(hello.pid), \(hello.threads) threads)")
        }
        workers[identity]!.welcomed = true
        send(.welcome(Welcome(job: job)), to: identity)
    }

    private func sendWeights(to identity: [UInt8]) {
        if weightsBytes == nil {
            guard let data = FileManager.default.contents(atPath: request.weightsPath),
                Checksum.sha256Hex(data) == job.weightsSHA256
            else {
                logger.error("the weights file \(request.weightsPath) changed during the job; cannot send it")
                return
            }
            weightsBytes = Array(data)
        }
        logger.info("sending weights (\(job.weightsSize) bytes) to \(workers[identity]?.name ?? "?")")
        send(
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
        guard result.start == span.start, result.count == span.count, result.featureCount == inputs.featureCount
        else {
            scheduler.release(identity, shard: result.shardID)
            workers[identity]!.assignments[result.shardID] = nil
            return drop("a result for shard \(result.shardID) from \(name) that does not match the plan")
        }
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
        var values = [Float](repeating: 0, count: features.count / 4)
        values.withUnsafeMutableBytes { target in features.withUnsafeBytes { target.copyMemory(from: $0) } }
        let notRead = unreadable[result.shardID] ?? [:]
        let part = ShardPart(
            shardID: span.id, split: span.split, start: span.start, count: span.count,
            featureCount: inputs.featureCount,
            skipped: result.skipped.map {
                ShardPart.Skipped(offset: $0.offset, reason: notRead[$0.offset] ?? $0.reason)
            }, features: values)
        do {
            try journal.writePart(part)
        } catch {
            // A part that cannot be written (disk full, quota, I/O error, read-only) would fail again on every
            // retry: stop the job. The parts written so far stay, so a rerun resumes once there is room.
            fatal = ExtractionError(.failed, "cannot store shard \(result.shardID): \(error)")
            return
        }
        for other in scheduler.complete(result.shardID) where other != identity {
            // The copies elsewhere are moot; their results will be dropped as duplicates.
            logger.debug("shard \(result.shardID) done; \(workers[other]?.name ?? "?") computes a moot copy")
        }
        workers[identity]!.assignments[result.shardID] = nil
        doneImages += span.count
        computedImages += span.count
        perWorker[name, default: 0] += span.count
        for skipped in part.header.skipped {
            let entry = inputs.splits.first { $0.name == span.split }!.entries[span.start + skipped.offset]
            logger.warning("skipping \(entry.filename): \(skipped.reason)")
        }
        unreadable[result.shardID] = nil
    }

    private func dispatch(to identity: [UInt8], now: Date) {
        while let worker = workers[identity], worker.credit > 0,
            let (shard, attempt) = scheduler.next(for: identity, now: now)
        {
            let span = journal.manifest.shards[shard]
            let entries = inputs.splits.first { $0.name == span.split }!.entries[span.start..<(span.start + span.count)]
            let sequence = worker.sentSequence + 1
            let assignment = ShardAssignment(
                jobID: job.jobID, shardID: shard, attempt: attempt, sequence: sequence, start: span.start,
                filenames: entries.map(\.filename), paths: request.sharedFilesystem ? entries.map(\.path) : nil)
            var images: [[UInt8]] = []
            if !request.sharedFilesystem {
                unreadable[shard] = nil
                for (offset, entry) in entries.enumerated() {
                    if let data = FileManager.default.contents(atPath: entry.path) {
                        images.append(Array(data))
                    } else {
                        images.append([])
                        unreadable[shard, default: [:]][offset] =
                            FileManager.default.fileExists(atPath: entry.path)
                            ? "cannot be read" : "missing (removed since the job started)"
                    }
                }
            }
            workers[identity]!.credit -= 1
            workers[identity]!.sentSequence = sequence
            workers[identity]!.assignments[shard] = Worker.Sent(sequence: sequence, at: now)
            if !send(.shard(assignment, images: images), to: identity) { return }
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
        for (shard, sent) in worker.assignments {
            let delivered = sent.sequence <= status.lastShardSequence
            let lost =
                delivered ? !held.contains(shard) : now.timeIntervalSince(sent.at) > request.workerTimeout
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

    // MARK: - Liveness

    private func housekeeping(now: Date) throws {
        for (identity, worker) in workers {
            let silent = now.timeIntervalSince(worker.lastHeard)
            if silent > request.workerTimeout {
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
