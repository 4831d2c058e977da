import BLAS
import Dispatch
import Synchronization
import TestSupport
import Testing
import VGG16

@Suite("VGG16 conv base")
struct ConvBaseTests {
    static let narrowWidths = [4, 5, 8, 8, 12, 12, 12, 16, 16, 16, 16, 16, 16]
    static let oddWidths = [3, 7, 6, 9, 11, 10, 13, 17, 15, 19, 9, 21, 5]

    @Test(
        "matches a straight-loop direct convolution at odd sizes, for every pooling layer",
        arguments: [
            (37, 37, ConvBaseTests.narrowWidths), (33, 51, ConvBaseTests.oddWidths),
            (51, 33, ConvBaseTests.narrowWidths),
        ])
    func matchesReference(height: Int, width: Int, widths: [Int]) throws {
        let weights = VGG16Weights.generated(widths: widths, seed: UInt64(height * 1000 + width))
        let image = randomFloats(count: height * width * 3, seed: 7, low: -120, high: 150)
        let reference = ReferenceConvBase(weights: weights).poolingOutputs(image: image, height: height, width: width)
        for layer in PoolingLayer.allCases {
            for algorithm in ConvAlgorithm.allCases {
                let base = try ConvBase(
                    weights: weights, imageHeight: height, imageWidth: width, output: layer, algorithm: algorithm)
                let expected = try #require(reference[layer])
                #expect(base.outputHeight == expected.height)
                #expect(base.outputWidth == expected.width)
                #expect(base.outputChannels == expected.channels)
                let features = base.forward(images: image, count: 1)
                let error = relativeError(features, expected.values)
                #expect(error < 1e-5, "\(algorithm) \(layer) at \(height)×\(width): relative error \(error)")
                print("conv base (\(algorithm)) vs reference, \(layer) at \(height)×\(width): relative error \(error)")
                #expect(expected.values.contains { $0 > 0 }, "the test must exercise non-zero features")
            }
        }
    }

    @Test("max-pooling floors odd sizes: 33×51 → 16×25 → 8×12 → 4×6 → 2×3 → 1×1")
    func poolingFloors() throws {
        let weights = VGG16Weights.generated(widths: Self.narrowWidths, seed: 1)
        let expected = [(16, 25), (8, 12), (4, 6), (2, 3), (1, 1)]
        for (layer, size) in zip(PoolingLayer.allCases, expected) {
            let base = try ConvBase(weights: weights, imageHeight: 33, imageWidth: 51, output: layer)
            #expect(base.outputHeight == size.0 && base.outputWidth == size.1, "\(layer)")
            #expect(base.featureCount == size.0 * size.1 * weights.layers[layer.convLayerCount - 1].outChannels)
        }
        let at150 = try ConvBase(weights: weights, imageHeight: 150, imageWidth: 150)
        #expect(at150.outputHeight == 4 && at150.outputWidth == 4)
    }

    @Test("images smaller than 32×32 are refused with a message")
    func refusesSmallImages() {
        let weights = VGG16Weights.generated(widths: Self.narrowWidths, seed: 1)
        #expect(throws: ConvBaseError.self) { try ConvBase(weights: weights, imageHeight: 31, imageWidth: 224) }
        #expect(throws: ConvBaseError.self) { try ConvBase(weights: weights, imageHeight: 224, imageWidth: 16) }
        #expect((try? ConvBase(weights: weights, imageHeight: 32, imageWidth: 32)) != nil)
        do {
            _ = try ConvBase(weights: weights, imageHeight: 20, imageWidth: 20)
        } catch {
            #expect("\(error)".contains("20×20") && "\(error)".contains("32×32"))
        }
    }

    @Test("generated weights are deterministic, He-uniform and hashed by their parameters")
    func generatedWeights() throws {
        let a = VGG16Weights.generated(widths: Self.narrowWidths, seed: 42)
        let b = VGG16Weights.generated(widths: Self.narrowWidths, seed: 42)
        let c = VGG16Weights.generated(widths: Self.narrowWidths, seed: 43)
        #expect(a.sha256 == b.sha256 && a.sha256 != c.sha256)
        #expect(a.sha256.count == 64)
        #expect(a.layers.map(\.kernel) == b.layers.map(\.kernel))
        #expect(a.widths == Self.narrowWidths)
        #expect(a.format == .generated)
        #expect(a.layers.map(\.name) == VGG16Weights.convLayerNames)
        for layer in a.layers {
            let limit = Float((6.0 / Double(9 * layer.inChannels)).squareRoot())
            #expect(layer.kernel.allSatisfy { abs($0) <= limit })
            #expect(layer.bias.allSatisfy { abs($0) <= 0.01 })
        }
        let standard = VGG16Weights.generated(seed: 0)
        #expect(standard.widths == VGG16Weights.standardWidths)
        #expect(standard.layers[12].kernel.count == 3 * 3 * 512 * 512)
        _ = try VGG16Weights(layers: a.layers, format: .generated, sha256: a.sha256)
    }

    @Test("full-width VGG16 at 224×224 gives 7×7×512 finite features, bit-identical whatever the batch")
    func fullWidthBatchIndependence() throws {
        // The BLAS thread count changes result bits; the project pins it to one (tests in this process too).
        BLASThreads.set(1)
        let weights = VGG16Weights.generated(seed: 2026)
        let base = try ConvBase(weights: weights, imageHeight: 224, imageWidth: 224)
        #expect(base.algorithm == .adaptive)
        #expect(base.outputHeight == 7 && base.outputWidth == 7 && base.outputChannels == 512)
        #expect(base.featureCount == 25088)
        let imageSize = 224 * 224 * 3
        let first = randomFloats(count: imageSize, seed: 1, low: -124, high: 152)
        let second = randomFloats(count: imageSize, seed: 2, low: -124, high: 152)
        // The same image alone, then second in a batch of two behind another image.
        let alone = base.forward(images: first, count: 1)
        let pair = base.forward(images: second + first, count: 2)
        #expect(alone.allSatisfy { $0.isFinite })
        #expect(alone.contains { $0 > 0 })
        #expect(alone.map(\.bitPattern) == pair[25088...].map(\.bitPattern))
        // Second instances, with their own buffers or sharing the weights, running on two threads at once,
        // give the same bits too.
        // Each iteration uses only its own instance (ConvBase is not thread-safe; one instance per thread).
        nonisolated(unsafe) let instances = [
            try ConvBase(weights: weights, imageHeight: 224, imageWidth: 224),
            ConvBase(sharingWeightsWith: base),
        ]
        let results = Mutex<[Int: [Float]]>([:])
        DispatchQueue.concurrentPerform(iterations: 2) { index in
            let features = instances[index].forward(images: first, count: 1)
            results.withLock { $0[index] = features }
        }
        for features in results.withLock({ $0.values }) {
            #expect(features.map(\.bitPattern) == alone.map(\.bitPattern))
        }
        // The direct algorithm agrees to rounding.
        let direct = try ConvBase(weights: weights, imageHeight: 224, imageWidth: 224, algorithm: .direct)
        let reference = direct.forward(images: first, count: 1)
        let scale = reference.map(abs).max() ?? 0
        let worst = zip(alone, reference).map { abs($0 - $1) }.max() ?? .infinity
        print("224×224 full width, adaptive vs direct: max |difference| / max |direct| = \(worst / scale)")
        #expect(worst / scale < 1e-5)
    }
}
