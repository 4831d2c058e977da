import BLAS
import Foundation
import HDF5
import Synchronization
import TestSupport
import Testing
import VGG16

/// Throughput of the full-width conv base; runs only with VGG16_BENCH=1, best in a release build
/// (`make bench-convbase`). Prints figures, asserts nothing about time.
@Suite("VGG16 conv base throughput", .enabled(if: ProcessInfo.processInfo.environment["VGG16_BENCH"] != nil))
struct ConvBaseBenchmark {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    @Test("images per second and GFLOP/s per layer, full width, 224 and 150")
    func throughput() throws {
        let threads = Int(Self.environment["VGG16_BENCH_THREADS"] ?? "2") ?? 2
        let sizes = (Self.environment["VGG16_BENCH_SIZES"] ?? "224,150").split(separator: ",").compactMap { Int($0) }
        let algorithm = ConvAlgorithm(rawValue: Self.environment["VGG16_BENCH_ALGORITHM"] ?? "") ?? .adaptive
        BLASThreads.set(threads)
        let weights = VGG16Weights.generated(seed: 1)
        for size in sizes {
            let base = try ConvBase(weights: weights, imageHeight: size, imageWidth: size, algorithm: algorithm)
            let image = randomFloats(count: size * size * 3, seed: 5, low: -124, high: 152)
            var features = [Float](repeating: 0, count: base.featureCount)
            var totals: [String: (seconds: Double, flops: Double)] = [:]
            var names: [String] = []
            // Warm-up.
            image.withUnsafeBufferPointer { _ = base.forwardProfiled(image: $0.baseAddress!, into: &features) }
            let reps = size == 224 ? 8 : 16
            let start = ContinuousClock.now
            for _ in 0..<reps {
                let timings = image.withUnsafeBufferPointer {
                    base.forwardProfiled(image: $0.baseAddress!, into: &features)
                }
                for t in timings {
                    if totals[t.name] == nil { names.append(t.name) }
                    let old = totals[t.name] ?? (0, 0)
                    totals[t.name] = (old.seconds + t.seconds, old.flops + t.flops)
                }
            }
            let seconds = Self.seconds(ContinuousClock.now - start)
            let flops = totals.values.map(\.flops).reduce(0, +) / Double(reps)
            print(
                String(
                    format: "%@, %d×%d, one instance, %d BLAS threads: %.2f images/s, %.2f GFLOP/image, %.0f GFLOP/s",
                    algorithm.rawValue, size, size, threads, Double(reps) / seconds, flops / 1e9,
                    flops * Double(reps) / seconds / 1e9))
            for name in names {
                let t = totals[name]!
                print(
                    String(
                        format: "  %@: %.1f ms, %.0f GFLOP/s", name, t.seconds / Double(reps) * 1e3,
                        t.flops / t.seconds / 1e9))
            }
        }
    }

    @Test("best per-layer time of each algorithm, interleaved rounds, 1 BLAS thread")
    func compareAlgorithms() throws {
        let sizes = (Self.environment["VGG16_BENCH_SIZES"] ?? "224,150").split(separator: ",").compactMap { Int($0) }
        let rounds = Int(Self.environment["VGG16_BENCH_ROUNDS"] ?? "5") ?? 5
        BLASThreads.set(1)
        let weights = VGG16Weights.generated(seed: 1)
        for size in sizes {
            let image = randomFloats(count: size * size * 3, seed: 5, low: -124, high: 152)
            let bases = try ConvAlgorithm.allCases.map {
                try ConvBase(weights: weights, imageHeight: size, imageWidth: size, algorithm: $0)
            }
            var best: [[Double]] = bases.map { _ in [Double](repeating: .infinity, count: 13) }
            var bestTotal = [Double](repeating: .infinity, count: bases.count)
            var features = [Float](repeating: 0, count: bases[0].featureCount)
            for _ in 0..<rounds {
                for (index, base) in bases.enumerated() {
                    let timings = image.withUnsafeBufferPointer {
                        base.forwardProfiled(image: $0.baseAddress!, into: &features)
                    }
                    for (layer, timing) in timings.enumerated() {
                        best[index][layer] = min(best[index][layer], timing.threadCPUSeconds)
                    }
                    bestTotal[index] = min(bestTotal[index], timings.map(\.threadCPUSeconds).reduce(0, +))
                }
            }
            let names = VGG16Weights.convLayerNames
            print(
                "\(size)×\(size), best of \(rounds), thread CPU ms per layer: "
                    + ConvAlgorithm.allCases.map(\.rawValue).joined(separator: " / "))
            for layer in 0..<13 {
                print(
                    "  \(names[layer]): "
                        + best.map { String(format: "%.2f", $0[layer] * 1e3) }.joined(separator: " / "))
            }
            print(
                "  whole image: "
                    + bestTotal.map { String(format: "%.1f ms (%.2f images/s)", $0 * 1e3, 1 / $0) }.joined(
                        separator: " / "))
            print(
                "  best per layer: "
                    + String(format: "%.1f ms", (0..<13).map { l in best.map { $0[l] }.min()! }.reduce(0, +) * 1e3))
        }
    }

