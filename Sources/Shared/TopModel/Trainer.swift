import BLAS
import Foundation
import Reporting

/// How per-class weights scale each training row's loss (Keras' `class_weight`).
public enum ClassWeighting: Sendable, Equatable {
    /// Every row weighs 1.
    case none
    /// sklearn's "balanced": `n_samples / (n_classes · count(class))` (0 for a class with no rows).
    case balanced
    /// One weight per class, in class order.
    case custom([Double])
}

/// Settings of a training run. The defaults are the recipe's: 50 epochs, batch 100, Keras' `sgd`,
/// 256 hidden units, dropout 0.5, shuffling each epoch.
public struct TrainingOptions: Sendable {
    public var epochs: Int = 50
    public var batchSize: Int = 100
    public var optimizer: OptimizerConfiguration = .sgd()
    /// Seeds the initial weights, the shuffling and the dropout masks (separate streams).
    public var seed: UInt64 = 0
    public var hiddenUnits: Int = 256
    public var dropoutRate: Double = 0.5
    public var shuffle: Bool = true
    public var classWeighting: ClassWeighting = .none
    /// Stop when `val_loss` has not improved for this many epochs, and restore the weights of the best
    /// epoch (also when all epochs ran). Needs a validation split. nil: no early stopping.
    public var earlyStoppingPatience: Int? = nil
    /// A split up to this size (bytes of float32 features) is read once and kept in memory; a larger one is
    /// streamed in chunks every epoch (see `RowFeeder`: chunk order and rows within a chunk are shuffled).
    public var inMemoryLimitBytes: Int = 2 << 30
    /// Approximate size of one streamed chunk, in bytes.
    public var streamChunkBytes: Int = 256 << 20
    /// Threads for the large GEMMs (fixed blocks of the output, each a single-threaded OpenBLAS call; OpenBLAS
    /// itself is pinned to one thread while `train` runs). Results do not depend on it: the same seed gives the
    /// same weights whatever this count.
    public var threads: Int = ProcessInfo.processInfo.activeProcessorCount
    /// The hidden kernel's gradient from the non-zero entries of the hidden layer's gradient only (true), or as a
    /// dense OpenBLAS product (false: for benchmarks and tests that compare the two; the results agree within
    /// rounding).
    package var skipsZeroGradients = true

    public init() {}

    func validate() throws {
        func check(_ ok: Bool, _ message: String) throws { if !ok { throw TopModelError.invalidArgument(message) } }
        try check(epochs >= 1, "epochs must be at least 1, got \(epochs)")
        try check(batchSize >= 1, "batch size must be at least 1, got \(batchSize)")
        try check(hiddenUnits >= 1, "hidden units must be at least 1, got \(hiddenUnits)")
        try check(dropoutRate >= 0 && dropoutRate < 1, "dropout rate must be in [0, 1), got \(dropoutRate)")
        try check((earlyStoppingPatience ?? 0) >= 0, "patience must be 0 or more, got \(earlyStoppingPatience ?? 0)")
        try check(threads >= 1, "threads must be at least 1, got \(threads)")
    }
}

/// The figures of one finished epoch (Keras' `logs`), `epoch` counted from 1.
public struct EpochRecord: Sendable, Codable, Equatable {
    public var epoch: Int
    public var loss: Double
    public var accuracy: Double
    public var valLoss: Double?
    public var valAccuracy: Double?
    /// Wall-clock seconds of the epoch, validation included.
    public var seconds: Double

    public init(epoch: Int, loss: Double, accuracy: Double, valLoss: Double?, valAccuracy: Double?, seconds: Double) {
        self.epoch = epoch
        self.loss = loss
        self.accuracy = accuracy
        self.valLoss = valLoss
        self.valAccuracy = valAccuracy
        self.seconds = seconds
    }

    enum CodingKeys: String, CodingKey {
        case epoch, loss, accuracy, seconds
        case valLoss = "val_loss"
        case valAccuracy = "val_accuracy"
    }
}

/// Progress inside an epoch, reported after every batch.
public struct BatchProgress: Sendable, Equatable {
    public var epoch: Int
    public var epochs: Int
    /// Batches done in this epoch (1...batches).
    public var batch: Int
    public var batches: Int
    /// Running mean loss and accuracy of the epoch so far.
    public var loss: Double
    public var accuracy: Double
    /// Seconds since the epoch started.
    public var seconds: Double

