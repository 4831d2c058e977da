import Foundation
import ImageFeatures
import ImageInput
import Logging
import Provenance
import Synchronization
import VGG16
import Wire

/// The worker's main loop: connects to a coordinator, takes shards against credit, computes them on a second
/// thread, and sends the feature blocks back; reconnects with back-off when the coordinator goes away.
///
/// `run()` blocks the calling thread, which owns the DEALER socket for its whole life; call it from the process's
/// main thread or a `Thread` of its own, never from Swift's cooperative pool.
public final class WorkerSession {
    public let configuration: WorkerConfiguration
    private let logger: Logger
    private let computer: ShardComputer
    /// Fine-tuning jobs' chunks (a welcome with `tuning`): computed on a thread of their own.
    private let tuning = TuningComputer()
    /// The fine-tuning settings of `job` / `awaitedJob`, nil for an extraction job.
    private var tuningSpec: TuningSpec?
    private var awaitedTuning: TuningSpec?
    /// Fine-tuning chunks received in this process (for the developer hook `exitAfterChunks`).
    private var chunksReceived = 0
    private let cache: WeightsCache

    /// The job the extractor is set up for.
    private var job: JobSpec?
    /// The job announced by `welcome` while its weights are on their way.
    private var awaitedJob: JobSpec?
    private var session = 0
    /// Shards of this registration received and not yet answered, and the highest shard sequence received.
    private var held: Set<Int> = []
    private var lastSequence = 0
    /// Whether the coordinator has welcomed this worker in the current registration.
    private var registered = false
    /// When hello or needWeights was last sent.
    private var lastHandshake = Date()
    private var helloRetry = WorkerSession.helloRetrySeconds.first
    /// This host's weights-fetch lock, held from asking the coordinator for weights until they are stored.
    private var fetchLock: WeightsCache.FetchLock?
    /// Set from another thread (a signal watcher) to stop the session.
    public let stopRequest = WorkerStopRequest()

    /// Shards in flight that a worker keeps asking for: one per compute thread (each computes a shard of its
    /// own) and one more, so that receiving, decoding and computing overlap.
    public var pipelineDepth: Int { configuration.computeThreads + 1 }
    /// Hello is repeated until welcomed, first after 50 ms (the first one is often sent before the
    /// connection is up and dropped), then at doubling intervals up to 1 s.
    static let helloRetrySeconds = (first: 0.05, most: 1.0)
    static let weightsRetrySeconds = 15.0
    /// While another worker process of this host fetches the weights, how often to look whether it is done.
    static let fetchWaitSeconds = 0.2
    /// The slowest link a weights transfer is expected to cross, bytes per second: while the weights are on
    /// their way (nothing else from the coordinator gets through), its silence may last their size at this rate.
    static let slowestWeightsLinkBytesPerSecond = 500_000.0

    public init(configuration: WorkerConfiguration, logger: Logger) {
        self.configuration = configuration
        self.logger = logger
        computer = ShardComputer(
            threads: configuration.computeThreads, shardDelayMilliseconds: configuration.shardDelayMilliseconds)
        cache = WeightsCache(cacheDirectory: configuration.cacheDirectory)
    }

    /// This worker's introduction to a coordinator.
    private var hello: Hello {
        Hello(
            workerName: configuration.name, pid: Int(getpid()), threads: configuration.computeThreads,
            computeProfile: Self.computeProfile(precision: configuration.precision))
    }

    /// What decides the bytes of this process's features at `precision`, as the coordinator records it.
    public static func computeProfile(precision: ConvPrecision) -> ComputeProfile {
        ComputeProfile(
            kernelSet: FeatureExtractor.kernelSet, grouping: FeatureExtractor.grouping,
            precision: precision.rawValue, buildVersion: BuildVersion.current,
            libraries: FeatureExtractor.libraryVersions)
    }

    private var stopRequested: Int32? { stopRequest.signal }

