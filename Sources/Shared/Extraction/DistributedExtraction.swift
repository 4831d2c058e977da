import FileIntegrity
import Foundation
import ImageInput
import Logging
import Provenance
import Reporting
import Storage
import Synchronization
import Wire

/// Runs an extraction across worker processes: local ones it starts, remote ones that connect to `bindEndpoints`.
///
/// Resumes from `<output>.parts/` when a journal with the same inputs and settings exists (refusing, with the
/// changes named, when they differ), computes the missing shards, assembles the feature file in index order under
/// a temporary name, and removes the parts unless `keepParts`. Blocks the calling thread, which owns the ROUTER
/// socket; call it from a thread of your own (the CLI's main thread), not from Swift's cooperative pool.
///
/// Progress goes to `request.progress`; the closing summary is the return value, for the caller to show.
public func extractDistributed(_ request: ExtractionRequest, logger: Logger) throws -> ExtractionSummary {
    let started = Date()
    let cores = ProcessInfo.processInfo.activeProcessorCount
    let workerCount = request.workers ?? defaultLocalWorkers(cores: cores)
    guard workerCount >= 0 else { throw ExtractionError(.badInput, "the number of local workers must be 0 or more") }
    guard workerCount > 0 || !request.bindEndpoints.isEmpty else {
        throw ExtractionError(
            .badInput, "no local workers needs an endpoint to bind, so that remote workers can connect")
    }
    guard request.workerTimeout > 0 && request.heartbeatInterval > 0 else {
        throw ExtractionError(.badInput, "the worker timeout and heartbeat interval must be positive")
    }

    if request.curve == nil {
        for endpoint in request.bindEndpoints {
            if let refusal = CurveBindPolicy.refusal(bindingPlaintext: endpoint, insecure: request.insecure) {
                throw refusal
            }
            if !CurveBindPolicy.isLoopback(endpoint) {
                logger.warning("\(CurveBindPolicy.insecureWarning(endpoint: endpoint))")
            }
        }
    }
    // Where the start-up goes (a resume at 10 million images must dispatch within seconds): logged at debug level.
    var startupPhases: [String] = []
    var phaseStarted = Date()
    func phase(_ name: String) {
        let now = Date()
        startupPhases.append("\(name) \(String(format: "%.2f", now.timeIntervalSince(phaseStarted))) s")
        phaseStarted = now
    }
    // A resume reads the journal's manifest and replays its log on another thread while this one reads the list
    // or scans the trees (the two longest steps of a start at scale); `ShardJournal.open` uses what it read only
    // if the files are unchanged once it holds the lock.
    let partsDirectory = request.partsDirectory
    let readAhead =
        request.restart || !FileManager.default.fileExists(atPath: partsDirectory + "/manifest.json")
        ? nil
        : BackgroundResult("journal-read-ahead") {
            let started = Date()
            return (ShardJournal.readAhead(directory: partsDirectory), Date().timeIntervalSince(started))
        }
    let inputs = try ExtractionInputs.load(request)
    phase("inputs")
    let shardSize = request.shardSize ?? ExtractionRequest.defaultShardSize(imageCount: inputs.imageCount)
    guard shardSize >= 1 && shardSize <= 4096 else {
        throw ExtractionError(.badInput, "the shard size must be 1...4096")
    }
    let splitCounts = inputs.splits.map { "\($0.name) \($0.entries.count)" }.joined(separator: ", ")
    logger.info("found \(inputs.imageCount) images in \(inputs.classNames.count) classes (\(splitCounts))")
    // A virtual output maps onto the part files: a restart, which removes them, removes that output too and
    // says so (it would be left reading zeros).
    let virtualMarker = request.partsDirectory + "/" + virtualOutputMarker
    let restartDropsVirtualOutput = request.restart && FileManager.default.fileExists(atPath: virtualMarker)
    let journal: ShardJournal
    do {
        let manifest = inputs.manifest(request: request, shardSize: shardSize)
        phase("manifest")
        let early = readAhead?.value
        phase("journal read ahead")
        if let early {
            logger.debug(
                "journal read ahead: \(early.0.recordedShards) shards recorded, in \(String(format: "%.2f", early.1)) s"
            )
        }
        journal = try ShardJournal.open(
            directory: request.partsDirectory, manifest: manifest, restart: request.restart, readAhead: early?.0)
        phase("journal")
    } catch let error as JournalError {
        if case .settingsChanged = error.reason { throw ExtractionError(.resumeRefused, error.message) }
        throw ExtractionError(.failed, error.message)
    }
    // The journal's lock is held: whatever a crashed run of this output left half-written can go.
    removeTemporaryFiles(of: request.outputPath, logger: logger)
    if restartDropsVirtualOutput && FileManager.default.fileExists(atPath: request.outputPath) {
        let note =
            "restarting removes the part files that \(request.outputPath) (a virtual output) maps onto; removing it too"
        logger.notice("\(note)")
        request.progress.note(note)
        try? FileManager.default.removeItem(atPath: request.outputPath)
    }
    if journal.ignoredLogLines > 0 {
        let note =
            "ignoring \(journal.ignoredLogLines) unreadable line(s) of \(journal.logPath) (a torn last line after a "
            + "crash); their shards are computed again"
        logger.warning("\(note)")
    }
    let finished = journal.finishedShards()
    phase("finished shards")
    var done = finished.done
    var corrupt = finished.lost
    if request.verifyParts && !done.isEmpty {
        logger.notice("checking the SHA-256 of \(done.count) finished shards")
        let failed = journal.verify(done, threads: max(2, cores))
        for (shard, _) in failed { done.remove(shard) }
        corrupt += failed
        do { try journal.invalidate(failed) } catch { throw ExtractionError(.failed, "\(error)") }
    }
    for (shard, reason) in corrupt { logger.warning("shard \(shard) must be recomputed: \(reason)") }
    var shardsChanged = 0
    var inputCheck: InputCheck?
    if !request.trustInputs && !done.isEmpty {
        let spans = journal.manifest.shards
        let entriesBySplit = Dictionary(uniqueKeysWithValues: inputs.splits.map { ($0.name, $0.entries) })
        let recorded = journal.records.mapValues(\.inputs)
        let finished = done
        let check: @Sendable () -> Set<Int> = {
            changedInputs(spans: spans, entriesBySplit: entriesBySplit, recorded: recorded, shards: finished)
        }
        if done.count < journal.manifest.shards.count {
            // Work to do: the check runs beside it, and the coordinator recomputes what it finds.
            inputCheck = InputCheck(check)
        } else {
            let changed = check()
            shardsChanged = changed.count
            do {
                try journal.invalidate(changed.sorted().map { ($0, "its images changed") })
            } catch { throw ExtractionError(.failed, "\(error)") }
            done.subtract(changed)
            if !changed.isEmpty {
                let note = changedInputsNote(changed.count)
                logger.notice("\(note)")
                request.progress.note(note)
            }
        }
    }
    let shardsTotal = journal.manifest.shards.count
    if !done.isEmpty || !corrupt.isEmpty {
        logger.notice("resuming: \(done.count) of \(shardsTotal) shards done")
    }
    if !done.isEmpty { request.progress.note("resuming: \(done.count) of \(shardsTotal) shards done") }

    var retried = 0
    var duplicates = 0
    var computed = 0
    var perWorker: [String: Int] = [:]
    var weightsTransfers = 0
    var peakResultBytesReserved = 0
    var peakUnwrittenBytes = 0
    if done.count < shardsTotal {
        // The traffic to expect: feature rows back (and image bytes out) in plain mode, at a generous rate per
        // local worker and for a cluster of remote ones; shard messages of paths and hashes only with a shared
        // filesystem.
        let imagesPerSecond = Double(workerCount) * 50 + (request.bindEndpoints.isEmpty ? 0 : 2000)
        let bytesPerImage = request.sharedFilesystem ? 512.0 : Double(inputs.featureCount * 4 + 100_000)
        let ioThreads = WireContext.ioThreads(
            bytesPerSecond: imagesPerSecond * bytesPerImage, curve: request.curve != nil, maximum: max(1, cores / 2))
        let context = try WireContext(ioThreads: ioThreads)
        logger.debug("ZeroMQ I/O threads: \(ioThreads)")
        defer { context.terminate() }
        var options = SocketOptions()
        options.maxMessageSize = Int64(shardSize * inputs.featureCount * 4 + (1 << 20))
        // Long enough for `end` to reach the workers, short enough never to hang a finished run.
        options.lingerMilliseconds = 1000
        options.heartbeatIntervalMilliseconds = Int32(request.heartbeatInterval * 1000)
        options.heartbeatTimeoutMilliseconds = Int32(request.workerTimeout * 1000)
        options.heartbeatTTLMilliseconds = Int32(request.workerTimeout * 1000)
        // CURVE: the ZAP handler answers before the socket binds, and stops after it closes (defer order).
        var zapHandler: ZAPHandler?
        defer { zapHandler?.stop() }
        var localWorkerKeys: LocalWorkerKeys?
        defer { localWorkerKeys?.remove() }
        if let curve = request.curve {
            zapHandler = try curve.startZAPHandler(context: context) { decision in
                logger.log(level: decision.allowed ? .info : .warning, "\(decision.logLine)")
            }
            options.security = curve.socketSecurity
            if workerCount > 0 { localWorkerKeys = try curve.localWorkerKeys() }
            logger.notice(
                "CURVE on: \(curve.allowList.count) authorized worker keys in \(curve.authorizedWorkersDirectory)")
        }
        let socket = try WireSocket(context: context, kind: .router, options: options)
        defer { socket.close() }
        var localEndpoint: String?
        if workerCount > 0 {
            // Linux's abstract socket namespace: no file to leave behind, whatever way the run ends.
            localEndpoint = try socket.bind("ipc://@bottleneck-\(getpid())-\(UUID().uuidString.prefix(8))")
        }
        for endpoint in request.bindEndpoints {
            let bound: String
            do { bound = try socket.bind(endpoint) } catch {
                throw ExtractionError(.badInput, "cannot listen on \(endpoint): \(error)")
            }
            logger.notice("listening for workers on \(bound)")
        }
        phase("sockets")
        let coordinator = ExtractionCoordinator(
            request: request, inputs: inputs, journal: journal, alreadyDone: done, inputCheck: inputCheck,
            socket: socket, logger: logger)
        phase("scheduler")
        logger.debug("start-up: \(startupPhases.joined(separator: ", "))")
        var pool: LocalWorkerPool?
        if let localEndpoint {
            let threads = request.threadsPerWorker ?? max(1, cores / workerCount)
            pool = try LocalWorkerPool(
                count: workerCount, endpoint: localEndpoint, threads: threads, cacheDirectory: request.cacheDirectory,
                giveUpAfter: max(10, request.workerTimeout * 3),
                extraArguments: (localWorkerKeys?.arguments ?? []) + ["--precision", request.precision.rawValue],
                logger: logger)
            coordinator.attach(pool!)
            logger.info("started \(workerCount) local workers with \(threads) threads each")
        }
        do {
            try coordinator.run()
        } catch {
            // Workers were told the job is over; local ones leave by themselves within a moment.
            pool?.shutDown(grace: 2)
            throw error
        }
        pool?.shutDown(grace: 3)
        retried = coordinator.retried
        duplicates = coordinator.duplicates
        computed = coordinator.computedImages
        perWorker = coordinator.perWorker
        weightsTransfers = coordinator.weightsTransfers
        shardsChanged += coordinator.shardsChanged
        peakResultBytesReserved = coordinator.peakResultBytesReserved
        peakUnwrittenBytes = coordinator.peakUnwrittenBytes
    }
    let extractionEnded = Date()
    let extractionUsage = ProcessUsage.now()
    if let signal = request.stop?.signal {
        throw ExtractionError(
            .interrupted(signal: signal),
            "stopped by \(signalName(signal)) before the feature file was written; every shard is done and kept in "
                + "\(journal.directory), and the same job run again writes the file")
    }

    let written: (images: Int, skipped: Int)
    do {
        var attributes = inputs.attributes
        attributes.provenance = journal.manifest.provenance
        attributes.precision = request.precision.rawValue
        switch request.assembly {
        case .copy:
            written = try assembleFeatureFile(
                inputs: inputs, attributes: attributes, journal: journal, outputPath: request.outputPath,
                progress: request.progress)
            // The output holds its features now; no virtual output maps onto the parts any more.
            try? FileManager.default.removeItem(atPath: virtualMarker)
        case .virtual:
            do {
                try AtomicFile.write(
                    Array(URL(fileURLWithPath: request.outputPath).lastPathComponent.utf8), to: virtualMarker)
            } catch {
                throw ExtractionError(.failed, "cannot write \(virtualMarker): \(error)")
            }
            written = try assembleVirtualFeatureFile(
                inputs: inputs, attributes: attributes, journal: journal, outputPath: request.outputPath,
                progress: request.progress)
        }
    } catch let error as ExtractionError {
        throw error
    } catch let error as JournalError where error.reason == .corruptPart {
        throw ExtractionError(
            .failed,
            "cannot assemble \(request.outputPath): \(error.message); the shard's record is withdrawn, and the same "
                + "job run again computes it")
    } catch {
        throw ExtractionError(.failed, "cannot assemble \(request.outputPath): \(error)")
    }
    if !request.keepParts && request.assembly == .copy {
        do { try journal.remove() } catch { logger.warning("\(error)") }
    }
    let ended = Date()
    let seconds = ended.timeIntervalSince(started)
    var summary = ExtractionSummary(
        images: written.images, skipped: written.skipped, shardsTotal: shardsTotal, shardsResumed: done.count,
        shardsRetried: retried, duplicatesDropped: duplicates, seconds: seconds,
        imagesPerSecond: Double(computed) / max(seconds, 1e-3), perWorker: perWorker, shardsChanged: shardsChanged,
        weightsTransfers: weightsTransfers)
    summary.extractionSeconds = extractionEnded.timeIntervalSince(started)
    summary.assemblySeconds = ended.timeIntervalSince(extractionEnded)
    summary.extractionCPUSeconds = extractionUsage.cpuSeconds
    summary.extractionPeakResidentBytes = extractionUsage.peakResidentBytes
    if !request.sharedFilesystem {
        summary.resultBytesBudget = request.resultBytesBudget
        summary.peakResultBytesReserved = peakResultBytesReserved
        summary.peakUnwrittenBytes = peakUnwrittenBytes
    }
    return summary
}

