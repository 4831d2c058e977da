import ArgumentParser
import BLAS
import Foundation
import ImageInput
import Logging
import VGG16

/// `bottleneck-dev bench-engine`: the conv base alone, for `make bench` — the OpenBLAS kernel
/// set, per-layer GFLOP/s of each algorithm on one thread, and the largest difference between the fast path and
/// the im2col reference path, as one JSON line.
struct BenchEngineCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench-engine",
        abstract: "Per-layer speed and accuracy of the VGG16 conv base (JSON on stdout).")

    @Option(help: "VGG16 weights (default: generated full-width weights, seed 1).")
    var weights: String?

    @Option(help: "Square image side.")
    var imageSize: Int = 224

    @Option(help: "Rounds of random images compared and timed (the first warms up).")
    var images: Int = 3

    @Option(help: "Images per group of the fast path's last layers (ConvBase batch).")
    var batch: Int = ConvBase.recommendedBatch

    @Option(help: "Arithmetic of the matrix products: fp32, or bf16 (needs the CPU flag avx512_bf16).")
    var precision: ConvPrecision = .fp32

    @Option(help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: String = "info"

    @Option(help: "JPEG/PNG images to use (caffe preprocessing) instead of random pixels, cycled.")
    var image: [String] = []

    @Flag(help: ArgumentHelp("Compute on a thread of its own, as workers do.", visibility: .hidden))
    var onThread = false

    func run() throws {
        let level = Logger.Level(rawValue: logLevel) ?? .info
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
        if onThread {
            let done = DispatchSemaphore(value: 0)
            nonisolated(unsafe) var failure: (any Error)?
            let thread = Thread {
                do { try measure() } catch { failure = error }
                done.signal()
            }
            thread.stackSize = 8 << 20
            thread.start()
            done.wait()
            if let failure { throw failure }
        } else {
            try measure()
        }
    }

    private func measure() throws {
        BLASThreads.set(1)
        let weights = try weights.map(VGG16Weights.load(path:)) ?? VGG16Weights.generated(seed: 1)
        let size = imageSize
        var generator = SystemRandomNumberGenerator()
        // caffe-preprocessed pixels span about ±128.
        let groupSize = max(1, batch)
        let settings = ImageSettings(height: size, width: size, preprocessing: .caffe)
        let files = try image.map { path in
            var pixels = [Float](repeating: 0, count: size * size * 3)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: path)))
            try pixels.withUnsafeMutableBufferPointer {
                try ImagePipeline.prepare(bytes, filename: path, settings: settings, into: $0.baseAddress!)
            }
            return pixels
        }
        let inputs = (0..<(max(1, images) * groupSize)).map { index in
            files.isEmpty
                ? (0..<(size * size * 3)).map { _ in Float.random(in: -128...128, using: &generator) }
                : files[index % files.count]
        }
        var result: [String: Any] = [
            "openblas_core": BLASKernels.coreName, "image_size": size, "images": inputs.count, "batch": groupSize,
            "precision": precision.rawValue,
        ]
        var features: [ConvAlgorithm: [[Float]]] = [:]
        for algorithm in [ConvAlgorithm.direct, .adaptive] {
            let initStart = ContinuousClock.now
            let convBase = try ConvBase(
                weights: weights, imageHeight: size, imageWidth: size, algorithm: algorithm,
                batch: algorithm == .direct ? 1 : groupSize, precision: precision)
            let initTime = ContinuousClock.now - initStart
            var perLayer: [String: [Double]] = [:]
            var names: [String] = []
            var totalCPU: [Double] = []
            let group = convBase.batch
            for first in stride(from: 0, to: inputs.count, by: group) {
                let chunk = Array(inputs[first..<min(inputs.count, first + group)])
                var outputs = chunk.map { _ in [Float](repeating: 0, count: convBase.featureCount) }
                let timings = withPointers(chunk, &outputs) { sources, destinations in
                    convBase.forwardProfiled(images: sources, into: destinations)
                }
                features[algorithm, default: []].append(contentsOf: outputs)
                names = timings.map(\.name)
                for timing in timings {
                    perLayer[timing.name, default: []].append(timing.flops / timing.threadCPUSeconds / 1e9)
                }
                totalCPU.append(timings.map(\.threadCPUSeconds).reduce(0, +) / Double(chunk.count))
            }
            // The first image warms caches and pages in the scratch memory: report the best of the rest.
            result[algorithm.rawValue] = [
                "gflops_per_second_by_layer": names.map { name in
                    [name: ((perLayer[name]!.dropFirst().max() ?? perLayer[name]![0]) * 10).rounded() / 10]
                },
                "ms_per_image": ((totalCPU.dropFirst().min() ?? totalCPU[0]) * 1e4).rounded() / 10,
                "batch": convBase.batch,
                "ms_per_image_each_group": totalCPU.map { ($0 * 1e4).rounded() / 10 },
                "init_ms": Double(
                    initTime.components.attoseconds / 1_000_000_000_000_000 + initTime.components.seconds * 1000),
            ]
        }
        var maxError = 0.0
        for (fast, reference) in zip(features[.adaptive]!, features[.direct]!) {
            let scale = reference.map { Double(abs($0)) }.max() ?? 0
            let difference = zip(fast, reference).map { Double(abs($0 - $1)) }.max() ?? 0
            maxError = max(maxError, scale > 0 ? difference / scale : difference)
        }
        result["max_relative_error_fast_vs_reference"] = maxError
        if precision != .fp32 {
            // Against the fp32 fast path (itself within a few 1e-6 of the reference path) on the same images.
            let reference = try ConvBase(
                weights: weights, imageHeight: size, imageWidth: size, algorithm: .adaptive, batch: groupSize)
            let fp32 = inputs.map { input in
                reference.forward(images: input, count: 1)
            }
            for algorithm in [ConvAlgorithm.direct, .adaptive] {
                var largest = 0.0
                for (ours, exact) in zip(features[algorithm]!, fp32) {
                    let scale = exact.map { Double(abs($0)) }.max() ?? 0
                    let difference = zip(ours, exact).map { Double(abs($0 - $1)) }.max() ?? 0
                    largest = max(largest, scale > 0 ? difference / scale : difference)
                }
                result["max_relative_error_\(algorithm.rawValue)_vs_fp32"] = largest
            }
        }
        let data = try JSONSerialization.data(withJSONObject: result, options: [.sortedKeys])
        print(String(decoding: data, as: UTF8.self))
    }

    /// Runs `body` with pointers to each of `inputs` and `outputs`, which stay valid for its duration.
    private func withPointers<R>(
        _ inputs: [[Float]], _ outputs: inout [[Float]],
        _ body: ([UnsafePointer<Float>], [UnsafeMutablePointer<Float>]) -> R
    ) -> R {
        let sources = inputs.map { input in
            let copy = UnsafeMutablePointer<Float>.allocate(capacity: input.count)
            copy.initialize(from: input, count: input.count)
            return copy
        }
        let destinations = outputs.map { UnsafeMutablePointer<Float>.allocate(capacity: $0.count) }
        defer {
            sources.forEach { $0.deallocate() }
            destinations.forEach { $0.deallocate() }
        }
        let result = body(sources.map { UnsafePointer($0) }, destinations)
        for index in outputs.indices {
            outputs[index] = Array(UnsafeBufferPointer(start: destinations[index], count: outputs[index].count))
        }
        return result
    }
}