    public func run() -> WorkerOutcome {
        let context: WireContext
        do { context = try WireContext() } catch { return .failed("\(error)") }
        computer.start()
        tuning.start()
        defer {
            tuning.stop()
            computer.stop()
            context.terminate()
        }
        var backoff = 1.0
        var lastContact = Date()
        var unreachable: String?
        while true {
            // ZeroMQ connects in the background and says nothing of a refused connection or an unknown host:
            // find out first, so that the user hears why at once rather than when the worker gives up.
            switch EndpointProbe.probe(configuration.endpoint) {
            case .unresolvable(let why)?:
                return .failed(why)
            case .unreachable(let why)?:
                if why != unreachable { logger.warning("\(why); retrying") }
                unreachable = why
            case nil:
                unreachable = nil
            }
            session += 1
            held = []
            lastSequence = 0
            registered = false
            fetchLock = nil
            let outcome: SessionEnd
            do {
                outcome = try runSession(context: context, lastContact: &lastContact)
            } catch {
                logger.error("connection to \(configuration.endpoint) failed: \(error)")
                outcome = .reconnect
            }
            computer.abandon()
            tuning.abandon()
            switch outcome {
            case .finished(let result):
                return result
            case .jobEnded:
                backoff = 1
                lastContact = Date()
            case .reconnect:
                break
            }
            let silent = Date().timeIntervalSince(lastContact)
            if !configuration.persistent && silent >= configuration.giveUpAfter {
                if let unreachable {
                    return .gaveUp("\(unreachable); giving up after \(Int(silent)) s")
                }
                return .gaveUp(
                    "the coordinator at \(configuration.endpoint) has not answered for \(Int(silent)) s; giving up "
                        + "(the give-up time is \(Int(configuration.giveUpAfter)) s)")
            }
            logger.info("reconnecting to \(configuration.endpoint) in \(backoff) s")
            if let outcome = sleepWatchingParent(backoff) { return outcome }
            backoff = min(backoff * 2, 16)
        }
    }

    private enum SessionEnd {
        case finished(WorkerOutcome)
        case jobEnded
        case reconnect
    }

    private func runSession(context: WireContext, lastContact: inout Date) throws -> SessionEnd {
        var options = SocketOptions()
        options.routingID = Array(UUID().uuidString.utf8)
        options.maxMessageSize = Int64(WireLimits().maxWeightsBytes) + (1 << 20)
        options.immediate = true
        // Time for a goodbye to leave when the worker is stopped.
        options.lingerMilliseconds = 500
        options.security = configuration.security
        let watch = HandshakeWatch()
        options.handshakeMonitor = watch
        let socket = try WireSocket(context: context, kind: .dealer, options: options)
        defer { socket.close() }
        let handshakes = try HandshakeMonitor(
            context: context, watch: watch, clientKey: configuration.security.clientKey)
        defer { handshakes.close() }
        do {
            try socket.connect(configuration.endpoint)
        } catch {
            // ZeroMQ connects in the background; a failure here is a malformed endpoint, never a transient one.
            return .finished(.failed("cannot connect to \(configuration.endpoint): \(error)"))
        }
        var lastSent = Date()
        var lastHeard = Date()

        func send(_ message: WireMessage) {
            lastSent = Date()
            do {
                try socket.send(WireCodec.encode(message))
            } catch let error as WireError where error.reason == .wouldBlock {
                logger.debug("cannot send \(message.kind) now: no connection to the coordinator")
            } catch {
                logger.warning("cannot send \(message.kind) to the coordinator: \(error)")
            }
        }
        send(.hello(hello))
        lastHandshake = Date()
        helloRetry = Self.helloRetrySeconds.first
        logger.info("connecting to \(configuration.endpoint) as \(configuration.name)")

        while true {
            if let parent = configuration.parentPID, getppid() != parent { return .finished(.parentGone) }
            if let signal = stopRequested {
                // Abandon the shards held: the coordinator hands them to others as soon as it reads this.
                send(.goodbye(Goodbye(reason: "stopped by signal \(signal)")))
                return .finished(.stopped(signal: signal))
            }
            if let refusal = try handshakes.refusal() {
                return .finished(.refused(refusal.message, remedy: refusal.remedy))
            }
            if try socket.waitReadable(timeoutMilliseconds: 20) {
                while let frames = try socket.receive() {
                    lastHeard = Date()
                    lastContact = lastHeard
                    let message: WireMessage
                    do {
                        message = try WireCodec.decode(frames)
                    } catch let error as WireError {
                        if case .protocolMismatch = error.reason {
                            return .finished(.refused("the coordinator at \(configuration.endpoint): \(error.message)"))
                        }
                        if let head = frames.first, head.count > 6, head[6] == MessageKind.welcome.rawValue {
                            // A job outside the protocol's limits: say why and stop, rather than ask again forever.
                            let why = "cannot take this job: \(error.message)"
                            send(.goodbye(Goodbye(reason: why)))
                            return .finished(.failed(why))
                        }
                        logger.warning("dropping a message from the coordinator: \(error.message)")
                        continue
                    }
                    if let end = try handle(message, send: send) { return end }
                }
            }
            for computed in tuning.takeResults() where computed.session == session {
                if let failure = computed.failure {
                    // Leave and register again: the coordinator hands the node to others and starts afresh here.
                    logger.warning("\(failure); registering again")
                    send(.goodbye(Goodbye(reason: failure)))
                    return .reconnect
                }
                send(.tuneGradient(computed.gradient, values: computed.values))
            }
            for computed in computer.takeResults() where computed.session == session {
                if let failure = computed.failure {
                    // A part file this worker cannot write would fail again for every shard: leave, so that
                    // the coordinator hands the shards to others at once.
                    logger.error("\(failure)")
                    send(.goodbye(Goodbye(reason: "\(configuration.name): \(failure)")))
                    return .finished(.failed(failure))
                }
                send(.result(computed.result, features: computed.features))
                held.remove(computed.result.shardID)
                send(.request(ShardRequest(jobID: computed.result.jobID, status: status)))
            }
            // Until welcomed, hello is the heartbeat (a hello lost before the connection was up, or a lost
            // welcome, must not leave the worker waiting); lost weights are asked for again, less often.
            let interval = Double((job ?? awaitedJob)?.heartbeatIntervalMilliseconds ?? 1000) / 1000
            if !registered {
                if Date().timeIntervalSince(lastHandshake) >= helloRetry {
                    lastHandshake = Date()
                    helloRetry = min(Self.helloRetrySeconds.most, helloRetry * 2)
                    send(.hello(hello))
                }
            } else if job == nil, let awaited = awaitedJob, fetchLock == nil,
                Date().timeIntervalSince(lastHandshake) >= Self.fetchWaitSeconds
            {
                lastHandshake = Date()
                if let end = fetchOrWait(awaited, send: send) { return end }
            } else if job == nil, let awaited = awaitedJob,
                Date().timeIntervalSince(lastHandshake) >= Self.weightsRetrySeconds
            {
                lastHandshake = Date()
                send(.needWeights(WeightsRequest(sha256: awaited.weightsSHA256)))
            } else if Date().timeIntervalSince(lastSent) >= interval {
                send(.heartbeat(Heartbeat(status: job == nil ? nil : status)))
            }
            var timeout = Double(job?.peerTimeoutMilliseconds ?? 10_000) / 1000
            if job == nil, let awaited = awaitedJob, fetchLock != nil {
                // The weights may be on their way, holding back everything else the coordinator sends.
                timeout =
                    Double(awaited.peerTimeoutMilliseconds) / 1000 + Double(awaited.weightsSize)
                    / Self.slowestWeightsLinkBytesPerSecond
            }
            let silent = Date().timeIntervalSince(lastHeard)
            if silent > timeout {
                logger.warning("no word from the coordinator for \(Int(silent)) s")
                return .reconnect
            }
            // The give-up time is for reaching a coordinator; once it has welcomed this worker in this session, the
            // job's peer timeout says how long it may be silent (a fine-tuning coordinator is, while it validates).
            if !configuration.persistent && !registered
                && Date().timeIntervalSince(lastContact) >= configuration.giveUpAfter
            {
                return .reconnect
            }
        }
    }

