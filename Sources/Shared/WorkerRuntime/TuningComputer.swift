import Augmentation
import BLAS
import FineTuning
import Foundation
import ImageInput
import TopModel
import VGG16
import Wire

/// A fine-tuning node computed and ready to be sent back, or why it could not be.
struct ComputedChunk: Sendable {
    let session: Int
    let gradient: TuningGradient
    let values: [UInt8]
    /// Set when the worker lacks what the node needs (the step's weights, an image's pixels): the session
    /// then leaves and registers again, so that the coordinator gives the node to someone and starts this
    /// worker afresh.
    var failure: String? = nil
}

/// The fine-tuning side of a worker: one compute thread that takes the step's weights and the chunks of a
/// fine-tuning job, computes each chunk's gradient (`FineTuning.ChunkGradients`, the trainer's own definition)
/// and puts it in an outbox that the I/O thread drains.
///
/// A chunk may arrive before its step's weights (the coordinator hands out the next step's nodes while it
/// reduces and updates): its frozen pass, which needs no trainable weights, runs at once and the block5 + top
/// pass when the weights come. The compute thread picks, in order: weights (the newest step wins: a step's
/// weights are sent only once every gradient of the step before is in, so older chunks are stale and are
/// dropped unanswered), a chunk of the current step, then the frozen pass of a chunk still waiting for its
/// weights. `forgetImages` keeps its place in the queue: nothing behind it is started before it.
///
/// Keeps, for the job, the pixels of every image received (an image crosses the link once per worker) and,
/// without augmentation, each image's frozen `block4_pool` features (its frozen pass runs once per worker).
/// All mutable state is guarded by `condition`, except what only the compute thread touches (`computer`,
/// `block`, the caches), which is set up by `configure` under the lock and read by the compute thread after
/// taking it; `@unchecked Sendable` rests on that.
final class TuningComputer: @unchecked Sendable {
    private enum Work {
        case weights(session: Int, step: Int, values: [UInt8])
        case chunk(session: Int, chunk: TuningChunk, images: [[UInt8]])
        case forgetImages
    }

    private let condition = NSCondition()
    private var inbox: [Work] = []
    private var outbox: [ComputedChunk] = []
    private var jobID = ""
    private var generation = 0
    private var stopped = false
    private var thread: Thread?

    // Job state, replaced under the lock by `configure`; used by the compute thread.
    private var computer: ChunkGradients?
    private var block: TrainableBlock?
    private var cacheFrozen = false
    private var weightsStep = -1
    private var pixels: [Int: [UInt8]] = [:]
    private var frozen: [Int: [Float]] = [:]
    /// The validation split's pixels and frozen features (never augmented: computed once), by split index.
    private var validationPixels: [Int: [UInt8]] = [:]
    private var validationFrozen: [Int: [Float]] = [:]
    /// Frozen passes done ahead of their step's weights, by (step, node position), with the node's images and
    /// seconds. Written by the compute thread and by `configure`, always under the lock.
    private var ahead: [StepNode: (indices: [Int], features: [Float], seconds: Double)] = [:]

    private struct StepNode: Hashable {
        var step: Int
        var position: Int
        var validation: Bool

        init(_ chunk: TuningChunk) {
            (step, position, validation) = (chunk.step, chunk.position, chunk.validation ?? false)
        }
    }

    func start() {
        let thread = Thread { [self] in run() }
        thread.name = "tuning-compute"
        thread.stackSize = 16 << 20
        self.thread = thread
        thread.start()
    }