    /// The progress of the whole run as a report: task `train`, batches done of all epochs' batches, with the
    /// epoch and the running loss and accuracy as fields.
    public var report: ProgressReport {
        ProgressReport(
            task: "train", done: (epoch - 1) * batches + batch, total: epochs * batches, unit: "batches",
            fields: [
                ProgressField("epoch", .int(epoch)), ProgressField("loss", .double(loss)),
                ProgressField("accuracy", .double(accuracy)),
            ])
    }
}

/// The outcome of `TopModelTrainer.train`.
public struct TrainingResult: Sendable {
    /// The trained model (the best epoch's weights when early stopping restored them).
    public var model: TopModel
    public var history: TrainingHistory
    /// True when early stopping ended training before `epochs`.
    public var stoppedEarly: Bool
    /// The epoch whose weights the model holds (1-based).
    public var bestEpoch: Int
}

/// Trains the top model. Training is synchronous and CPU-bound: call it from a thread you own, not from
/// Swift's cooperative pool.
public enum TopModelTrainer {
    /// Trains on `train`, validating on `validation` after each epoch when given.
    ///
    /// - Parameters:
    ///   - classNames: class names in label order; labels must lie in `0..<classNames.count`.
    ///   - onEpoch: called after each epoch with its record.
    ///   - onBatch: called after each batch.
    /// - Throws: `TopModelError` for unlabelled or non-finite features, mismatched validation shape,
    ///   bad options; whatever the sources throw.
    public static func train(
        train: FeatureSource, validation: FeatureSource?, classNames: [String], provenance: FeatureProvenance,
        options: TrainingOptions = TrainingOptions(),
        onEpoch: (EpochRecord) -> Void = { _ in }, onBatch: (BatchProgress) -> Void = { _ in }
    ) throws -> TrainingResult {
        try options.validate()
        let c = classNames.count
        guard c >= 2 else {
            throw TopModelError.badFeatures("\(train.sourceDescription): \(c) class(es); a classifier needs at least 2")
        }
        guard train.count > 0 else {
            throw TopModelError.badFeatures("\(train.sourceDescription): no rows to train on")
        }
        if let validation, validation.featureShape != train.featureShape {
            throw TopModelError.badFeatures(
                "\(validation.sourceDescription): feature shape \(validation.featureShape), expected \(train.featureShape) as in \(train.sourceDescription)"
            )
        }
        if options.earlyStoppingPatience != nil, validation == nil {
            throw TopModelError.invalidArgument(
                "early stopping watches val_loss, but \(train.sourceDescription) comes without a validation split")
        }
        let feeder = try RowFeeder(
            source: train, classes: c, inMemoryLimitBytes: options.inMemoryLimitBytes,
            chunkBytes: options.streamChunkBytes, minimumChunkRows: options.batchSize)
        let validationFeeder = try validation.map {
            try RowFeeder(
                source: $0, classes: c, inMemoryLimitBytes: options.inMemoryLimitBytes,
                chunkBytes: options.streamChunkBytes, minimumChunkRows: options.batchSize)
        }
        let classWeights = try classWeightValues(options.classWeighting, labels: feeder.labels, classes: c)
        let weights = try TopModelWeights.glorotUniform(
            inputs: train.featureSize, hidden: options.hiddenUnits, classes: c, seed: options.seed)
        let network = Network(
            weights: weights, maxBatch: options.batchSize, dropoutRate: Float(options.dropoutRate),
            threads: options.threads, skipsZeroGradients: options.skipsZeroGradients)
        let optimizer = OptimizerState(options.optimizer, tensorSizes: network.tensorSizes)
        var shuffleRandom = SeededRandom(seed: options.seed, stream: 2)
        var dropoutRandom = SeededRandom(seed: options.seed, stream: 3)
        var sampleWeights = [Float](repeating: 1, count: options.batchSize)
        let batches = (train.count + options.batchSize - 1) / options.batchSize

        var records: [EpochRecord] = []
        var best: (loss: Double, epoch: Int, weights: TopModelWeights)?
        var wait = 0
        var stoppedEarly = false
        try BLASThreads.withFixedCount(1) {
            for epoch in 1...options.epochs {
                let start = DispatchTime.now().uptimeNanoseconds
                func elapsed() -> Double { Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9 }
                var lossSum = 0.0
                var correct = 0
                var seen = 0
                var batch = 0
                try withUnsafeMutablePointer(to: &shuffleRandom) { shuffle in
                    try withUnsafeMutablePointer(to: &dropoutRandom) { dropout in
                        try feeder.pass(batchSize: options.batchSize, shuffle: options.shuffle ? shuffle : nil) {
                            x, labels, rows in
                            let step: (loss: Float, correct: Int)
                            if let classWeights {
                                for r in 0..<rows { sampleWeights[r] = classWeights[Int(labels[r])] }
                                step = sampleWeights.withUnsafeBufferPointer {
                                    network.trainStep(
                                        x, labels: labels, sampleWeights: $0.baseAddress!, batch: rows,
                                        dropout: dropout, optimizer: optimizer)
                                }
                            } else {
                                step = network.trainStep(
                                    x, labels: labels, sampleWeights: nil, batch: rows,
                                    dropout: dropout, optimizer: optimizer)
                            }
                            batch += 1
                            guard step.loss.isFinite else {
                                // The weights are no longer numbers: stop, and leave any model file as it was.
                                throw TopModelError.diverged(
                                    "training diverged: the loss became \(step.loss) at epoch \(epoch), batch "
                                        + "\(batch) of \(batches); no model was written (try a smaller learning rate)")
                            }
                            lossSum += Double(step.loss) * Double(rows)
                            correct += step.correct
                            seen += rows
                            onBatch(
                                BatchProgress(
                                    epoch: epoch, epochs: options.epochs, batch: batch, batches: batches,
                                    loss: lossSum / Double(seen), accuracy: Double(correct) / Double(seen),
                                    seconds: elapsed()))
                        }
                    }
                }
                var valLoss: Double?
                var valAccuracy: Double?
                if let validationFeeder, validationFeeder.count > 0 {
                    let pass = try evaluationPass(
                        network: network, feeder: validationFeeder, batchSize: options.batchSize)
                    valLoss = pass.lossSum / Double(validationFeeder.count)
                    valAccuracy =
                        Double((0..<c).reduce(0) { $0 + pass.confusion[$1][$1] }) / Double(validationFeeder.count)
                }
                let record = EpochRecord(
                    epoch: epoch, loss: lossSum / Double(seen), accuracy: Double(correct) / Double(seen),
                    valLoss: valLoss, valAccuracy: valAccuracy, seconds: elapsed())
                records.append(record)
                onEpoch(record)
                if let patience = options.earlyStoppingPatience, let valLoss {
                    // Keras' EarlyStopping(monitor="val_loss", min_delta=0, restore_best_weights=True).
                    wait += 1
                    if best == nil || valLoss < best!.loss {
                        best = (valLoss, epoch, network.weights)
                        wait = 0
                    } else if wait >= patience, epoch > 1 {
                        stoppedEarly = epoch < options.epochs
                        break
                    }
                }
            }
        }
        var bestEpoch = records.count
        if let best {
            network.weights = best.weights
            bestEpoch = best.epoch
        }
        let model = try TopModel(
            classNames: classNames, featureShape: train.featureShape, provenance: provenance, weights: network.weights)
        return TrainingResult(
            model: model, history: TrainingHistory(records: records), stoppedEarly: stoppedEarly, bestEpoch: bestEpoch)
    }

    /// Per-class loss weights, or nil when all are 1.
    static func classWeightValues(_ weighting: ClassWeighting, labels: [Int32], classes: Int) throws -> [Float]? {
        switch weighting {
        case .none:
            return nil
        case .balanced:
            var counts = [Int](repeating: 0, count: classes)
            for label in labels { counts[Int(label)] += 1 }
            return counts.map { $0 > 0 ? Float(Double(labels.count) / (Double(classes) * Double($0))) : 0 }
        case .custom(let values):
            guard values.count == classes, values.allSatisfy({ $0 >= 0 && $0.isFinite }) else {
                throw TopModelError.invalidArgument(
                    "class weights: \(values.count) values, expected \(classes) non-negative numbers (one per class)")
            }
            return values.map { Float($0) }
        }
    }
}
