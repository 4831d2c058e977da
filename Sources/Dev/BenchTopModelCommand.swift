import ArgumentParser
import Foundation
import TopModel

/// `bottleneck-dev bench-topmodel`: seconds per training epoch of the top model on generated 4×4×512 features
/// (the shape of block5_pool at 150×150), one JSON line; optionally writes the features for tf-keras' side.
struct BenchTopModelCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-topmodel",
        abstract: "Seconds per top-model training epoch on generated 4×4×512 features (one JSON line).",
        discussion: """
            The features are those of the TopModel benchmark (Tests/Benchmarks/TopModelBenchmark.swift): \
            non-negative like pooled ReLU outputs, a share --zero-fraction of them exactly zero, the others \
            uniform in (2·zero-fraction, 2); labels row % 3. Flatten → Dense(256, relu) → Dropout(0.5) → \
            Dense(3, softmax), SGD (learning rate 0.01), batch 100, shuffled, seed 0. --features-out writes the \
            same features as raw little-endian float32 [rows, 8192] for scripts/bench/keras_topmodel_epoch.py.
            """)

    @Option(help: "Feature vectors.")
    var rows: Int = 10_000

    @Option(help: "Epochs; the first includes no setup, but the figures after it are the ones to compare.")
    var epochs: Int = 4

    @Option(help: "Threads of the trainer.")
    var threads: Int = 2

    @Option(help: "Share of the features that are exactly zero.")
    var zeroFraction: Double = 0.33

    @Flag(help: "Compute the hidden kernel's gradient as a dense product (the zero gradients not skipped).")
    var dense = false

    @Option(help: "Write the features (raw float32, row-major) to this file and exit without training.")
    var featuresOut: String?

    static let shape = [4, 4, 512]

    /// The benchmark's features: a 64-bit LCG, its top 24 bits as u in [0, 1); 0 when u < zeroFraction, else 2u.
    static func features(rows: Int, zeroFraction: Float) -> [Float] {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        var features = [Float](repeating: 0, count: rows * shape.reduce(1, *))
        for i in features.indices {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            let u = Float(state >> 40) * 0x1p-24
            features[i] = u < zeroFraction ? 0 : u * 2
        }
        return features
    }

    func run() throws {
        let features = Self.features(rows: rows, zeroFraction: Float(zeroFraction))
        if let featuresOut {
            let data = features.withUnsafeBufferPointer { Data(buffer: $0) }
            try data.write(to: URL(fileURLWithPath: featuresOut))
            return
        }
        let zeros = features.reduce(0) { $0 + ($1 == 0 ? 1 : 0) }
        let labels = (0..<rows).map { Int32($0 % 3) }
        let train = try InMemoryFeatures(features: features, featureShape: Self.shape, labels: labels)
        var options = TrainingOptions()
        options.epochs = epochs
        options.batchSize = 100
        options.optimizer = .sgd()
        options.threads = threads
        options.skipsZeroGradients = !dense
        let provenance = FeatureProvenance(
            featureLayer: "block5_pool", imageHeight: 150, imageWidth: 150, preprocess: "caffe",
            interpolation: "nearest", weightsSHA256: "")
        var records: [EpochRecord] = []
        // CPU seconds of the process per epoch (all threads): the work done, less sensitive than the wall clock to
        // other processes on a shared machine.
        func processCPUSeconds() -> Double {
            var time = timespec()
            clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &time)
            return Double(time.tv_sec) + Double(time.tv_nsec) / 1e9
        }
        var cpuSeconds: [Double] = []
        var epochStart = processCPUSeconds()
        _ = try TopModelTrainer.train(
            train: train, validation: nil, classNames: ["a", "b", "c"], provenance: provenance, options: options,
            onEpoch: {
                let now = processCPUSeconds()
                cpuSeconds.append(now - epochStart)
                epochStart = now
                records.append($0)
            })
        let variant = dense ? ", dense kernel gradient" : ""
        let seconds = records.map { String(format: "%.4f", $0.seconds) }.joined(separator: ", ")
        let cpu = cpuSeconds.map { String(format: "%.4f", $0) }.joined(separator: ", ")
        let losses = records.map { String(format: "%.5f", $0.loss) }.joined(separator: ", ")
        print(
            "{\"engine\": \"bottleneck\(variant)\", \"rows\": \(rows), \"threads\": \(threads), \"batch\": 100, "
                + "\"zero_fraction\": \(String(format: "%.4f", Double(zeros) / Double(features.count))), "
                + "\"epoch_seconds\": [\(seconds)], \"epoch_cpu_seconds\": [\(cpu)], \"loss\": [\(losses)]}")
    }
}