    /// Sets up the job (nil: none); work queued before is dropped. Throws when the weights or the settings do
    /// not make the job's trainable block.
    func configure(job: JobSpec?, tuning: TuningSpec?, weights: VGG16Weights?) throws {
        var computer: ChunkGradients?
        var block: TrainableBlock?
        if let job, let tuning, let weights {
            guard let preprocessing = Preprocessing(rawValue: job.preprocessing) else {
                throw FineTuningError.structure("unknown preprocessing \(job.preprocessing)")
            }
            let augmentation: AugmentationSettings
            do { augmentation = try AugmentationSettings(parsing: tuning.augmentation) } catch {
                throw FineTuningError.structure("the job's augmentation '\(tuning.augmentation)': \(error)")
            }
            let made = try ChunkGradients(
                weights: weights, height: job.imageHeight, width: job.imageWidth, preprocessing: preprocessing,
                augmentation: augmentation, seed: tuning.seed, dropoutRate: tuning.dropoutRate)
            guard made.base.featureCount == job.featureCount, weights.layers.count >= 3 else {
                throw FineTuningError.structure(
                    "this worker's frozen pass gives \(made.base.featureCount) values per image, the job expects "
                        + "\(job.featureCount)")
            }
            let top = try TopModelWeights(
                inputs: tuning.topInputs, hidden: tuning.topHidden, classes: tuning.classes,
                hiddenKernel: [Float](repeating: 0, count: tuning.topInputs * tuning.topHidden),
                hiddenBias: [Float](repeating: 0, count: tuning.topHidden),
                outputKernel: [Float](repeating: 0, count: tuning.topHidden * tuning.classes),
                outputBias: [Float](repeating: 0, count: tuning.classes))
            block = try TrainableBlock(
                convLayers: Array(weights.layers.suffix(3)), top: top, inputHeight: made.base.outputHeight,
                inputWidth: made.base.outputWidth, inputChannels: made.base.outputChannels,
                frozenLayers: tuning.frozenBlockLayers ?? 0)
            computer = made
        }
        condition.lock()
        jobID = job?.jobID ?? ""
        generation += 1
        self.computer = computer
        self.block = block
        cacheFrozen = tuning?.cacheFrozen ?? false
        weightsStep = -1
        pixels = [:]
        frozen = [:]
        validationPixels = [:]
        validationFrozen = [:]
        ahead = [:]
        inbox.removeAll()
        outbox.removeAll()
        condition.unlock()
    }

    var isConfigured: Bool {
        condition.lock()
        defer { condition.unlock() }
        return computer != nil
    }

    func submitWeights(session: Int, _ weights: TuningWeights, values: [UInt8]) {
        enqueue(.weights(session: session, step: weights.step, values: values))
    }

    func submitChunk(session: Int, _ chunk: TuningChunk, images: [[UInt8]]) {
        enqueue(.chunk(session: session, chunk: chunk, images: images))
    }

    /// Developer hook: drops the pixels and frozen features kept so far (in order with the work queued).
    func forgetImages() { enqueue(.forgetImages) }

    private func enqueue(_ work: Work) {
        condition.lock()
        inbox.append(work)
        condition.signal()
        condition.unlock()
    }

    func takeResults() -> [ComputedChunk] {
        condition.lock()
        defer { condition.unlock() }
        let results = outbox
        outbox.removeAll()
        return results
    }

    /// Drops queued work and results; the caches stay (they belong to the job, not the connection).
    func abandon() {
        condition.lock()
        inbox.removeAll()
        outbox.removeAll()
        generation += 1
        condition.unlock()
    }

    func stop() {
        condition.lock()
        stopped = true
        condition.broadcast()
        condition.unlock()
    }

    /// What the compute thread does next, taken from the inbox under the lock.
    private enum Action {
        case weights(step: Int, values: [UInt8])
        case forgetImages
        case gradient(session: Int, chunk: TuningChunk, images: [[UInt8]])
        case frozenAhead(chunk: TuningChunk, images: [[UInt8]])
    }

