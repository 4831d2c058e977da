import Extraction
import FineTuning
import Foundation
import Logging
import Provenance
import Reporting
import Wire

/// How a fine-tuning run reaches its workers: local ones it starts, remote ones that connect to `bindEndpoints`.
public struct TuningWorkersSetup {
    /// The VGG16 weights file the workers receive by its SHA-256 (the frozen blocks and block5's start).
    public var weightsPath: String
    public var weightsSHA256: String
    public var imageHeight: Int
    public var imageWidth: Int
    /// `ImageInput.Interpolation` / `Preprocessing` raw values, as in `JobSpec`.
    public var interpolation: String
    public var preprocessing: String
    /// Values per image of the frozen pass' output (`block4_pool`).
    public var frozenFeatureCount: Int
    public var tuning: TuningSpec
    /// Local worker processes to start (0: remote workers only).
    public var localWorkers: Int
    public var bindEndpoints: [String] = []
    public var curve: CurveServerSetup?
    /// Allow binding a non-loopback endpoint without CURVE.
    public var insecure = false
    /// Silence after which a worker counts as gone and its chunks go to others, seconds.
    public var workerTimeout = 10.0
    public var heartbeatInterval = 1.0
    /// The local workers' weights cache directory (nil: their default).
    public var cacheDirectory: String?
    /// Chunks a worker may hold at once (computing one, the next one queued behind it).
    public var chunksPerWorker = 2

    public init(
        weightsPath: String, weightsSHA256: String, imageHeight: Int, imageWidth: Int, interpolation: String,
        preprocessing: String, frozenFeatureCount: Int, tuning: TuningSpec, localWorkers: Int
    ) {
        self.weightsPath = weightsPath
        self.weightsSHA256 = weightsSHA256
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.interpolation = interpolation
        self.preprocessing = preprocessing
        self.frozenFeatureCount = frozenFeatureCount
        self.tuning = tuning
        self.localWorkers = localWorkers
    }
}

/// Bytes counted at the coordinator's socket (every frame of every message, routing ids left out) over a run.
public struct TuningTraffic: Sendable, Equatable {
    /// Trainable weights sent to workers (`tuneWeights` frames).
    public var weightsDown = 0
    /// Image pixels sent with chunks.
    public var imagesDown = 0
    /// Gradients received (`tuneGradient` frames).
    public var gradientsUp = 0
    /// Everything else: headers, handshakes, heartbeats, the VGG16 file shipped to workers without it.
    public var otherDown = 0
    public var otherUp = 0
    public var steps = 0
    public var chunks = 0
    /// Tree nodes handed out again because their worker was gone or silent.
    public var reassigned = 0
    /// Nodes kept whose frozen pass the worker ran before their step's weights came (handed out ahead).
    public var frozenAhead = 0
    /// Seconds the trainer waited for the workers' gradients (their compute and the transfers).
    public var waitSeconds = 0.0
    /// Seconds the trainer waited for the workers' validation figures.
    public var validationSeconds = 0.0
    /// Seconds the workers reported for the chunks kept: the frozen pass (with augmentation and preprocessing)
    /// and block5 + top forward/backward, summed over workers (divide by the worker count for wall time).
    public var workerFrozenSeconds = 0.0
    public var workerBlockSeconds = 0.0
}

/// A `ChunkGradientSource` whose chunks are computed by worker processes (`bottleneck-worker`).
///
/// Each step the batch's reduction tree (`ReductionTree`) is cut into one node per worker; every worker given
/// work first receives the step's trainable weights, then its node (at most `chunksPerWorker` at a time), and
/// answers with the node's summed gradient; an image's pixels cross the link once per worker. The first
/// gradient of a node is kept, later copies dropped; a worker that leaves, or is silent past `workerTimeout`,
/// loses its nodes to the others. Since a node's sum does not depend on who computed it, and the root is
/// assembled along the same fixed tree, the batch's gradient is the same bytes whatever happened.
///
/// Pipelined: once no node of the step is left to hand out, each worker gets its node of the upcoming step
/// without weights and runs its frozen pass while this process waits, sums, steps and validates. Validation
/// batches go to the workers too (`validationFigures`), with the next step's weights. Blocks the calling
/// thread, which owns the ROUTER socket: call every method from that one thread, not from Swift's cooperative
/// pool.
public final class WorkerGradients: ChunkGradientSource {
    private struct Worker {
        var name: String
        var lastHeard: Date
        var lastSent: Date
        var ready = false
        var weightsStep = -1
        var images: Set<Int> = []
        /// Nodes (ranges of chunk positions) of the current step's reduction tree this worker holds.
        var holding: Set<Range<Int>> = []
        /// Nodes of the upcoming step handed to it ahead of that step's weights (it runs their frozen pass).
        var ahead: Set<Range<Int>> = []
        /// Validation images (split indices) it holds, and the validation batches (first rows) it computes.
        var validationImages: Set<Int> = []
        var validating: Set<Int> = []
    }

