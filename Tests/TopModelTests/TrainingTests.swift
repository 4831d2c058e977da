import Foundation
import Testing

@testable import TopModel

@Suite("training")
struct TrainingTests {
    func smallOptions(epochs: Int = 15, optimizer: OptimizerConfiguration = .sgd(learningRate: 0.01)) -> TrainingOptions
    {
        var options = TrainingOptions()
        options.epochs = epochs
        options.batchSize = 20
        options.optimizer = optimizer
        options.hiddenUnits = 32
        options.threads = 1
        return options
    }

    @Test(
        "training on three separable Gaussian blobs reaches validation accuracy >= 0.95",
        arguments: ["sgd", "rmsprop", "adam"])
    func learnsBlobs(optimizer: String) throws {
        let train = try blobs(rows: 300, classes: 3, featureShape: [2, 2, 8], noise: 1.0, seed: 1)
        let validation = try blobs(rows: 150, classes: 3, featureShape: [2, 2, 8], noise: 1.0, seed: 2)
        var epochs: [EpochRecord] = []
        var progressCount = 0
        let result = try TopModelTrainer.train(
            train: train, validation: validation, classNames: ["a", "b", "c"], provenance: testProvenance,
            options: smallOptions(optimizer: try .named(optimizer)), onEpoch: { epochs.append($0) },
            onBatch: { p in
                progressCount += 1
                #expect(p.batch >= 1 && p.batch <= p.batches && p.batches == 15)
            })
        #expect(epochs.count == 15)
        #expect(progressCount == 15 * 15)
        let last = try #require(epochs.last)
        #expect(try #require(last.valAccuracy) >= 0.95)
        #expect(last.loss < epochs[0].loss)
        let evaluation = try result.model.evaluate(validation)
        #expect(evaluation.accuracy >= 0.95)
        #expect(abs(evaluation.accuracy - last.valAccuracy!) < 1e-12)
        #expect(abs(evaluation.loss - last.valLoss!) < 1e-6)
    }

    @Test(
        "the same seed gives bit-identical weights whatever the thread count; another seed gives different ones",
        arguments: ["sgd", "adam"])
    func deterministic(optimizer: String) throws {
        let train = try blobs(rows: 250, classes: 3, featureShape: [4, 4, 16], noise: 1.0, seed: 3)
        func run(seed: UInt64, threads: Int) throws -> [UInt8] {
            var options = smallOptions(epochs: 3, optimizer: try .named(optimizer))
            options.hiddenUnits = 64
            options.seed = seed
            options.threads = threads
            return try TopModelTrainer.train(
                train: train, validation: nil, classNames: ["a", "b", "c"], provenance: testProvenance, options: options
            ).model.weights.bytes
        }
        let first = try run(seed: 42, threads: 1)
        #expect(try run(seed: 42, threads: 1) == first)
        #expect(try run(seed: 42, threads: 2) == first)
        #expect(try run(seed: 42, threads: 3) == first)
        #expect(try run(seed: 43, threads: 1) != first)
    }

    @Test("streaming in chunks visits every row once per epoch, shuffled by chunk order and within chunks")
    func streamedPassVisitsEveryRow() throws {
        // Feature value = row index, so each batch row tells which source row it came from.
        let rows = 257
        let source = try InMemoryFeatures(
            features: (0..<rows).flatMap { [Float($0), Float($0)] }, featureShape: [1, 1, 2],
            labels: (0..<rows).map { Int32($0 % 2) })
        let feeder = try RowFeeder(
            source: source, classes: 2, inMemoryLimitBytes: 100, chunkBytes: 40 * 8, minimumChunkRows: 10)
        #expect(!feeder.inMemory && feeder.chunkRows == 40)
        var random = SeededRandom(seed: 1)
        var seen: [Int] = []
        var batchSizes: [Int] = []
        try withUnsafeMutablePointer(to: &random) { rng in
            try feeder.pass(batchSize: 16, shuffle: rng) { x, labels, n in
                batchSizes.append(n)
                for r in 0..<n {
                    let row = Int(x[r * 2])
                    seen.append(row)
                    #expect(labels[r] == Int32(row % 2))
                }
            }
        }
        #expect(seen.sorted() == Array(0..<rows))
        #expect(seen != Array(0..<rows))
        #expect(batchSizes.dropLast().allSatisfy { $0 == 16 } && batchSizes.last == rows % 16)
        // A sequential pass gives the rows in order.
        var ordered: [Int] = []
        try feeder.pass(batchSize: 16, shuffle: nil) { x, _, n in for r in 0..<n { ordered.append(Int(x[r * 2])) } }
        #expect(ordered == Array(0..<rows))
    }