    /// The next action, removing it from the inbox (a chunk computed ahead stays there until its weights
    /// come); nil when nothing can be done yet. Called with the lock held.
    private func nextAction() -> Action? {
        // Weights first, wherever they are queued: the newest step's.
        if let last = inbox.lastIndex(where: { if case .weights = $0 { true } else { false } }),
            case .weights(_, let step, let values) = inbox[last]
        {
            inbox.removeAll { if case .weights = $0 { true } else { false } }
            if step > weightsStep { return .weights(step: step, values: values) }
        }
        // Chunks of steps whose weights were replaced are stale: the coordinator has moved on.
        inbox.removeAll { if case .chunk(_, let chunk, _) = $0 { chunk.step < weightsStep } else { false } }
        let barrier = inbox.firstIndex { if case .forgetImages = $0 { true } else { false } } ?? inbox.endIndex
        if barrier == inbox.startIndex, barrier < inbox.endIndex {
            inbox.removeFirst()
            return .forgetImages
        }
        let before = inbox[..<barrier]
        if let i = before.firstIndex(where: {
            if case .chunk(_, let c, _) = $0 { c.step == weightsStep } else { false }
        }),
            case .chunk(let session, let chunk, let images) = inbox[i]
        {
            inbox.remove(at: i)
            return .gradient(session: session, chunk: chunk, images: images)
        }
        for work in before {
            if case .chunk(_, let chunk, let images) = work,
                ahead[StepNode(chunk)] == nil
            {
                return .frozenAhead(chunk: chunk, images: images)
            }
        }
        return nil
    }

    private func run() {
        while true {
            condition.lock()
            var action = nextAction()
            while action == nil && !stopped {
                condition.wait()
                action = nextAction()
            }
            guard let action, !stopped else {
                condition.unlock()
                return
            }
            let generation = self.generation
            let jobID = self.jobID
            condition.unlock()
            switch action {
            case .forgetImages:
                pixels = [:]
                frozen = [:]
                validationPixels = [:]
                validationFrozen = [:]
                condition.lock()
                ahead = [:]
                condition.unlock()
            case .weights(let step, let values):
                condition.lock()
                ahead = ahead.filter { $0.key.step >= step }
                condition.unlock()
                guard var block, let tensors = FloatFrame.tensors(values, sizes: block.tensors.map(\.count)) else {
                    continue
                }
                block.tensors = tensors
                self.block = block
                weightsStep = step
            case .frozenAhead(let chunk, let images):
                guard chunk.jobID == jobID else { continue }
                let started = Date()
                // A chunk whose images are missing gets no features ahead; its gradient pass says so.
                let features = frozenPass(chunk, images: images) ?? []
                condition.lock()
                if self.generation == generation {
                    ahead[StepNode(chunk)] = (
                        chunk.indices, features, Date().timeIntervalSince(started)
                    )
                }
                condition.unlock()
            case .gradient(let session, let chunk, let images):
                guard chunk.jobID == jobID else { continue }
                let computed: ComputedChunk
                if let result = compute(chunk, images: images) {
                    computed = ComputedChunk(session: session, gradient: result.0, values: result.1)
                } else {
                    let empty = TuningGradient(
                        jobID: chunk.jobID, step: chunk.step, position: chunk.position, lossBits: 0, correct: 0,
                        count: chunk.indices.count, valueCount: 0)
                    computed = ComputedChunk(
                        session: session, gradient: empty, values: [],
                        failure: "this worker lacks the weights of step \(chunk.step) or an image of its chunks")
                }
                condition.lock()
                if self.generation == generation { outbox.append(computed) }
                condition.unlock()
            }
        }
    }

