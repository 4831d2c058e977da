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
/// fine-tuning job in the order they arrived, computes each chunk's gradient (`FineTuning.ChunkGradients`, the
/// trainer's own definition) and puts it in an outbox that the I/O thread drains.
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

    private func run() {
        while true {
            condition.lock()
            while inbox.isEmpty && !stopped { condition.wait() }
            if stopped {
                condition.unlock()
                return
            }
            let work = inbox.removeFirst()
            let generation = self.generation
            let jobID = self.jobID
            condition.unlock()
            switch work {
            case .forgetImages:
                pixels = [:]
                frozen = [:]
            case .weights(_, let step, let values):
                guard var block, let tensors = FloatFrame.tensors(values, sizes: block.tensors.map(\.count)) else {
                    continue
                }
                block.tensors = tensors
                self.block = block
                weightsStep = step
            case .chunk(let session, let chunk, let images):
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

    /// The chunk's gradient, or nil when the worker does not hold its weights or an image's pixels.
    private func compute(_ chunk: TuningChunk, images: [[UInt8]]) -> (TuningGradient, [UInt8])? {
        guard let computer, let block, weightsStep == chunk.step else { return nil }
        var next = images.makeIterator()
        for (index, shipped) in zip(chunk.indices, chunk.shipped) where shipped {
            guard let image = next.next(), image.count == computer.pixelCount else { return nil }
            pixels[index] = image
        }
        let started = Date()
        let mapSize = computer.base.featureCount
        var features = [Float](repeating: 0, count: chunk.indices.count * mapSize)
        for (k, index) in chunk.indices.enumerated() {
            if cacheFrozen, let cached = frozen[index] {
                features.replaceSubrange((k * mapSize)..<((k + 1) * mapSize), with: cached)
                continue
            }
            guard let image = pixels[index] else { return nil }
            features.withUnsafeMutableBufferPointer { out in
                image.withUnsafeBufferPointer { image in
                    BLASThreads.withFixedCount(1) {
                        computer.frozenFeatures(
                            pixels: image, index: index, epoch: cacheFrozen ? nil : chunk.epoch,
                            into: out.baseAddress! + k * mapSize)
                    }
                }
            }
            if cacheFrozen { frozen[index] = Array(features[(k * mapSize)..<((k + 1) * mapSize)]) }
        }
        let frozenDone = Date()
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
                frozenSeconds: frozenDone.timeIntervalSince(started),
                blockSeconds: Date().timeIntervalSince(frozenDone), leaves: leafCounts.count),
            values
        )
    }
}