/// The file in the journal directory that says a virtual output maps onto its part files (its text: the output's
/// name).
let virtualOutputMarker = "virtual-output"

/// Removes `<output>.tmp-*` files next to the output: feature files a crashed run was assembling. Call only with
/// the journal's lock held (no other coordinator writes this output).
func removeTemporaryFiles(of outputPath: String, logger: Logger) {
    let url = URL(fileURLWithPath: outputPath)
    let directory = url.deletingLastPathComponent().path
    let prefix = url.lastPathComponent + ".tmp-"
    for name in (try? FileManager.default.contentsOfDirectory(atPath: directory)) ?? [] where name.hasPrefix(prefix) {
        logger.info("removing \(name), left by an interrupted run")
        try? FileManager.default.removeItem(atPath: directory + "/" + name)
    }
}

/// The finished shards any of whose images changed since they were read (size, modification time, or presence):
/// their stamps now give another digest than the one the journal log recorded (`recorded`, by shard). Checks the
/// shards in parallel (a network filesystem answers each `stat` slowly, but many at once).
func changedInputs(
    spans: [ShardSpan], entriesBySplit: [String: ImageList], recorded: [Int: String], shards: Set<Int>
) -> Set<Int> {
    let order = shards.sorted()
    let found = Mutex(Set<Int>())
    DispatchQueue.concurrentPerform(iterations: order.count) { index in
        let span = spans[order[index]]
        guard let entries = entriesBySplit[span.split] else { return }
        let stamps = (0..<span.count).map { ImageFile.stamp(entries[span.start + $0].path) }
        if ShardRecord.digest(of: stamps) != recorded[span.id] { found.withLock { _ = $0.insert(span.id) } }
    }
    return found.withLock { $0 }
}