    /// The node's frozen features `[images, block4_pool]` (augmented as drawn for its epoch; a validation
    /// batch's never, and kept), or nil when an image's pixels are missing. Keeps the pixels shipped with it.
    private func frozenPass(_ chunk: TuningChunk, images: [[UInt8]]) -> [Float]? {
        guard let computer else { return nil }
        let validation = chunk.validation ?? false
        let keepFrozen = cacheFrozen || validation
        var next = images.makeIterator()
        for (index, shipped) in zip(chunk.indices, chunk.shipped) where shipped {
            guard let image = next.next(), image.count == computer.pixelCount else { return nil }
            if validation { validationPixels[index] = image } else { pixels[index] = image }
        }
        let mapSize = computer.base.featureCount
        var features = [Float](repeating: 0, count: chunk.indices.count * mapSize)
        for (k, index) in chunk.indices.enumerated() {
            if keepFrozen, let cached = validation ? validationFrozen[index] : frozen[index] {
                features.replaceSubrange((k * mapSize)..<((k + 1) * mapSize), with: cached)
                continue
            }
            guard let image = validation ? validationPixels[index] : pixels[index] else { return nil }
            features.withUnsafeMutableBufferPointer { out in
                image.withUnsafeBufferPointer { image in
                    BLASThreads.withFixedCount(1) {
                        computer.frozenFeatures(
                            pixels: image, index: index, epoch: keepFrozen ? nil : chunk.epoch,
                            into: out.baseAddress! + k * mapSize)
                    }
                }
            }
            if keepFrozen {
                let kept = Array(features[(k * mapSize)..<((k + 1) * mapSize)])
                if validation { validationFrozen[index] = kept } else { frozen[index] = kept }
            }
        }
        return features
    }

    /// The chunk's gradient, or nil when the worker does not hold its weights or an image's pixels.
    private func compute(_ chunk: TuningChunk, images: [[UInt8]]) -> (TuningGradient, [UInt8])? {
        guard let computer, let block, weightsStep == chunk.step else { return nil }
        let mapSize = computer.base.featureCount
        let started = Date()
        let features: [Float]
        let frozenSeconds: Double
        var frozenAhead = false
        condition.lock()
        let done = ahead.removeValue(forKey: StepNode(chunk))
        condition.unlock()
        if let done, done.indices == chunk.indices, done.features.count == chunk.indices.count * mapSize {
            (features, frozenSeconds, frozenAhead) = (done.features, done.seconds, true)
        } else {
            // Not computed ahead, or an image was missing then (it may have been shipped since).
            guard let computed = frozenPass(chunk, images: images) else { return nil }
            (features, frozenSeconds) = (computed, Date().timeIntervalSince(started))
        }
        let blockStarted = Date()
        if chunk.validation == true {
            // The trainer's own validation pass on one batch: forward and backward, no dropout.
            let result = BLASThreads.withFixedCount(1) {
                features.withUnsafeBufferPointer {
                    block.batchGradient(input: $0.baseAddress!, labels: chunk.labels, batch: chunk.indices.count)
                }
            }
            return (
                TuningGradient(
                    jobID: chunk.jobID, step: chunk.step, position: chunk.position, lossBits: result.loss.bitPattern,
                    correct: result.correct, count: chunk.indices.count, valueCount: 0, frozenSeconds: frozenSeconds,
                    blockSeconds: Date().timeIntervalSince(blockStarted), frozenAhead: frozenAhead, validation: true),
                []
            )
        }
        // The node's chunks, each weighted by its share of the batch, summed along the fixed tree.
        let leafCounts = chunk.leafCounts ?? [chunk.indices.count]
        let batchCount = chunk.batchCount ?? chunk.indices.count
        let starts = leafCounts.reduce(into: [0]) { $0.append($0.last! + $1) }
        let gradient = BLASThreads.withFixedCount(1) {
            ReductionTree.reduce(0..<leafCounts.count) { leaf in
                let range = starts[leaf]..<starts[leaf + 1]
                let part = computer.gradient(
                    block: block,
                    features: Array(features[(range.lowerBound * mapSize)..<(range.upperBound * mapSize)]),
                    labels: Array(chunk.labels[range]), indices: Array(chunk.indices[range]), epoch: chunk.epoch)
                return ChunkGradients.weighted(part, count: range.count, total: batchCount)
            }
        }
        let values = FloatFrame.bytes(gradient.tensors)
        return (
            TuningGradient(
                jobID: chunk.jobID, step: chunk.step, position: chunk.position, lossBits: gradient.loss.bitPattern,
                correct: gradient.correct, count: chunk.indices.count, valueCount: values.count / 4,
                frozenSeconds: frozenSeconds, blockSeconds: Date().timeIntervalSince(blockStarted),
                leaves: leafCounts.count, frozenAhead: frozenAhead),
            values
        )
    }
}