    /// Acts on one message; returns how the session ends when it does.
    private func handle(_ message: WireMessage, send: (WireMessage) -> Void) throws -> SessionEnd? {
        switch message {
        case .welcome(let welcome):
            let announced = welcome.job
            registered = true
            if announced == awaitedJob && welcome.tuning == awaitedTuning { return nil }  // weights already asked for
            if announced == job && welcome.tuning == tuningSpec {
                // Welcomed again (a repeated hello, or registering anew after a reset): say what this worker holds.
                send(.request(ShardRequest(jobID: announced.jobID, status: status)))
                return nil
            }
            held = []
            lastSequence = 0
            awaitedTuning = welcome.tuning
            if let path = cache.verifiedPath(for: announced.weightsSHA256) {
                return setUp(announced, weightsPath: path, send: send)
            }
            awaitedJob = announced
            lastHandshake = Date()
            return fetchOrWait(announced, send: send)
        case .weights(let transfer, let bytes):
            guard let awaited = awaitedJob, awaited.weightsSHA256 == transfer.sha256 else {
                logger.warning("ignoring weights \(transfer.sha256.prefix(12))… that no job asked for")
                return nil
            }
            do {
                let path = try cache.store(bytes, sha256: transfer.sha256)
                fetchLock = nil
                return setUp(awaited, weightsPath: path, send: send)
            } catch let error as WeightsTransferError {
                logger.error("\(error)")
                send(.needWeights(WeightsRequest(sha256: awaited.weightsSHA256)))
            } catch {
                // The cache cannot hold the weights (not writable, full): asking again would fail the same way.
                let why = "cannot store the job's weights: \(error)"
                send(.goodbye(Goodbye(reason: why)))
                return .finished(.failed(why))
            }
        case .shard(let assignment, let images):
            guard let job, assignment.jobID == job.jobID else {
                logger.debug("ignoring shard \(assignment.shardID) of a job this worker is not set up for")
                return nil
            }
            lastSequence = max(lastSequence, assignment.sequence)
            held.insert(assignment.shardID)
            computer.submit(PendingShard(session: session, assignment: assignment, images: images))
        case .tuneWeights(let weights, let values):
            guard let job, tuningSpec != nil, weights.jobID == job.jobID else { return nil }
            tuning.submitWeights(session: session, weights, values: values)
        case .tuneChunk(let chunk, let images):
            guard let job, tuningSpec != nil, chunk.jobID == job.jobID else { return nil }
            chunksReceived += 1
            if let limit = configuration.exitAfterChunks, chunksReceived >= limit {
                // Developer hook: die as a crashed or killed worker does, holding a chunk it never answers.
                logger.warning("developer hook: killing this worker after \(chunksReceived) chunks")
                kill(getpid(), SIGKILL)
            }
            tuning.submitChunk(session: session, chunk, images: images)
            if chunksReceived == configuration.forgetImagesAfterChunks {
                logger.warning("developer hook: forgetting the images held after \(chunksReceived) chunks")
                tuning.forgetImages()
            }
        case .heartbeat:
            break
        case .end(let end):
            logger.info("the coordinator ended job \(end.jobID): \(end.reason)")
            job = nil
            tuningSpec = nil
            computer.configure(jobID: "", extractor: nil)
            try? tuning.configure(job: nil, tuning: nil, weights: nil)
            return configuration.persistent ? .jobEnded : .finished(.jobEnded)
        case .reject(let rejection):
            return .finished(
                .refused("the coordinator at \(configuration.endpoint) refused this worker: \(rejection.reason)"))
        case .reset(let reset):
            logger.info("the coordinator asks this worker to register again: \(reset.reason)")
            computer.abandon()
            session += 1
            held = []
            lastSequence = 0
            registered = false
            helloRetry = Self.helloRetrySeconds.first
            send(.hello(hello))
        case .hello, .request, .result, .needWeights, .goodbye, .tuneGradient:
            logger.warning("dropping a \(message.kind) message: only workers send those")
        }
        return nil
    }

