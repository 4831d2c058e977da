import Augmentation
import BLAS
import FileIntegrity
import Foundation
import HDF5
import ImageInput
import Reporting
import TopModel
import VGG16

/// Settings of a fine-tuning run. The defaults are the Keras recipe's: 50 epochs, batch 32, SGD with
/// learning rate 1e-4 and momentum 0.9, augmentation `shear=0.2,zoom=0.2,horizontal-flip`, dropout 0.5,
/// shuffling each epoch.
public struct FineTuningOptions: Sendable, Equatable {
    public var epochs = 50
    public var batchSize = 32
    public var learningRate = 1e-4
    public var momentum = 0.9
    public var augmentation = AugmentationSettings.recipe
    /// Seeds the shuffling, the augmentation draws and the dropout masks (each a pure function of the seed,
    /// the epoch and the image's index).
    public var seed: UInt64 = 0
    public var dropoutRate = 0.5
    public var shuffle = true
    /// Stop when `val_loss` has not improved for this many epochs, and end with the weights of the best
    /// epoch (Keras' `EarlyStopping(monitor="val_loss", restore_best_weights=True)`, as `train` does).
    /// Needs validation images. nil: no early stopping.
    public var earlyStoppingPatience: Int? = nil
    /// Images per gradient chunk: each batch is cut into chunks of this many images (the last one shorter)
    /// whose gradients are summed in order (`TrainingChunk`). Part of what decides the model's bytes, never
    /// the number of workers.
    public var chunkSize = 8
    /// Conv layers of block5 kept frozen, from its first: 0 trains from `block5_conv1` (the recipe), 1 from
    /// `block5_conv2`, 2 from `block5_conv3`.
    public var frozenBlockLayers = 0

    public init() {}

    func validate() throws {
        func check(_ ok: Bool, _ message: String) throws {
            if !ok { throw FineTuningError.invalidArgument(message) }
        }
        try check(epochs >= 1, "epochs must be at least 1, got \(epochs)")
        try check(batchSize >= 1, "batch size must be at least 1, got \(batchSize)")
        try check(learningRate > 0 && learningRate.isFinite, "learning rate must be positive, got \(learningRate)")
        try check(momentum >= 0 && momentum < 1, "momentum must be in [0, 1), got \(momentum)")
        try check(dropoutRate >= 0 && dropoutRate < 1, "dropout rate must be in [0, 1), got \(dropoutRate)")
        try check(
            (0...2).contains(frozenBlockLayers), "frozen block5 layers must be 0...2, got \(frozenBlockLayers)")
        try check(chunkSize >= 1 && chunkSize <= 4096, "chunk size must be 1...4096, got \(chunkSize)")
        try check((earlyStoppingPatience ?? 0) >= 0, "patience must be 0 or more, got \(earlyStoppingPatience ?? 0)")
    }

    /// A fingerprint of everything that decides the result, stored in checkpoints: a checkpoint of other
    /// settings is not resumed.
    var fingerprint: String {
        "epochs-independent: batch=\(batchSize) lr=\(learningRate) momentum=\(momentum) augment=\(augmentation) "
            + "seed=\(seed) dropout=\(dropoutRate) shuffle=\(shuffle) chunk=\(chunkSize) frozen5=\(frozenBlockLayers) patience=\(earlyStoppingPatience.map(String.init) ?? "none")"
    }
}

/// One labelled split prepared for fine-tuning: every readable image decoded and resized to the model's size
/// (RGB bytes, kept in memory), with its label and its index in the split's file list.
public struct FineTuningImages: Sendable {
    public let height: Int
    public let width: Int
    /// `[count, height, width, 3]` RGB bytes.
    public let pixels: [UInt8]
    public let labels: [Int32]
    /// Each image's index in the split's file list: the key of its augmentation draws.
    public let indices: [Int]
    /// Files that could not be read, with the reason.
    public let skipped: [(filename: String, reason: String)]

    public var count: Int { labels.count }

    /// Reads and resizes every file of `scan` as Keras' `load_img` does (`interpolation` from the model).
    public static func load(_ scan: DirectoryScan, height: Int, width: Int, interpolation: Interpolation) -> Self {
        var pixels: [UInt8] = []
        var labels: [Int32] = []
        var indices: [Int] = []
        var skipped: [(String, String)] = []
        for (index, entry) in scan.entries.enumerated() {
            do {
                let bytes = try ImageDecoder.readFile(entry.path, filename: entry.filename)
                var image = try ImageDecoder.decode(bytes, filename: entry.filename)
                if image.width != width || image.height != height {
                    image = Resize.apply(image, width: width, height: height, interpolation: interpolation)
                }
                pixels += image.rgb
                labels.append(entry.label)
                indices.append(index)
            } catch {
                skipped.append((entry.filename, error.reason))
            }
        }
        return Self(height: height, width: width, pixels: pixels, labels: labels, indices: indices, skipped: skipped)
    }

