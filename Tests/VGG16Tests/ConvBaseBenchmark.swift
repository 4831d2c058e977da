import Foundation
import Testing
import VGG16

/// Throughput of the full-width conv base; runs only with VGG16_BENCH=1 (best in a release build:
/// `VGG16_BENCH=1 swift test -c release --filter ConvBaseBenchmark`). Prints figures, asserts nothing
/// about time.
@Suite("VGG16 conv base throughput", .enabled(if: ProcessInfo.processInfo.environment["VGG16_BENCH"] != nil))
struct ConvBaseBenchmark {
    @Test("images per second and GFLOP/s per layer, full width, 224 and 150")
    func throughput() throws {
        let threads = Int(ProcessInfo.processInfo.environment["VGG16_BENCH_THREADS"] ?? "2") ?? 2
        ConvBase.setBLASThreads(threads)
        let weights = VGG16Weights.generated(seed: 1)
        for size in [224, 150] {
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
            let elapsed = ContinuousClock.now - start
            let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) * 1e-18
            let flops = totals.values.map(\.flops).reduce(0, +) / Double(reps)
            print(String(format: "%d×%d, %d BLAS threads: %.2f images/s, %.1f GFLOP/image, %.0f GFLOP/s",
                size, size, threads, Double(reps) / seconds, flops / 1e9, flops * Double(reps) / seconds / 1e9))
            for name in names {
                let t = totals[name]!
                print(String(format: "  %@: %.1f ms, %.0f GFLOP/s", name, t.seconds / Double(reps) * 1e3, t.flops / t.seconds / 1e9))
            }
        }
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