    /// The upcoming batch and its nodes, as handed out ahead.
    private var plan: (batch: UpcomingBatch, nodes: [Range<Int>])?
    /// Gradients of the upcoming step's nodes that came back early (while validating with its weights).
    private var early: [Range<Int>: TrainableBlock.Gradient] = [:]
    private var lastWorkerSeen = Date()

    public let setup: TuningWorkersSetup
    public private(set) var traffic = TuningTraffic()
    private let logger: Logger
    private let job: JobSpec
    private let context: WireContext
    private let socket: WireSocket
    private var zapHandler: ZAPHandler?
    private var localKeys: LocalWorkerKeys?
    private var pool: LocalWorkerPool?
    private var workers: [[UInt8]: Worker] = [:]
    private var profile: ComputeProfile?
    private var weightsBytes: [UInt8]?
    private var train: FineTuningImages?
    private var validation: FineTuningImages?
    private var closed = false

    /// Binds the socket and starts the local workers; throws `DistributedTuningError` when it cannot.
    public init(_ setup: TuningWorkersSetup, logger: Logger) throws {
        guard setup.localWorkers >= 0, setup.localWorkers > 0 || !setup.bindEndpoints.isEmpty else {
            throw DistributedTuningError(
                "no local workers needs an endpoint to bind, so that remote workers can connect")
        }
        guard setup.workerTimeout > 0, setup.heartbeatInterval > 0, setup.chunksPerWorker >= 1 else {
            throw DistributedTuningError(
                "the worker timeout, heartbeat interval and chunks per worker must be positive")
        }
        if setup.curve == nil {
            for endpoint in setup.bindEndpoints {
                if let refusal = CurveBindPolicy.refusal(bindingPlaintext: endpoint, insecure: setup.insecure) {
                    throw refusal
                }
                if !CurveBindPolicy.isLoopback(endpoint) {
                    logger.warning("\(CurveBindPolicy.insecureWarning(endpoint: endpoint))")
                }
            }
        }
        let size: Int
        do {
            size = try (FileManager.default.attributesOfItem(atPath: setup.weightsPath)[.size] as? Int) ?? 0
        } catch {
            throw DistributedTuningError("cannot read \(setup.weightsPath): \(error)")
        }
        self.setup = setup
        self.logger = logger
        job = JobSpec(
            jobID: "finetune-\(UUID().uuidString.prefix(8))", weightsSHA256: setup.weightsSHA256, weightsSize: size,
            imageHeight: setup.imageHeight, imageWidth: setup.imageWidth, interpolation: setup.interpolation,
            preprocessing: setup.preprocessing, layer: "block4_pool", featureCount: setup.frozenFeatureCount,
            sharedFilesystem: false, heartbeatIntervalMilliseconds: Int(setup.heartbeatInterval * 1000),
            peerTimeoutMilliseconds: Int(max(setup.workerTimeout, Self.coordinatorSilence) * 1000))
        if let refusal = WireLimits().refusal(of: job) {
            throw DistributedTuningError("no worker would take the job: \(refusal)")
        }
        context = try WireContext()
        var options = SocketOptions()
        options.maxMessageSize = Int64(1 << 30) + (1 << 20)
        options.lingerMilliseconds = 1000
        options.heartbeatIntervalMilliseconds = Int32(setup.heartbeatInterval * 1000)
        options.heartbeatTimeoutMilliseconds = Int32(setup.workerTimeout * 1000)
        options.heartbeatTTLMilliseconds = Int32(setup.workerTimeout * 1000)
        do {
            if let curve = setup.curve {
                zapHandler = try curve.startZAPHandler(context: context) { decision in
                    logger.log(level: decision.allowed ? .info : .warning, "\(decision.logLine)")
                }
                options.security = curve.socketSecurity
                if setup.localWorkers > 0 { localKeys = try curve.localWorkerKeys() }
            }
            socket = try WireSocket(context: context, kind: .router, options: options)
        } catch {
            zapHandler?.stop()
            localKeys?.remove()
            context.terminate()
            throw error
        }
        do {
            var localEndpoint: String?
            if setup.localWorkers > 0 {
                localEndpoint = try socket.bind("ipc://@bottleneck-tune-\(getpid())-\(UUID().uuidString.prefix(8))")
            }
            for endpoint in setup.bindEndpoints {
                let bound: String
                do { bound = try socket.bind(endpoint) } catch {
                    throw DistributedTuningError("cannot listen on \(endpoint): \(error)")
                }
                logger.notice("listening for workers on \(bound)")
            }
            if let localEndpoint {
                pool = try LocalWorkerPool(
                    count: setup.localWorkers, endpoint: localEndpoint, threads: 1,
                    cacheDirectory: setup.cacheDirectory,
                    giveUpAfter: max(10, setup.workerTimeout * 3), extraArguments: localKeys?.arguments ?? [],
                    logger: logger)
            }
        } catch {
            close()
            throw error
        }
    }