    public init(
        height: Int, width: Int, pixels: [UInt8], labels: [Int32], indices: [Int],
        skipped: [(filename: String, reason: String)] = []
    ) {
        precondition(pixels.count == labels.count * height * width * 3 && indices.count == labels.count)
        self.height = height
        self.width = width
        self.pixels = pixels
        self.labels = labels
        self.indices = indices
        self.skipped = skipped
    }
}

/// Fine-tunes the last convolution block and the top model on images, in one process.
///
/// Per batch: each image's augmentation (drawn from the seed, the epoch and its index), preprocessing, the
/// frozen blocks 1–4 (`ConvBase` to `block4_pool`), then block5 + top forward and backward, then one
/// SGD+momentum step. After each epoch a checkpoint (weights, momentum, epoch; the random state is the seed
/// and the epoch) is written atomically; a run that finds a checkpoint of the same settings resumes after
/// its epoch and ends with the same bytes as an uninterrupted run. Without augmentation the frozen pass of
/// each image runs once (its `block4_pool` features are kept for every epoch), which gives the same result
/// far cheaper. Synchronous and CPU-bound: call it from a thread you own. OpenBLAS is pinned to one thread
/// while it runs.
public final class FineTuner {
    public let weights: VGG16Weights
    public let start: TopModel
    public let options: FineTuningOptions
    let base: ConvBase
    let preprocessing: Preprocessing
    let chunkGradients: ChunkGradients

    /// Prepares the frozen base for the top model's image size. Throws when the top model was not
    /// trained on `block5_pool` features of these weights' shape.
    public init(weights: VGG16Weights, topModel: TopModel, options: FineTuningOptions = FineTuningOptions()) throws {
        try options.validate()
        let p = topModel.provenance
        guard p.featureLayer == PoolingLayer.block5_pool.rawValue else {
            throw FineTuningError.structure(
                "the top model was trained on \(p.featureLayer) features; fine-tuning needs block5_pool features")
        }
        guard let preprocessing = Preprocessing(rawValue: p.preprocess) else {
            throw FineTuningError.structure("the top model's preprocessing '\(p.preprocess)' is unknown")
        }
        self.weights = weights
        self.start = topModel
        self.options = options
        self.preprocessing = preprocessing
        chunkGradients = try ChunkGradients(
            weights: weights, height: p.imageHeight, width: p.imageWidth, preprocessing: preprocessing,
            augmentation: options.augmentation, seed: options.seed, dropoutRate: options.dropoutRate)
        base = chunkGradients.base
        _ = try initialBlock()
    }

    /// Values per image of the frozen pass' output (`block4_pool`).
    public var frozenFeatureCount: Int { base.featureCount }

    func initialBlock() throws -> TrainableBlock {
        try TrainableBlock(
            convLayers: Array(weights.layers.suffix(3)), top: start.weights, inputHeight: base.outputHeight,
            inputWidth: base.outputWidth, inputChannels: base.outputChannels, frozenLayers: options.frozenBlockLayers)
    }

    /// Frozen-base output `[count, block4 map]` of images `rows` of `images`, each augmented as drawn for
    /// `epoch` (nil: no augmentation).
    func frozenFeatures(_ images: FineTuningImages, rows: [Int], epoch: Int?) -> [Float] {
        let size = chunkGradients.pixelCount
        var out = [Float](repeating: 0, count: rows.count * base.featureCount)
        images.pixels.withUnsafeBufferPointer { pixels in
            out.withUnsafeMutableBufferPointer { out in
                for (k, row) in rows.enumerated() {
                    chunkGradients.frozenFeatures(
                        pixels: UnsafeBufferPointer(rebasing: pixels[(row * size)..<((row + 1) * size)]),
                        index: images.indices[row], epoch: epoch, into: out.baseAddress! + k * base.featureCount)
                }
            }
        }
        return out
    }

    /// The order of the training rows in `epoch`: a Fisher–Yates shuffle from the seed and the epoch.
    func order(count: Int, epoch: Int) -> [Int] {
        var rows = Array(0..<count)
        guard options.shuffle else { return rows }
        var random = AugmentationRandom(seed: options.seed ^ 0x5348_5546_464C_4521, epoch: epoch, index: 0)
        for i in stride(from: count - 1, to: 0, by: -1) {
            rows.swapAt(i, Int(random.next() % UInt64(i + 1)))
        }
        return rows
    }

