import ArgumentParser
import Foundation
import VGG16

/// `bottleneck-coordinator bench-engine` (hidden): the conv base alone, for `make bench` — the OpenBLAS kernel
/// set, per-layer GFLOP/s of each algorithm on one thread, and the largest difference between the fast path and
/// the im2col reference path, as one JSON line.
struct BenchEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-engine",
        abstract: "Per-layer speed and accuracy of the VGG16 conv base (JSON on stdout).",
        shouldDisplay: false)

    @Option(help: "VGG16 weights (default: generated full-width weights, seed 1).")
    var weights: String?

    @Option(help: "Square image side.")
    var imageSize: Int = 224

    @Option(help: "Random images compared and timed.")
    var images: Int = 3

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.bootstrapLogging()
        ConvBase.setBLASThreads(1)
        let weights = try weights.map(VGG16Weights.load(path:)) ?? VGG16Weights.generated(seed: 1)
        let size = imageSize
        var generator = SystemRandomNumberGenerator()
        // caffe-preprocessed pixels span about ±128.
        let inputs = (0..<max(1, images)).map { _ in
            (0..<(size * size * 3)).map { _ in Float.random(in: -128...128, using: &generator) }
        }
        var result: [String: Any] = [
            "openblas_core": BLASKernels.coreName, "image_size": size, "images": inputs.count,
        ]
        var features: [ConvAlgorithm: [[Float]]] = [:]
        for algorithm in [ConvAlgorithm.direct, .adaptive] {
            let initStart = ContinuousClock.now
            let convBase = try ConvBase(weights: weights, imageHeight: size, imageWidth: size, algorithm: algorithm)
            let initTime = ContinuousClock.now - initStart
            var perLayer: [String: [Double]] = [:]
            var names: [String] = []
            var totalCPU: [Double] = []
            for input in inputs {
                var output = [Float](repeating: 0, count: convBase.featureCount)
                let timings = input.withUnsafeBufferPointer { source in
                    output.withUnsafeMutableBufferPointer {
                        convBase.forwardProfiled(image: source.baseAddress!, into: $0.baseAddress!)
                    }
                }
                features[algorithm, default: []].append(output)
                names = timings.map(\.name)
                for timing in timings {
                    perLayer[timing.name, default: []].append(timing.flops / timing.threadCPUSeconds / 1e9)
                }
                totalCPU.append(timings.map(\.threadCPUSeconds).reduce(0, +))
            }
            // The first image warms caches and pages in the scratch memory: report the best of the rest.
            result[algorithm.rawValue] = [
                "gflops_per_second_by_layer": names.map { name in
                    [name: ((perLayer[name]!.dropFirst().max() ?? perLayer[name]![0]) * 10).rounded() / 10]
                },
                "ms_per_image": ((totalCPU.dropFirst().min() ?? totalCPU[0]) * 1e4).rounded() / 10,
                "init_ms": Double(initTime.components.attoseconds / 1_000_000_000_000_000 + initTime.components.seconds * 1000),
            ]
        }
        var maxError = 0.0
        for (fast, reference) in zip(features[.adaptive]!, features[.direct]!) {
            let scale = reference.map { Double(abs($0)) }.max() ?? 0
            let difference = zip(fast, reference).map { Double(abs($0 - $1)) }.max() ?? 0
            maxError = max(maxError, scale > 0 ? difference / scale : difference)
        }
        result["max_relative_error_fast_vs_reference"] = maxError
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        emit(String(decoding: data, as: UTF8.self))
    }
}