    @Test("training streamed from chunks learns as well and is deterministic")
    func streamedTraining() throws {
        let train = try blobs(rows: 300, classes: 3, featureShape: [2, 2, 8], noise: 1.0, seed: 1)
        let validation = try blobs(rows: 150, classes: 3, featureShape: [2, 2, 8], noise: 1.0, seed: 2)
        var options = smallOptions()
        options.inMemoryLimitBytes = 1000
        options.streamChunkBytes = 64 * 32 * 4
        func run() throws -> TrainingResult {
            try TopModelTrainer.train(
                train: train, validation: validation, classNames: ["a", "b", "c"],
                provenance: testProvenance, options: options)
        }
        let a = try run()
        let b = try run()
        #expect(a.model.weights.bytes == b.model.weights.bytes)
        #expect(try #require(a.history.records.last?.valAccuracy) >= 0.95)
    }

    @Test("early stopping stops after `patience` epochs without val_loss improvement and restores the best weights")
    func earlyStopping() throws {
        // Labels independent of the features: validation loss soon stops improving while training overfits.
        var r = TestRandom(9)
        let train = try InMemoryFeatures(
            features: r.array(60 * 16), featureShape: [4, 4, 1], labels: (0..<60).map { Int32($0 % 2) })
        let validation = try InMemoryFeatures(
            features: r.array(60 * 16), featureShape: [4, 4, 1], labels: (0..<60).map { Int32(($0 / 2) % 2) })
        var options = smallOptions(epochs: 200, optimizer: .adam(learningRate: 0.01))
        options.earlyStoppingPatience = 3
        let result = try TopModelTrainer.train(
            train: train, validation: validation, classNames: ["x", "y"],
            provenance: testProvenance, options: options)
        #expect(result.stoppedEarly)
        let records = result.history.records
        let best = try #require(records.min { $0.valLoss! < $1.valLoss! })
        #expect(result.bestEpoch == best.epoch)
        #expect(records.count == best.epoch + 3)
        let evaluation = try result.model.evaluate(validation)
        #expect(abs(evaluation.loss - best.valLoss!) < 1e-6)
    }

    @Test("balanced class weights are n_samples / (n_classes · count)")
    func balancedWeights() throws {
        let labels: [Int32] = [0, 0, 0, 0, 0, 0, 1, 1, 2, 2]
        let weights = try #require(try TopModelTrainer.classWeightValues(.balanced, labels: labels, classes: 3))
        #expect(weights == [Float(10.0 / 18.0), Float(10.0 / 6.0), Float(10.0 / 6.0)])
        #expect(try TopModelTrainer.classWeightValues(.none, labels: labels, classes: 3) == nil)
        #expect(throws: TopModelError.self) {
            try TopModelTrainer.classWeightValues(.custom([1, 2]), labels: labels, classes: 3)
        }
    }

    @Test("training with balanced class weights on an imbalanced set still learns the rare class")
    func balancedTraining() throws {
        let all = try blobs(rows: 400, classes: 4, featureShape: [2, 2, 4], noise: 1.0, seed: 4)
        // Keep every row of classes 0-2 (labels 0,1,2 → 0) and a quarter of class 3 → two classes, 3:1 · 4 imbalance.
        var features: [Float] = []
        var labels: [Int32] = []
        let d = 16
        for row in 0..<all.count {
            let label = row % 4
            if label == 3, row % 16 != 3 { continue }
            features += all.features[(row * d)..<(row * d + d)]
            labels.append(label == 3 ? 1 : 0)
        }
        let train = try InMemoryFeatures(features: features, featureShape: [2, 2, 4], labels: labels)
        var options = smallOptions(epochs: 10)
        options.classWeighting = .balanced
        let result = try TopModelTrainer.train(
            train: train, validation: nil, classNames: ["common", "rare"],
            provenance: testProvenance, options: options)
        let evaluation = try result.model.evaluate(train)
        #expect(try #require(evaluation.perClass["rare"]).recall >= 0.9)
    }

    @Test("predict gives the top-k classes, best first, with probabilities summing to 1 over all classes")
    func predictTopK() throws {
        let train = try blobs(rows: 300, classes: 3, featureShape: [2, 2, 8], noise: 1.0, seed: 1)
        let result = try TopModelTrainer.train(
            train: train, validation: nil, classNames: ["cat", "dog", "owl"],
            provenance: testProvenance, options: smallOptions())
        let rows = try blobs(rows: 3, classes: 3, featureShape: [2, 2, 8], noise: 0.1, seed: 5)
        let predictions = try result.model.predict(features: rows.features, topK: 2)
        #expect(predictions.map { $0.first?.className } == ["cat", "dog", "owl"])
        #expect(predictions.allSatisfy { $0.count == 2 && $0[0].probability >= $0[1].probability })
        let p = try result.model.probabilities(features: rows.features)
        #expect(abs(p[0..<3].reduce(0, +) - 1) < 1e-5)
        let all = try result.model.predict(features: rows.features, topK: 10)
        #expect(all[0].count == 3)
    }
}