    /// The batch after the one starting at `start` of `epoch` (whose order is `rows`): the next one of the epoch,
    /// else the next epoch's first; nil after the last epoch's last batch.
    func upcomingBatch(after start: Int, epoch: Int, rows: [Int], trainCount: Int) -> UpcomingBatch? {
        let batchesPerEpoch = (trainCount + options.batchSize - 1) / options.batchSize
        let next = start + options.batchSize
        if next < rows.count {
            let batchRows = Array(rows[next..<min(next + options.batchSize, rows.count)])
            return UpcomingBatch(
                chunks: TrainingChunk.split(batchRows, size: options.chunkSize), epoch: epoch,
                step: epoch * batchesPerEpoch + next / options.batchSize)
        }
        guard epoch + 1 < options.epochs else { return nil }
        let nextRows = order(count: trainCount, epoch: epoch + 1)
        return UpcomingBatch(
            chunks: TrainingChunk.split(Array(nextRows.prefix(options.batchSize)), size: options.chunkSize),
            epoch: epoch + 1, step: (epoch + 1) * batchesPerEpoch)
    }

    /// Trains for `options.epochs` epochs (resuming from `checkpointPath` when it holds a checkpoint of the
    /// same settings and start), calling `onEpoch` after each with Keras' epoch figures (`loss`, `accuracy`:
    /// training-mode running figures as Keras' `fit` reports them); returns the fine-tuned model and the
    /// history of every epoch, those before a resumption included (kept in the checkpoint). `progress` gets a
    /// report after each batch: task `finetune`, training images done over all epochs (epochs before a
    /// resumption counted as already done), with the epoch and the epoch's running loss and accuracy as fields;
    /// it is called on the calling thread.
    public func run(
        train: FineTuningImages, validation: FineTuningImages?, checkpointPath: String?,
        source: ChunkGradientSource? = nil, progress: ProgressSink = .none, onEpoch: (EpochRecord) -> Void = { _ in }
    ) throws -> (model: FineTunedModel, history: TrainingHistory) {
        guard train.count > 0 else { throw FineTuningError.invalidArgument("no readable training image") }
        if options.earlyStoppingPatience != nil, (validation?.count ?? 0) == 0 {
            throw FineTuningError.invalidArgument("early stopping watches val_loss, but there are no validation images")
        }
        var block = try initialBlock()
        let optimizer = TensorOptimizer(
            .sgd(learningRate: options.learningRate, momentum: options.momentum),
            tensorSizes: block.tensors.map(\.count))
        var firstEpoch = 0
        var records: [EpochRecord] = []
        var stopping = EarlyStoppingState()
        if let checkpointPath, FileManager.default.fileExists(atPath: checkpointPath) {
            let checkpoint = try FineTuningCheckpoint.load(checkpointPath)
            guard checkpoint.fingerprint == options.fingerprint, checkpoint.startSHA256 == startFingerprint else {
                throw FineTuningError.output(
                    path: checkpointPath, reason: "the checkpoint was written with other settings or weights")
            }
            block.tensors = checkpoint.tensors
            optimizer.slots = checkpoint.slots
            firstEpoch = checkpoint.epochsDone
            records = checkpoint.history
            stopping = checkpoint.stopping
        }
        let mapSize = base.featureCount
        try BLASThreads.withFixedCount(1) {
            // Frozen features of the validation images, and without augmentation of the training images: the
            // same every epoch, computed once (on the pinned thread count, like every other product).
            // With a source, the workers compute (and keep) them.
            let validationFeatures = validation.flatMap { v in
                v.count > 0 && source == nil ? frozenFeatures(v, rows: Array(0..<v.count), epoch: nil) : nil
            }
            let cachedTrain =
                options.augmentation.isNone && source == nil
                ? frozenFeatures(train, rows: Array(0..<train.count), epoch: nil) : nil
            try source?.prepare(train: train, validation: validation.flatMap { $0.count > 0 ? $0 : nil })
            let batchesPerEpoch = (train.count + options.batchSize - 1) / options.batchSize
            for epoch in firstEpoch..<options.epochs where !stopping.stopped {
                let started = ContinuousClock.now
                var lossSum = 0.0
                var correct = 0
                let rows = order(count: train.count, epoch: epoch)
                for start in stride(from: 0, to: rows.count, by: options.batchSize) {
                    let batchRows = Array(rows[start..<min(start + options.batchSize, rows.count)])
                    let chunks = TrainingChunk.split(batchRows, size: options.chunkSize)
                    let step = epoch * batchesPerEpoch + start / options.batchSize
                    let gradient: TrainableBlock.Gradient
                    if let source {
                        gradient = try source.batchGradient(
                            tensors: block.tensors, chunks: chunks, epoch: epoch, step: step,
                            upcoming: upcomingBatch(after: start, epoch: epoch, rows: rows, trainCount: train.count))
                    } else {
                        let parts = chunks.map { chunk in
                            let features =
                                cachedTrain.map { cached in
                                    chunk.rows.flatMap { cached[($0 * mapSize)..<(($0 + 1) * mapSize)] }
                                } ?? frozenFeatures(train, rows: chunk.rows, epoch: epoch)
                            return chunkGradients.gradient(
                                block: block, features: features, labels: chunk.rows.map { train.labels[$0] },
                                indices: chunk.rows.map { train.indices[$0] }, epoch: epoch)
                        }
                        gradient = ChunkGradients.combine(parts, counts: chunks.map(\.rows.count))
                    }
                    guard gradient.loss.isFinite else {
                        throw FineTuningError.invalidArgument(
                            "training diverged: the loss of epoch \(epoch + 1), batch "
                                + "\(start / options.batchSize + 1) is \(gradient.loss); try a smaller learning rate")
                    }
                    var tensors = block.tensors
                    optimizer.step(parameters: &tensors, gradients: gradient.tensors)
                    block.tensors = tensors
                    lossSum += Double(gradient.loss) * Double(batchRows.count)
                    correct += gradient.correct
                    let seen = start + batchRows.count
                    progress.report(
                        ProgressReport(
                            task: "finetune", done: epoch * train.count + seen, total: options.epochs * train.count,
                            unit: "images", alreadyDone: firstEpoch * train.count,
                            fields: [
                                ProgressField("epoch", .int(epoch + 1)),
                                ProgressField("loss", .double(lossSum / Double(seen))),
                                ProgressField("accuracy", .double(Double(correct) / Double(seen))),
                            ]))
                }
                var record = EpochRecord(
                    epoch: epoch + 1, loss: lossSum / Double(train.count),
                    accuracy: Double(correct) / Double(train.count), valLoss: nil, valAccuracy: nil, seconds: 0)
                if let validation, validation.count > 0 {
                    let batches = ValidationBatch.split(count: validation.count, size: options.batchSize)
                    let figures: [ValidationFigures]
                    if let source {
                        figures = try source.validationFigures(
                            tensors: block.tensors, batches: batches, step: (epoch + 1) * batchesPerEpoch)
                    } else {
                        figures = batches.map { batch in
                            let labels = Array(validation.labels[batch.start..<(batch.start + batch.count)])
                            let result = validationFeatures!.withUnsafeBufferPointer {
                                block.batchGradient(
                                    input: $0.baseAddress! + batch.start * mapSize, labels: labels, batch: batch.count)
                            }
                            return ValidationFigures(loss: result.loss, correct: result.correct)
                        }
                    }
                    var valLoss = 0.0
                    var valCorrect = 0
                    for (batch, result) in zip(batches, figures) {
                        valLoss += Double(result.loss) * Double(batch.count)
                        valCorrect += result.correct
                    }
                    record.valLoss = valLoss / Double(validation.count)
                    record.valAccuracy = Double(valCorrect) / Double(validation.count)
                }
                let elapsed = ContinuousClock.now - started
                record.seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
                records.append(record)
                if let patience = options.earlyStoppingPatience, let valLoss = record.valLoss {
                    stopping.observe(valLoss: valLoss, epoch: epoch + 1, tensors: block.tensors, patience: patience)
                }
                if let checkpointPath {
                    try FineTuningCheckpoint(
                        epochsDone: epoch + 1, fingerprint: options.fingerprint, startSHA256: startFingerprint,
                        tensors: block.tensors, slots: optimizer.slots, history: records, stopping: stopping
                    ).save(to: checkpointPath)
                }
                onEpoch(record)
            }
        }
        if let best = stopping.bestTensors { block.tensors = best }
        var top = start
        top.weights = block.top
        let model = try FineTunedModel(convLayers: Array(weights.layers.dropLast(3)) + block.convLayers, top: top)
        return (model, TrainingHistory(records: records))
    }

    /// Identifies the starting point: the VGG16 file's hash and the top model's weights.
    var startFingerprint: String {
        Checksum.sha256Hex(Array(weights.sha256.utf8) + start.weights.bytes)
    }
}

/// Keras' `EarlyStopping(monitor="val_loss", min_delta=0, restore_best_weights=True)`: the best epoch so far,
/// its weights, the epochs waited since, and whether training stopped.
struct EarlyStoppingState: Equatable {
    var bestLoss: Double?
    var bestEpoch = 0
    var bestTensors: [[Float]]?
    var wait = 0
    var stopped = false

    mutating func observe(valLoss: Double, epoch: Int, tensors: [[Float]], patience: Int) {
        wait += 1
        if bestLoss == nil || valLoss < bestLoss! {
            bestLoss = valLoss
            bestEpoch = epoch
            bestTensors = tensors
            wait = 0
        } else if wait >= patience, epoch > 1 {
            stopped = true
        }
    }
}