    deinit { close() }

    /// How long workers wait for word from the coordinator before they reconnect, at least, seconds: between
    /// steps (validation, checkpoints) the coordinator does not read or heartbeat.
    static let coordinatorSilence = 300.0

    public func prepare(train: FineTuningImages, validation: FineTuningImages?) throws {
        precondition(train.height == setup.imageHeight && train.width == setup.imageWidth)
        self.train = train
        self.validation = validation
    }

    /// The step's weights as one frame, made once per step.
    private var weightsFrame: (step: Int, bytes: [UInt8])?

    /// Sends the weights that start `step` to a worker that lacks them; false when the send failed.
    private func sendWeights(_ tensors: [[Float]], step: Int, _ worker: inout Worker, to identity: [UInt8]) -> Bool {
        guard worker.weightsStep != step else { return true }
        if weightsFrame?.step != step { weightsFrame = (step, FloatFrame.bytes(tensors)) }
        let frame = weightsFrame!.bytes
        let header = TuningWeights(jobID: job.jobID, step: step, valueCount: frame.count / 4)
        guard send(.tuneWeights(header, values: frame), to: identity) else { return false }
        traffic.weightsDown += frame.count
        worker.weightsStep = step
        return true
    }

    /// Sends rows `rows` of `images` as a chunk (the pixels the worker lacks with it, which it then holds);
    /// false when the send failed.
    private func sendChunk(
        _ header: TuningChunk, rows: [Int], of images: FineTuningImages, held: inout Set<Int>, to identity: [UInt8]
    ) -> Bool {
        var header = header
        header.indices = rows.map { images.indices[$0] }
        header.labels = rows.map { images.labels[$0] }
        header.shipped = header.indices.map { !held.contains($0) }
        let size = images.height * images.width * 3
        let frames = zip(rows, header.shipped).filter(\.1).map { row, _ in
            Array(images.pixels[(row * size)..<((row + 1) * size)])
        }
        guard send(.tuneChunk(header, images: frames), to: identity) else { return false }
        traffic.imagesDown += frames.reduce(0) { $0 + $1.count }
        held.formUnion(header.indices)
        return true
    }

    /// Sends `node` of `batch` to a worker; false when the send failed.
    private func sendNode(
        _ node: Range<Int>, of batch: [TrainingChunk], epoch: Int, step: Int, _ worker: inout Worker,
        to identity: [UInt8]
    ) -> Bool {
        let header = TuningChunk(
            jobID: job.jobID, step: step, position: node.lowerBound, epoch: epoch, indices: [], labels: [],
            shipped: [], leafCounts: batch[node].map(\.rows.count), batchCount: batch.reduce(0) { $0 + $1.rows.count })
        guard sendChunk(header, rows: batch[node].flatMap(\.rows), of: train!, held: &worker.images, to: identity)
        else { return false }
        traffic.chunks += node.count
        return true
    }

