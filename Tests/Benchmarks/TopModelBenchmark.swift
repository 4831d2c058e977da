import Foundation
import Storage
import TestSupport
import Testing
import TopModel

/// Time per epoch on 10,000 feature vectors of 4×4×512 (3 classes, batch 100, SGD), the shape of VGG16
/// block5_pool features at 150×150. A benchmark, not a test of speed: runs only when TOPMODEL_BENCH is set,
/// in a release build (`make bench-topmodel`).
///
/// Compare with `scripts/topmodel_keras_epoch_time.py` (tf_keras, same shapes, same thread count).
@Suite("top model benchmark", .serialized)
struct TopModelBenchmark {
    static let enabled = ProcessInfo.processInfo.environment["TOPMODEL_BENCH"] != nil

    static func features(rows: Int, d: Int) -> [Float] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var features = [Float](repeating: 0, count: rows * d)
        for i in features.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            // Non-negative like pooled ReLU features, a third of them zero.
            let u = Float(state >> 40) * 0x1p-24
            features[i] = u < 0.33 ? 0 : u * 2
        }
        return features
    }

    @Test("time per training epoch on 10,000 × 4×4×512 features", .enabled(if: enabled))
    func epochTime() throws {
        let rows = 10_000
        let shape = [4, 4, 512]
        let d = 4 * 4 * 512
        let features = Self.features(rows: rows, d: d)
        let labels = (0..<rows).map { Int32($0 % 3) }
        let train = try InMemoryFeatures(features: features, featureShape: shape, labels: labels)
        var options = TrainingOptions()
        options.epochs = Int(ProcessInfo.processInfo.environment["TOPMODEL_BENCH_EPOCHS"] ?? "") ?? 4
        options.batchSize = 100
        options.optimizer = .sgd()
        options.threads = Int(ProcessInfo.processInfo.environment["TOPMODEL_BENCH_THREADS"] ?? "") ?? 2
        var seconds: [Double] = []
        let provenance = FeatureProvenance(
            featureLayer: "block5_pool", imageHeight: 150, imageWidth: 150,
            preprocess: "caffe", interpolation: "nearest", weightsSHA256: "")
        _ = try TopModelTrainer.train(
            train: train, validation: nil, classNames: ["a", "b", "c"], provenance: provenance,
            options: options, onEpoch: { seconds.append($0.seconds) })
        #expect(seconds.count == options.epochs)
        let sorted = seconds.sorted()
        print(
            "topmodel benchmark: \(rows) rows × \(shape), batch 100, sgd, \(options.threads) threads; "
                + "epoch seconds \(seconds.map { String(format: "%.3f", $0) }.joined(separator: " ")); "
                + "median \(String(format: "%.3f", sorted[sorted.count / 2])), min \(String(format: "%.3f", sorted[0]))"
        )
    }

    @Test("time per epoch from an HDF5 feature file: loaded once vs streamed in 64 MiB chunks", .enabled(if: enabled))
    func featureFileEpochTime() throws {
        let rows = 10_000
        let shape = [4, 4, 512]
        let d = 4 * 4 * 512
        let dir = try TemporaryDirectory("topmodel-bench")
        defer { dir.remove() }
        let path = dir.file("features.h5")
        let writer = try FeatureFileWriter(
            path: path,
            attributes: FeatureFileAttributes(
                imageHeight: 150, imageWidth: 150, preprocess: "caffe",
                interpolation: "nearest", layer: "block5_pool", weightsSHA256: ""),
            classNames: ["a", "b", "c"])
        try writer.beginSplit("train", featureShape: shape)
        try Self.features(rows: rows, d: d).withUnsafeBufferPointer {
            try writer.append(
                features: $0, labels: (0..<rows).map { Int32($0 % 3) }, filenames: (0..<rows).map { "c/\($0).jpg" })
        }
        try writer.finish()
        for streamed in [false, true] {
            var options = TrainingOptions()
            options.epochs = 3
            options.threads = Int(ProcessInfo.processInfo.environment["TOPMODEL_BENCH_THREADS"] ?? "") ?? 2
            if streamed {
                options.inMemoryLimitBytes = 0
                options.streamChunkBytes = 64 << 20
            }
            var seconds: [Double] = []
            _ = try TopModelTrainer.train(
                featureFile: try FeatureFile.open(path), options: options,
                onEpoch: { seconds.append($0.seconds) })
            print(
                "topmodel benchmark (feature file, \(streamed ? "streamed, 64 MiB chunks" : "loaded once")): epoch seconds "
                    + seconds.map { String(format: "%.3f", $0) }.joined(separator: " "))
        }
    }
}