/// The input check of a resume run on a thread of its own, so that it does not hold back the first shards: the
/// coordinator takes its outcome (`changed`, nil until it is known) and computes those shards again.
final class InputCheck: Sendable {
    private let outcome = Mutex<Set<Int>?>(nil)

    init(_ check: @escaping @Sendable () -> Set<Int>) {
        let thread = Thread { [self] in
            let changed = check()
            outcome.withLock { $0 = changed }
        }
        thread.name = "input-check"
        thread.start()
    }

    /// The finished shards whose images changed, once the check is over.
    var changed: Set<Int>? { outcome.withLock { $0 } }
}

/// A value computed on a thread of its own; `value` waits for it.
final class BackgroundResult<Value: Sendable>: Sendable {
    private let result = Mutex<Value?>(nil)
    private let finished = DispatchSemaphore(value: 0)

    init(_ name: String, _ work: @escaping @Sendable () -> Value) {
        let thread = Thread { [self] in
            let value = work()
            result.withLock { $0 = value }
            finished.signal()
        }
        thread.name = name
        thread.start()
    }

    /// The value, once computed (blocks until then).
    var value: Value {
        finished.wait()
        finished.signal()
        return result.withLock { $0! }
    }
}

/// What a resume says when the input check found changed images.
func changedInputsNote(_ shards: Int) -> String {
    "images of \(shards) finished shards changed since the interrupted run; recomputing those shards"
}

/// Local workers when `--workers` is not given: one per core, each with one convolution thread.
public func defaultLocalWorkers(cores: Int) -> Int { max(1, cores) }

/// This process's CPU time and peak resident memory so far (`getrusage`: the same counters as `/proc/self/stat`'s
/// user + system time and `/proc/self/status`' VmHWM).
struct ProcessUsage {
    /// User + system CPU seconds of every thread.
    var cpuSeconds: Double
    /// The resident set's high-water mark, bytes.
    var peakResidentBytes: Int

    static func now() -> ProcessUsage {
        var usage = rusage()
        guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else {
            return ProcessUsage(cpuSeconds: 0, peakResidentBytes: 0)
        }
        func seconds(_ time: timeval) -> Double { Double(time.tv_sec) + Double(time.tv_usec) / 1e6 }
        return ProcessUsage(
            cpuSeconds: seconds(usage.ru_utime) + seconds(usage.ru_stime), peakResidentBytes: usage.ru_maxrss * 1024)
    }
}