    /// Reads every message waiting (up to 20 ms for the first): gradients go to `gradient` (with the sender, if
    /// known), the rest to `handle`.
    private func receive(gradient: ([UInt8], TuningGradient, [UInt8]) -> Void) throws {
        guard try socket.waitReadable(timeoutMilliseconds: 20) else { return }
        while let frames = try socket.receive() {
            guard frames.count >= 2 else { continue }
            let identity = frames[0]
            let message: WireMessage
            do { message = try WireCodec.decode(Array(frames.dropFirst())) } catch {
                logger.warning("dropping a message from a worker: \(error)")
                continue
            }
            if case .tuneGradient(let header, let values) = message {
                traffic.gradientsUp += values.count
                traffic.otherUp += frames[1].count
                guard workers[identity] != nil else { continue }
                workers[identity]!.lastHeard = Date()
                guard header.jobID == job.jobID else { continue }
                gradient(identity, header, values)
            } else {
                traffic.otherUp += frames.dropFirst().reduce(0) { $0 + $1.count }
                handle(message, from: identity)
            }
        }
    }

    /// Drops silent workers, replaces exited local ones, sends heartbeats; throws when no worker has been
    /// ready for long.
    private func keepWorkers() throws {
        let now = Date()
        // Workers gone silent lose their nodes (a killed process says nothing).
        for (identity, worker) in workers where now.timeIntervalSince(worker.lastHeard) > setup.workerTimeout {
            logger.warning("worker \(worker.name) silent for \(Int(setup.workerTimeout)) s; its chunks go to others")
            drop(identity)
        }
        if let pool, !pool.replaceExited() {
            throw DistributedTuningError(
                "local workers keep exiting (last status \(pool.lastExitStatus)); no worker is left to compute")
        }
        for (identity, worker) in workers where now.timeIntervalSince(worker.lastSent) >= setup.heartbeatInterval {
            send(.heartbeat(Heartbeat()), to: identity)
        }
        if workers.values.contains(where: \.ready) { lastWorkerSeen = now }
        if now.timeIntervalSince(lastWorkerSeen) > max(60, setup.workerTimeout * 6) {
            throw DistributedTuningError(
                "no worker has been ready for \(Int(now.timeIntervalSince(lastWorkerSeen))) s; start workers "
                    + "that connect to this coordinator")
        }
    }

    /// A node's gradient from a worker's answer for `step` of `chunks`, nil when it is not one (or not whole).
    private func nodeGradient(
        _ header: TuningGradient, _ values: [UInt8], step: Int, nodes: [Range<Int>], chunks: [TrainingChunk],
        sizes: [Int]
    ) -> (Range<Int>, TrainableBlock.Gradient)? {
        let node = header.position..<(header.position + (header.leaves ?? 1))
        guard header.validation != true, header.step == step, nodes.contains(node),
            header.count == chunks[node].reduce(0, { $0 + $1.rows.count }),
            let parts = FloatFrame.tensors(values, sizes: sizes)
        else { return nil }
        traffic.workerFrozenSeconds += header.frozenSeconds ?? 0
        traffic.workerBlockSeconds += header.blockSeconds ?? 0
        if header.frozenAhead == true { traffic.frozenAhead += 1 }
        return (
            node,
            TrainableBlock.Gradient(loss: Float(bitPattern: header.lossBits), correct: header.correct, tensors: parts)
        )
    }

    /// Keeps an early answer for a node of the upcoming step (handed out ahead, computed with weights sent
    /// for validation); true when it was one.
    private func keepEarly(_ identity: [UInt8], _ header: TuningGradient, _ values: [UInt8], sizes: [Int]) -> Bool {
        guard let plan, header.validation != true, header.step == plan.batch.step else { return false }
        let node = header.position..<(header.position + (header.leaves ?? 1))
        workers[identity]?.ahead.remove(node)
        if early[node] == nil,
            let (node, gradient) = nodeGradient(
                header, values, step: plan.batch.step, nodes: plan.nodes, chunks: plan.batch.chunks, sizes: sizes)
        {
            early[node] = gradient
        }
        return true
    }

