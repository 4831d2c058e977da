import BLAS
import TestSupport
import Testing
import VGG16

/// `ConvBase(batch:)`: the last layers computed for several images at once.
@Suite("VGG16 conv base, grouped last layers")
struct GroupedLayersTests {
    @Test(
        "every image of a partial group matches the straight-loop reference at odd sizes",
        arguments: [(37, 37, ConvBaseTests.narrowWidths), (33, 51, ConvBaseTests.oddWidths)])
    func groupMatchesReference(height: Int, width: Int, widths: [Int]) throws {
        let weights = VGG16Weights.generated(widths: widths, seed: UInt64(height * 1000 + width))
        let base = try ConvBase(weights: weights, imageHeight: height, imageWidth: width, batch: 4)
        #expect(base.batch == 4)
        let images = (0..<3).map {
            randomFloats(count: height * width * 3, seed: UInt64(20 + $0), low: -120, high: 150)
        }
        let features = base.forward(images: images.flatMap { $0 }, count: 3)
        for (index, image) in images.enumerated() {
            let expected = try #require(
                ReferenceConvBase(weights: weights).poolingOutputs(image: image, height: height, width: width)[
                    .block5_pool])
            let actual = Array(features[(index * base.featureCount)..<((index + 1) * base.featureCount)])
            let error = relativeError(actual, expected.values)
            #expect(error < 1e-5, "image \(index) at \(height)×\(width): relative error \(error)")
            #expect(expected.values.contains { $0 > 0 })
        }
    }

    @Test(
        "full width, recommended batch: same bits alone, at any place in a group, on any thread",
        arguments: [150, 224, 97])
    func groupPositionIndependence(side: Int) throws {
        // As in the worker: one BLAS thread (the thread count changes the bits), the batch for this kernel set.
        BLASThreads.set(1)
        let weights = VGG16Weights.generated(seed: 2027)
        let base = try ConvBase(
            weights: weights, imageHeight: side, imageWidth: side, batch: ConvBase.recommendedBatch)
        print("OpenBLAS \(BLASKernels.coreName): recommended batch \(base.batch)")
        let count = side * side * 3
        let images = (0..<4).map { randomFloats(count: count, seed: UInt64(40 + $0), low: -124, high: 152) }
        let image = images[0]
        let alone = base.forward(images: image, count: 1)
        #expect(alone.contains { $0 > 0 } && alone.allSatisfy(\.isFinite))
        let last = base.forward(images: images[1] + images[2] + images[3] + image, count: 4)
        let second = ConvBase(sharingWeightsWith: base).forward(images: images[1] + image, count: 2)
        let first = base.forward(images: image + images[3], count: 2)
        let n = base.featureCount
        #expect(Array(last[(3 * n)...]).map(\.bitPattern) == alone.map(\.bitPattern))
        #expect(Array(second[n...]).map(\.bitPattern) == alone.map(\.bitPattern))
        #expect(Array(first[..<n]).map(\.bitPattern) == alone.map(\.bitPattern))
        // And within rounding of the one-image-at-a-time engine.
        let single = try ConvBase(weights: weights, imageHeight: side, imageWidth: side).forward(
            images: image, count: 1)
        let scale = single.map(abs).max() ?? 0
        let worst = zip(alone, single).map { abs($0 - $1) }.max() ?? .infinity
        #expect(worst / scale < 1e-5)
    }
}
