import Foundation
import Testing
import VGG16

/// Throughput of the full-width conv base; runs only with VGG16_BENCH=1 (best in a release build:
/// `VGG16_BENCH=1 swift test -c release --filter ConvBaseBenchmark`). Prints figures, asserts nothing
/// about time.
@Suite("VGG16 conv base throughput", .enabled(if: ProcessInfo.processInfo.environment["VGG16_BENCH"] != nil))
struct ConvBaseBenchmark {
    static var environment: [String: String] { ProcessInfo.processInfo.environment }

    @Test("images per second and GFLOP/s per layer, full width, 224 and 150")
    func throughput() throws {
        let threads = Int(Self.environment["VGG16_BENCH_THREADS"] ?? "2") ?? 2
        let sizes = (Self.environment["VGG16_BENCH_SIZES"] ?? "224,150").split(separator: ",").compactMap { Int($0) }
        ConvBase.setBLASThreads(threads)
        let weights = VGG16Weights.generated(seed: 1)
        for size in sizes {
            let base = try ConvBase(weights: weights, imageHeight: size, imageWidth: size)
            let image = randomFloats(count: size * size * 3, seed: 5, low: -124, high: 152)
            var features = [Float](repeating: 0, count: base.featureCount)
            var totals: [String: (seconds: Double, flops: Double)] = [:]
            var names: [String] = []
            image.withUnsafeBufferPointer { _ = base.forwardProfiled(image: $0.baseAddress!, into: &features) }  // warm-up
            let reps = size == 224 ? 8 : 16
            let start = ContinuousClock.now
            for _ in 0..<reps {
                let timings = image.withUnsafeBufferPointer { base.forwardProfiled(image: $0.baseAddress!, into: &features) }
                for t in timings {
                    if totals[t.name] == nil { names.append(t.name) }
                    let old = totals[t.name] ?? (0, 0)
                    totals[t.name] = (old.seconds + t.seconds, old.flops + t.flops)
                }
            }
            let seconds = Self.seconds(ContinuousClock.now - start)
            let flops = totals.values.map(\.flops).reduce(0, +) / Double(reps)
            print(String(format: "%d×%d, one instance, %d BLAS threads: %.2f images/s, %.2f GFLOP/image, %.0f GFLOP/s",
                size, size, threads, Double(reps) / seconds, flops / 1e9, flops * Double(reps) / seconds / 1e9))
            for name in names {
                let t = totals[name]!
                print(String(format: "  %@: %.1f ms, %.0f GFLOP/s", name, t.seconds / Double(reps) * 1e3, t.flops / t.seconds / 1e9))
            }
        }
    }

    @Test("images per second with one instance per thread and 1 BLAS thread each")
    func parallelInstances() throws {
        let instances = Int(Self.environment["VGG16_BENCH_INSTANCES"] ?? "2") ?? 2
        let sizes = (Self.environment["VGG16_BENCH_SIZES"] ?? "224,150").split(separator: ",").compactMap { Int($0) }
        ConvBase.setBLASThreads(1)
        let weights = VGG16Weights.generated(seed: 1)
        for size in sizes {
            let reps = size == 224 ? 8 : 16
            let bases = try (0..<instances).map { _ in try ConvBase(weights: weights, imageHeight: size, imageWidth: size) }
            let image = randomFloats(count: size * size * 3, seed: 5, low: -124, high: 152)
            _ = bases[0].forward(images: image, count: 1)
            let group = DispatchGroup()
            let start = ContinuousClock.now
            for base in bases {
                group.enter()
                let thread = Thread {
                    for _ in 0..<reps { _ = base.forward(images: image, count: 1) }
                    group.leave()
                }
                thread.start()
            }
            group.wait()
            let seconds = Self.seconds(ContinuousClock.now - start)
            print(String(format: "%d×%d, %d instances × 1 BLAS thread: %.2f images/s", size, size, instances,
                Double(reps * instances) / seconds))
        }
        ConvBase.setBLASThreads(2)
    }

    static func seconds(_ duration: Duration) -> Double {
        Double(duration.components.seconds) + Double(duration.components.attoseconds) * 1e-18
    }
}

/// Loads the weights files listed in VGG16_WEIGHTS_FILES (colon-separated), e.g. real Keras downloads,
/// and prints what was found. Runs only when the variable is set.
@Suite("VGG16 weights files on this machine", .enabled(if: ProcessInfo.processInfo.environment["VGG16_WEIGHTS_FILES"] != nil))
struct WeightsFileProbe {
    @Test("listed weights files load")
    func load() throws {
        let paths = (ProcessInfo.processInfo.environment["VGG16_WEIGHTS_FILES"] ?? "").split(separator: ":").map(String.init)
        for path in paths {
            let weights = try VGG16Weights.load(path: path)
            print("\(path): \(weights.format), widths \(weights.widths), sha256 \(weights.sha256)")
        }
    }
}