    public func batchGradient(
        tensors: [[Float]], chunks: [TrainingChunk], epoch: Int, step: Int, upcoming: UpcomingBatch?
    ) throws -> TrainableBlock.Gradient {
        guard train != nil else { preconditionFailure("prepare(train:validation:) comes first") }
        let started = Date()
        let sizes = tensors.map(\.count)
        // One node of the reduction tree per worker (the local ones counted even before they are ready): each
        // worker sends one summed gradient for its node.
        let parts = max(1, setup.localWorkers, workers.values.filter(\.ready).count)
        // The nodes handed out ahead stay with their workers, which may have run their frozen pass already (or
        // computed them, when validation brought this step's weights).
        let nodes: [Range<Int>]
        var results: [Range<Int>: TrainableBlock.Gradient] = [:]
        if let plan {
            guard plan.batch == UpcomingBatch(chunks: chunks, epoch: epoch, step: step) else {
                throw DistributedTuningError("the trainer asked for step \(step), not the batch it announced")
            }
            nodes = plan.nodes
            results = early
        } else {
            nodes = ReductionTree.nodes(chunks: chunks.count, parts: parts)
        }
        plan = nil
        early = [:]
        for key in workers.keys {
            workers[key]!.holding = workers[key]!.ahead.subtracting(results.keys)
            workers[key]!.ahead = []
        }
        let next = upcoming.map { ($0, ReductionTree.nodes(chunks: $0.chunks.count, parts: parts)) }
        let handedAhead = Set(workers.values.flatMap(\.holding))
        var pending = nodes.filter { results[$0] == nil && !handedAhead.contains($0) }
        lastWorkerSeen = Date()

        /// Hands out work: the step's weights first to every worker holding a node of it, then pending nodes
        /// against credit, idle workers first (one node each), so that a second node queues behind a first only
        /// when nobody is idle; once none is pending, the upcoming step's nodes, without weights.
        func handOut() {
            let ready = workers.keys.sorted(by: { $0.lexicographicallyPrecedes($1) })
            for identity in ready {
                guard var worker = workers[identity], worker.ready, !worker.holding.isEmpty else { continue }
                _ = sendWeights(tensors, step: step, &worker, to: identity)
                if workers[identity] != nil { workers[identity] = worker }
            }
            for (identity, limit) in ready.map({ ($0, 1) }) + ready.map({ ($0, setup.chunksPerWorker) })
            where !pending.isEmpty {
                guard var worker = workers[identity], worker.ready else { continue }
                while worker.holding.count < limit, let node = pending.first {
                    guard sendWeights(tensors, step: step, &worker, to: identity),
                        sendNode(node, of: chunks, epoch: epoch, step: step, &worker, to: identity)
                    else { break }
                    worker.holding.insert(node)
                    pending.removeFirst()
                }
                if workers[identity] != nil { workers[identity] = worker }
            }
            guard pending.isEmpty, let (batch, nextNodes) = next else { return }
            // One node ahead per worker: a worker ready before the others does not take theirs (what is left
            // goes out when the step starts).
            let held = Set(workers.values.flatMap(\.ahead))
            var ahead = nextNodes.filter { !held.contains($0) }
            for identity in ready where !ahead.isEmpty {
                guard var worker = workers[identity], worker.ready else { continue }
                while worker.ahead.isEmpty, let node = ahead.first {
                    guard sendNode(node, of: batch.chunks, epoch: batch.epoch, step: batch.step, &worker, to: identity)
                    else { break }
                    worker.ahead.insert(node)
                    ahead.removeFirst()
                }
                if workers[identity] != nil { workers[identity] = worker }
            }
        }

        handOut()
        while results.count < nodes.count {
            try receive { identity, header, values in
                guard header.validation != true, header.step == step else { return }
                let node = header.position..<(header.position + (header.leaves ?? 1))
                workers[identity]!.holding.remove(node)
                guard results[node] == nil,
                    let (node, gradient) = nodeGradient(
                        header, values, step: step, nodes: nodes, chunks: chunks, sizes: sizes)
                else { return }
                results[node] = gradient
            }
            try keepWorkers()
            // Nodes nobody holds any more (their worker left) and not done go back in line.
            let held = Set(workers.values.flatMap(\.holding))
            for node in nodes where results[node] == nil && !held.contains(node) && !pending.contains(node) {
                pending.append(node)
                traffic.reassigned += 1
            }
            pending.sort { $0.lowerBound < $1.lowerBound }
            handOut()
        }
        // Every idle worker gets its node of the upcoming step before the update: its frozen pass runs while
        // this process sums, steps and validates.
        handOut()
        plan = next.map { (batch: $0.0, nodes: $0.1) }
        traffic.steps += 1
        traffic.waitSeconds += Date().timeIntervalSince(started)
        // The root from the nodes computed, along the same tree.
        func assemble(_ node: Range<Int>) -> TrainableBlock.Gradient {
            if let computed = results[node] { return computed }
            let (left, right) = ReductionTree.children(node)!
            return ReductionTree.add(assemble(left), assemble(right))
        }
        return assemble(0..<chunks.count)
    }