    @Test("images per second with one instance per thread and 1 BLAS thread each")
    func parallelInstances() throws {
        let instances = Int(Self.environment["VGG16_BENCH_INSTANCES"] ?? "2") ?? 2
        let sizes = (Self.environment["VGG16_BENCH_SIZES"] ?? "224,150").split(separator: ",").compactMap { Int($0) }
        BLASThreads.set(1)
        let weights = VGG16Weights.generated(seed: 1)
        for size in sizes {
            let reps = size == 224 ? 8 : 16
            let initStart = ContinuousClock.now
            let first = try ConvBase(weights: weights, imageHeight: size, imageWidth: size)
            print(
                String(
                    format: "%d×%d: ConvBase.init (kernel transforms) %.2f s", size, size,
                    Self.seconds(ContinuousClock.now - initStart)))
            let bases = [first] + (1..<max(1, instances)).map { _ in ConvBase(sharingWeightsWith: first) }
            let image = randomFloats(count: size * size * 3, seed: 5, low: -124, high: 152)
            for base in bases { _ = base.forward(images: image, count: 1) }
            let group = DispatchGroup()
            let cpuSeconds = Mutex<[Double]>([])
            let start = ContinuousClock.now
            for instance in bases {
                group.enter()
                // Each thread uses only its own instance (ConvBase is not thread-safe).
                nonisolated(unsafe) let base = instance
                let thread = Thread {
                    var features = [Float](repeating: 0, count: base.featureCount)
                    var cpu = 0.0
                    for _ in 0..<reps {
                        let timings = image.withUnsafeBufferPointer {
                            base.forwardProfiled(image: $0.baseAddress!, into: &features)
                        }
                        cpu += timings.map(\.threadCPUSeconds).reduce(0, +)
                    }
                    cpuSeconds.withLock { $0.append(cpu / Double(reps)) }
                    group.leave()
                }
                thread.start()
            }
            group.wait()
            let seconds = Self.seconds(ContinuousClock.now - start)
            let cpu = cpuSeconds.withLock { $0 }
            print(
                String(
                    format: "%d×%d, %d instances × 1 BLAS thread: %.2f images/s (wall); thread CPU per image %@ ms",
                    size, size, instances, Double(reps * instances) / seconds,
                    cpu.map { String(format: "%.1f", $0 * 1e3) }.joined(separator: ", ")))
        }
        BLASThreads.set(2)
    }

    @Test("features do not depend on the OpenBLAS thread count (printed, for each algorithm)")
    func threadCountIndependence() throws {
        let weights = VGG16Weights.generated(seed: 3)
        let image = randomFloats(count: 224 * 224 * 3, seed: 8, low: -124, high: 152)
        for algorithm in ConvAlgorithm.allCases {
            let base = try ConvBase(weights: weights, imageHeight: 224, imageWidth: 224, algorithm: algorithm)
            var results: [[UInt32]] = []
            for threads in [1, 2, 1, 2] {
                BLASThreads.set(threads)
                results.append(base.forward(images: image, count: 1).map(\.bitPattern))
            }
            print(
                "\(algorithm): 1 vs 2 BLAS threads bit-identical: \(results[0] == results[1]), repeat: \(results[0] == results[2] && results[1] == results[3])"
            )
        }
        BLASThreads.set(2)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}

/// Loads the weights files listed in VGG16_WEIGHTS_FILES (colon-separated), e.g. real Keras downloads,
/// and prints what was found. Runs only when the variable is set.
@Suite(
    "VGG16 weights files on this machine",
    .enabled(if: ProcessInfo.processInfo.environment["VGG16_WEIGHTS_FILES"] != nil))
struct WeightsFileProbe {
    @Test("listed weights files load")
    func load() throws {
        let paths = (ProcessInfo.processInfo.environment["VGG16_WEIGHTS_FILES"] ?? "").split(separator: ":").map(
            String.init)
        for path in paths {
            let weights = try VGG16Weights.load(path: path)
            print("\(path): \(weights.format), widths \(weights.widths), sha256 \(weights.sha256)")
        }
    }
}

/// Compares full-width features with Keras on a machine that has Keras: VGG16_KERAS_FULL_DIR holds
/// `weights.h5` (any supported layout) and `golden.h5` with `/input` (N, H, W, 3) and `/block5_pool` from
/// Keras `predict`. Runs only when the variable is set; prints the error of each algorithm. To make them with
/// tf_keras: `m = VGG16(weights=None, include_top=False, input_shape=(224, 224, 3))`, set He-normal kernels
/// and small biases, `m.save_weights("weights.h5")`, and write `x` (uniform in [-124, 152]) and
/// `m.predict(x)` to golden.h5. Measured 2026-11-29: 2.8e-6 (direct) … 3.1e-6 (adaptive).
@Suite(
    "VGG16 full width against Keras", .enabled(if: ProcessInfo.processInfo.environment["VGG16_KERAS_FULL_DIR"] != nil))
struct FullWidthKerasCheck {
    @Test("full-width features are within 1e-4 of Keras for every algorithm")
    func matchesKeras() throws {
        let directory = ProcessInfo.processInfo.environment["VGG16_KERAS_FULL_DIR"] ?? ""
        let weights = try VGG16Weights.load(path: directory + "/weights.h5")
        let golden = try HDF5File.open(directory + "/golden.h5")
        defer { golden.close() }
        let inputDataset = try golden.root.dataset("input")
        let shape = inputDataset.shape
        let input = try inputDataset.read(Float.self)
        let expected = try golden.root.dataset("block5_pool").read(Float.self)
        let scale = expected.map(abs).max() ?? 0
        for algorithm in ConvAlgorithm.allCases {
            let base = try ConvBase(weights: weights, imageHeight: shape[1], imageWidth: shape[2], algorithm: algorithm)
            let features = base.forward(images: input, count: shape[0])
            let worst = zip(features, expected).map { abs($0 - $1) }.max() ?? .infinity
            print(
                "full width \(shape[1])×\(shape[2]) vs Keras, \(algorithm): max |difference| / max |Keras| = \(worst / scale)"
            )
            #expect(worst / scale < 1e-4)
        }
    }
}
