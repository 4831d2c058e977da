import BLAS
import FineTuning
import Foundation
import TestSupport
import Testing
import TopModel
import VGG16

/// Time of one fine-tuning step at full width (generated weights), split into the frozen pass (blocks 1–4,
/// per image), block5 + top forward/backward (per batch) and the optimizer step; runs only with
/// FINETUNE_BENCH=1, best in a release build (`make bench-finetune-step`). Prints figures, asserts nothing
/// about time.
@Suite("Fine-tuning step time", .enabled(if: ProcessInfo.processInfo.environment["FINETUNE_BENCH"] != nil))
struct FineTuningBenchmark {
    @Test("seconds per batch of 32 at 150×150: frozen pass, block5 + top gradient, SGD step (one thread)")
    func step() throws {
        let environment = ProcessInfo.processInfo.environment
        let size = Int(environment["FINETUNE_BENCH_SIZE"] ?? "150") ?? 150
        let batch = Int(environment["FINETUNE_BENCH_BATCH"] ?? "32") ?? 32
        BLASThreads.set(1)
        let weights = VGG16Weights.generated(seed: 1)
        let base = try ConvBase(weights: weights, imageHeight: size, imageWidth: size, output: .block4_pool)
        let image = randomFloats(count: size * size * 3, seed: 5, low: -124, high: 152)
        var block4 = [Float](repeating: 0, count: batch * base.featureCount)
        let frozenStart = ContinuousClock.now
        for k in 0..<batch {
            block4.withUnsafeMutableBufferPointer { out in
                base.forward(image: image, into: out.baseAddress! + k * base.featureCount)
            }
        }
        let frozen = (ContinuousClock.now - frozenStart).seconds
        let (h, w) = (base.outputHeight / 2, base.outputWidth / 2)
        let top = try TopModelWeights.glorotUniform(inputs: h * w * 512, hidden: 256, classes: 2, seed: 3)
        let block = try TrainableBlock(
            convLayers: Array(weights.layers.suffix(3)), top: top, inputHeight: base.outputHeight,
            inputWidth: base.outputWidth, inputChannels: base.outputChannels)
        let labels = (0..<batch).map { Int32($0 % 2) }
        _ = block.batchGradient(input: block4, labels: labels, batch: batch)  // warm-up
        let forwardStart = ContinuousClock.now
        _ = block.pooledFeatures(input: block4, batch: batch)
        let forward = (ContinuousClock.now - forwardStart).seconds
        let gradientStart = ContinuousClock.now
        let gradient = block.batchGradient(input: block4, labels: labels, batch: batch)
        let backward = (ContinuousClock.now - gradientStart).seconds
        let optimizer = TensorOptimizer(
            .sgd(learningRate: 1e-4, momentum: 0.9), tensorSizes: block.tensors.map(\.count))
        var tensors = block.tensors
        let stepStart = ContinuousClock.now
        optimizer.step(parameters: &tensors, gradients: gradient.tensors)
        let step = (ContinuousClock.now - stepStart).seconds
        let pixels = Double(batch * base.outputHeight * base.outputWidth)
        let convFlops = 3 * 2 * pixels * 9 * 512 * 512  // forward GEMM of the three convs
        let parameters = block.tensors.reduce(0) { $0 + $1.count }
        print(
            String(
                format: "fine-tuning step, %d×%d, batch %d, 1 thread (%@): frozen pass %.2f s (%.1f images/s), "
                    + "block5+top forward %.2f s, forward+backward %.2f s (%.1f GFLOP/s on the convs' 3 GEMMs each), "
                    + "SGD step %.3f s; %d trainable parameters (%.1f MB of float32 per gradient or broadcast)",
                size, size, batch, BLASKernels.coreName, frozen, Double(batch) / frozen, forward, backward,
                3 * convFlops / backward / 1e9, step, parameters, Double(parameters * 4) / 1e6))
    }
}

extension Duration {
    fileprivate var seconds: Double { Double(components.seconds) + Double(components.attoseconds) * 1e-18 }
}