    /// Each validation batch's figures, computed by the workers: every batch goes, with the weights that start
    /// `step`, to a worker (one that holds its images first: a worker keeps the validation images' frozen
    /// features, so each image's frozen pass runs once per worker); the answers come back in any order and are
    /// returned in batch order, each the worker's own `TrainableBlock.batchGradient` figures, the same bits as
    /// the trainer's. Workers holding nodes of `step` handed out ahead get the weights too and may answer
    /// them now; those gradients are kept for `batchGradient`.
    public func validationFigures(tensors: [[Float]], batches: [ValidationBatch], step: Int) throws
        -> [ValidationFigures]
    {
        guard let validation else { preconditionFailure("prepare(train:validation:) without validation images") }
        let started = Date()
        let sizes = tensors.map(\.count)
        var results: [Int: ValidationFigures] = [:]
        let byStart = Dictionary(uniqueKeysWithValues: batches.map { ($0.start, $0) })
        var pending = batches
        for key in workers.keys { workers[key]!.validating = [] }
        lastWorkerSeen = Date()

        func handOut() {
            let ready = workers.keys.sorted(by: { $0.lexicographicallyPrecedes($1) })
            // Nodes of this step handed out ahead can be computed as soon as their workers have the weights.
            if plan?.batch.step == step {
                for identity in ready {
                    guard var worker = workers[identity], worker.ready, !worker.ahead.isEmpty else { continue }
                    _ = sendWeights(tensors, step: step, &worker, to: identity)
                    if workers[identity] != nil { workers[identity] = worker }
                }
            }
            for limit in [1, setup.chunksPerWorker] {
                var i = 0
                while i < pending.count {
                    let batch = pending[i]
                    let indices = Set(validation.indices[batch.start..<(batch.start + batch.count)])
                    // Ready workers with credit (a failed send drops a worker from `workers`).
                    let candidates = ready.compactMap { identity in
                        workers[identity].flatMap { $0.ready && $0.validating.count < limit ? (identity, $0) : nil }
                    }
                    guard
                        let (identity, chosen) = candidates.first(where: { indices.isSubset(of: $0.1.validationImages) }
                        )
                            ?? candidates.min(by: { $0.1.validating.count < $1.1.validating.count })
                    else { break }
                    var worker = chosen
                    let header = TuningChunk(
                        jobID: job.jobID, step: step, position: batch.start, epoch: 0, indices: [], labels: [],
                        shipped: [], validation: true)
                    if sendWeights(tensors, step: step, &worker, to: identity),
                        sendChunk(
                            header, rows: Array(batch.start..<(batch.start + batch.count)), of: validation,
                            held: &worker.validationImages, to: identity)
                    {
                        worker.validating.insert(batch.start)
                        pending.remove(at: i)
                    } else {
                        i += 1
                    }
                    if workers[identity] != nil { workers[identity] = worker }
                }
            }
        }

        handOut()
        while results.count < batches.count {
            try receive { identity, header, values in
                if keepEarly(identity, header, values, sizes: sizes) { return }
                guard header.validation == true, header.step == step, let batch = byStart[header.position] else {
                    return
                }
                workers[identity]!.validating.remove(batch.start)
                guard results[batch.start] == nil, header.count == batch.count else { return }
                results[batch.start] = ValidationFigures(
                    loss: Float(bitPattern: header.lossBits), correct: header.correct)
            }
            try keepWorkers()
            // Batches nobody computes any more (their worker left) and not done go back in line.
            let held = Set(workers.values.flatMap(\.validating))
            for batch in batches
            where results[batch.start] == nil && !held.contains(batch.start) && !pending.contains(batch) {
                pending.append(batch)
                traffic.reassigned += 1
            }
            pending.sort { $0.start < $1.start }
            handOut()
        }
        traffic.validationSeconds += Date().timeIntervalSince(started)
        return batches.map { results[$0.start]! }
    }

