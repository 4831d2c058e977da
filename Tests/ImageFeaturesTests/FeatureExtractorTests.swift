import Foundation
import ImageFeatures
import ImageInput
import TestSupport
import Testing
import VGG16

@Suite("Feature extractor (decode overlapped with the conv base)")
struct FeatureExtractorTests {
    static let settings = ImageSettings(height: 40, width: 44, interpolation: .nearest, preprocessing: .caffe)
    static let weights = VGG16Weights.generated(widths: [4, 4, 8, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16], seed: 7)

    static func images() throws -> [(filename: String, bytes: [UInt8])] {
        try (0..<5).map { index in
            let width = 50 + 7 * index
            let height = 41 + 3 * index
            let rgb = ImageFiles.syntheticRGB(width: width, height: height).map { $0 &+ UInt8(index * 31) }
            let bytes =
                index % 2 == 0
                ? try ImageFiles.png(rgb, width: width, height: height, channels: 3)
                : ImageFiles.ppm(rgb, width: width, height: height)
            return (filename: "c/\(index).img", bytes: bytes)
        }
    }

    @Test("features equal decode + conv base run directly, and do not depend on the batch around an image")
    func batchIndependence() throws {
        let images = try Self.images()
        let extractor = try FeatureExtractor(weights: Self.weights, settings: Self.settings, layer: .block5_pool)
        #expect(extractor.featureShape == [1, 1, 16])
        let all = try extractor.extract(images).map { try $0.get() }
        let reversed = try extractor.extract(images.reversed()).map { try $0.get() }
        #expect(all == Array(reversed.reversed()))
        let alone = try extractor.extract([images[3]]).map { try $0.get() }
        #expect(alone[0] == all[3])

        let direct = try ConvBase(weights: Self.weights, imageHeight: 40, imageWidth: 44, output: .block5_pool)
        var input = [Float](repeating: 0, count: 40 * 44 * 3)
        try input.withUnsafeMutableBufferPointer {
            try ImagePipeline.prepare(
                images[2].bytes, filename: images[2].filename, settings: Self.settings, into: $0.baseAddress!)
        }
        var expected = [Float](repeating: 0, count: direct.featureCount)
        direct.forward(image: input, into: &expected)
        #expect(all[2] == expected)
        #expect(all.allSatisfy { $0.allSatisfy(\.isFinite) })
    }

    @Test("one, two or three compute threads give the same bytes")
    func threadCountIndependence() throws {
        let images = try Self.images()
        let one = try FeatureExtractor(weights: Self.weights, settings: Self.settings, layer: .block5_pool, threads: 1)
        let two = try FeatureExtractor(weights: Self.weights, settings: Self.settings, layer: .block5_pool, threads: 2)
        let three = try FeatureExtractor(
            weights: Self.weights, settings: Self.settings, layer: .block3_pool, threads: 3)
        let reference = try one.extract(images).map { try $0.get() }
        #expect(try two.extract(images).map { try $0.get() } == reference)
        #expect(try two.extract(images + images).map { try $0.get() } == reference + reference)
        let threeBlock3 = try three.extract(images).map { try $0.get() }
        let oneBlock3 = try FeatureExtractor(weights: Self.weights, settings: Self.settings, layer: .block3_pool)
            .extract(images).map { try $0.get() }
        #expect(threeBlock3 == oneBlock3)
    }

    @Test("an unreadable image among good ones is a failure value at its own position")
    func badImageInTheMiddle() throws {
        var images = try Self.images()
        images.insert((filename: "c/broken.jpg", bytes: [0xFF, 0xD8, 0xFF, 0xE0, 0, 16]), at: 2)
        images.insert((filename: "c/empty.png", bytes: []), at: 0)
        let extractor = try FeatureExtractor(weights: Self.weights, settings: Self.settings, layer: .block4_pool)
        let results = extractor.extract(images)
        #expect(results.count == 7)
        for (index, result) in results.enumerated() {
            switch result {
            case .success(let features):
                #expect(index != 0 && index != 3)
                #expect(features.count == extractor.featureCount)
            case .failure(let error):
                #expect(index == 0 || index == 3)
                #expect(error.filename == images[index].filename)
            }
        }
    }
}