    /// Asks the coordinator for the weights of `awaited` if this process can take the host's fetch lock;
    /// otherwise another worker process of this host is fetching them, and this one looks again later.
    private func fetchOrWait(_ awaited: JobSpec, send: (WireMessage) -> Void) -> SessionEnd? {
        if fetchLock == nil {
            do {
                fetchLock = try cache.tryLockForFetch()
            } catch {
                // The cache cannot hold the weights (not writable, not a directory): fetching them would fail.
                let why = "cannot store the job's weights: \(error)"
                send(.goodbye(Goodbye(reason: why)))
                return .finished(.failed(why))
            }
            guard fetchLock != nil else {
                logger.debug("another worker of this host is fetching the weights; waiting for its file")
                return nil
            }
        }
        // The file may have arrived while another process held the lock.
        if let path = cache.verifiedPath(for: awaited.weightsSHA256) {
            fetchLock = nil
            return setUp(awaited, weightsPath: path, send: send)
        }
        logger.info("fetching weights \(awaited.weightsSHA256.prefix(12))… from the coordinator")
        send(.needWeights(WeightsRequest(sha256: awaited.weightsSHA256)))
        return nil
    }

    /// Builds the extractor for `announced` from verified weights, or ends the worker when it cannot honour the
    /// job's settings exactly.
    private func setUp(_ announced: JobSpec, weightsPath: String, send: (WireMessage) -> Void) -> SessionEnd? {
        awaitedJob = nil
        fetchLock = nil
        func refuse(_ why: String) -> SessionEnd {
            send(.goodbye(Goodbye(reason: why)))
            return .finished(.failed(why))
        }
        guard let interpolation = Interpolation(rawValue: announced.interpolation) else {
            return refuse("unknown interpolation \(announced.interpolation)")
        }
        guard let preprocessing = Preprocessing(rawValue: announced.preprocessing) else {
            return refuse("unknown preprocessing \(announced.preprocessing)")
        }
        guard let layer = PoolingLayer(rawValue: announced.layer) else {
            return refuse("unknown layer \(announced.layer)")
        }
        let tuningSettings = awaitedTuning
        awaitedTuning = nil
        if let tuningSettings {
            do {
                let weights = try VGG16Weights.load(path: weightsPath)
                try tuning.configure(job: announced, tuning: tuningSettings, weights: weights)
            } catch {
                return refuse("cannot set up the fine-tuning job: \(error)")
            }
            job = announced
            tuningSpec = tuningSettings
            computer.configure(jobID: "", extractor: nil)
            let summary =
                "fine-tuning job \(announced.jobID): \(announced.imageHeight)x\(announced.imageWidth), weights "
                + "\(announced.weightsSHA256.prefix(12))…, augmentation \(tuningSettings.augmentation)"
            logger.info("\(summary)")
            send(.request(ShardRequest(jobID: announced.jobID, status: status)))
            return nil
        }
        tuningSpec = nil
        try? tuning.configure(job: nil, tuning: nil, weights: nil)
        let settings = ImageSettings(
            height: announced.imageHeight, width: announced.imageWidth, interpolation: interpolation,
            preprocessing: preprocessing)
        let precision = configuration.precision
        guard (announced.precision ?? ConvPrecision.fp32.rawValue) == precision.rawValue else {
            return refuse(
                "the job computes in \(announced.precision ?? "fp32"), this worker in \(precision.rawValue) "
                    + "(its precision setting)")
        }
        let extractor: FeatureExtractor
        do {
            let weights = try VGG16Weights.load(path: weightsPath)
            // One conv base per compute thread, each computing whole shards (see `ShardComputer`).
            extractor = try FeatureExtractor(
                weights: weights, settings: settings, layer: layer, threads: 1, precision: precision)
        } catch {
            return refuse("cannot set up the job: \(error)")
        }
        guard extractor.featureCount == announced.featureCount else {
            return refuse(
                "this worker computes \(extractor.featureCount) values per image, the job expects "
                    + "\(announced.featureCount)")
        }
        if let parts = announced.partsDirectory {
            // Shared filesystem: this worker writes shards' rows into the journal's part files itself, so it must
            // see the coordinator's journal directory (its job.id names this job) and be able to write there.
            let token = (try? String(contentsOfFile: parts + "/job.id", encoding: .utf8))?
                .trimmingCharacters(in: .whitespacesAndNewlines)
            guard token == announced.jobID else {
                return refuse(
                    "worker \(configuration.name) cannot see the parts directory \(parts) of this job "
                        + "(\(token == nil ? "no readable job.id there" : "its job.id names another job")); a shared "
                        + "filesystem needs the same paths on the coordinator and every worker")
            }
            // The part files are made like job.id (by the coordinator, same mode): writing them is opening it so.
            let probe = open(parts + "/job.id", O_WRONLY | O_CLOEXEC)
            guard probe >= 0 else {
                let reason = String(cString: strerror(errno))
                return refuse(
                    "worker \(configuration.name) cannot write into the parts directory \(parts) of this job: \(reason)"
                )
            }
            close(probe)
        }
        job = announced
        computer.configure(jobID: announced.jobID, extractor: extractor)
        let summary =
            "job \(announced.jobID): \(announced.imageHeight)x\(announced.imageWidth) \(announced.preprocessing) "
            + "\(announced.layer), weights \(announced.weightsSHA256.prefix(12))…"
        logger.info("\(summary)")
        send(.request(ShardRequest(jobID: announced.jobID, status: status)))
        return nil
    }

    private var status: WorkerStatus {
        WorkerStatus(
            lastShardSequence: lastSequence, held: held.sorted(), free: max(0, pipelineDepth - held.count))
    }

    private func sleepWatchingParent(_ seconds: Double) -> WorkerOutcome? {
        let until = Date().addingTimeInterval(seconds)
        while Date() < until {
            if let parent = configuration.parentPID, getppid() != parent { return .parentGone }
            if let signal = stopRequested { return .stopped(signal: signal) }
            Thread.sleep(forTimeInterval: 0.05)
        }
        return nil
    }
}

/// A request to stop a worker session (SIGTERM): the session tells the coordinator it leaves, which hands its
/// shards to others, and `run()` returns `.stopped`. Thread-safe (`Mutex`).
public final class WorkerStopRequest: Sendable {
    private let state = Mutex<Int32?>(nil)
    public init() {}
    /// Asks for the stop because of `signal` (the first request wins).
    public func request(signal: Int32) { state.withLock { if $0 == nil { $0 = signal } } }
    public var signal: Int32? { state.withLock { $0 } }
}