    /// Handshakes, weights requests, readiness, heartbeats and goodbyes.
    private func handle(_ message: WireMessage, from identity: [UInt8]) {
        let now = Date()
        switch message {
        case .hello(let hello):
            guard let workerProfile = hello.computeProfile else {
                send(
                    .reject(Rejection(reason: "the worker did not report its compute profile; run the same build")),
                    to: identity)
                return
            }
            if let profile {
                let differences = profile.differences(from: workerProfile)
                guard differences.isEmpty else {
                    let reason =
                        "this job's gradients are computed with \(profile.summary), this worker's differ: "
                        + differences.joined(separator: "; ") + "; the model would depend on which worker computed"
                    logger.warning("refusing worker \(hello.workerName): \(reason)")
                    send(.reject(Rejection(reason: reason)), to: identity)
                    return
                }
            } else {
                profile = workerProfile
            }
            if workers[identity] == nil {
                workers[identity] = Worker(name: hello.workerName, lastHeard: now, lastSent: now)
                logger.info("worker \(hello.workerName) joined (pid \(hello.pid))")
            }
            workers[identity]!.lastHeard = now
            send(.welcome(Welcome(job: job, tuning: setup.tuning)), to: identity)
        case .needWeights(let request):
            guard workers[identity] != nil, request.sha256 == job.weightsSHA256 else { return }
            workers[identity]!.lastHeard = now
            if weightsBytes == nil {
                weightsBytes = FileManager.default.contents(atPath: setup.weightsPath).map(Array.init)
            }
            guard let bytes = weightsBytes, bytes.count == job.weightsSize else {
                logger.error("cannot read \(setup.weightsPath) to send it to a worker")
                return
            }
            _ = send(
                .weights(WeightsTransfer(sha256: job.weightsSHA256, size: bytes.count), bytes: bytes), to: identity)
        case .request(let request):
            guard workers[identity] != nil else {
                send(.reset(Reset(reason: "unknown worker; send hello")), to: identity)
                return
            }
            workers[identity]!.lastHeard = now
            if request.jobID == job.jobID, !workers[identity]!.ready {
                workers[identity]!.ready = true
                logger.info("worker \(workers[identity]!.name) is ready")
            }
        case .heartbeat:
            guard workers[identity] != nil else {
                send(.reset(Reset(reason: "unknown worker; send hello")), to: identity)
                return
            }
            workers[identity]!.lastHeard = now
        case .goodbye(let goodbye):
            if let worker = workers[identity] { logger.notice("worker \(worker.name) left: \(goodbye.reason)") }
            drop(identity)
        case .result, .tuneGradient, .welcome, .shard, .weights, .end, .reject, .reset, .tuneWeights, .tuneChunk:
            break
        }
    }

    private func drop(_ identity: [UInt8]) {
        workers[identity] = nil
    }

    @discardableResult
    private func send(_ message: WireMessage, to identity: [UInt8]) -> Bool {
        let frames = WireCodec.encode(message)
        do {
            try socket.send([identity] + frames)
        } catch {
            if let error = error as? WireError, error.reason == .peerUnreachable {
                if let worker = workers[identity] {
                    logger.warning("worker \(worker.name) is gone (its connection closed); its chunks go to others")
                }
                drop(identity)
            } else {
                logger.warning("cannot send \(message.kind) to a worker: \(error)")
            }
            return false
        }
        workers[identity]?.lastSent = Date()
        switch message {
        case .tuneWeights: traffic.otherDown += frames[0].count
        case .tuneChunk: traffic.otherDown += frames[0].count
        default: traffic.otherDown += frames.reduce(0) { $0 + $1.count }
        }
        return true
    }

    /// Tells every worker the job is over, stops the local workers and closes the socket.
    public func close() {
        guard !closed else { return }
        closed = true
        for identity in workers.keys {
            send(.end(JobEnd(jobID: job.jobID, reason: "fine-tuning finished")), to: identity)
        }
        pool?.shutDown(grace: 3)
        socket.close()
        zapHandler?.stop()
        localKeys?.remove()
        context.terminate()
    }
}

/// Why distributed fine-tuning cannot start or go on.
public struct DistributedTuningError: ReportedError {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var category: FailureCategory { .failedRun }
    public var description: String { "fine-tuning across workers: \(message)" }
}
