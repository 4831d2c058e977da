import TestSupport
import Testing

@testable import VGG16

/// F(6×6, 3×3), the tiles `.adaptive` takes in fp32 where they save multiplications, on every VGG16 conv shape
/// at its real channel widths, one layer at a time, against a straight-loop convolution in Double.
@Suite("VGG16 conv layers in F(6×6) tiles")
struct LargeTileTests {
    @Test(
        "F(6×6) equals the straight-loop convolution within 2e-5 for every VGG16 layer shape",
        arguments: LayerShapeTests.shapes.filter { $0.0 > 3 })
    func largeTilesMatchReference(inChannels: Int, outChannels: Int) throws {
        // 18×18 is covered by whole tiles (pooled and not); 20×20, 9×11 and 13×7 leave partial tiles.
        for (height, width, pools) in [(18, 18, true), (20, 20, false), (9, 11, true), (13, 7, false)] {
            let seed = UInt64(inChannels * 1000 + outChannels + 17)
            let layer = ConvLayerWeights(
                name: "conv_\(inChannels)_\(outChannels)", inChannels: inChannels, outChannels: outChannels,
                kernel: randomFloats(count: 9 * inChannels * outChannels, seed: seed, low: -1, high: 1)
                    .map { $0 * (6 / Float(9 * inChannels)).squareRoot() },
                bias: randomFloats(count: outChannels, seed: seed + 1, low: -0.1, high: 0.1))
            let image = randomFloats(count: height * width * inChannels, seed: seed + 2, low: 0, high: 2)
            let step = max(1, outChannels / 32)
            let checked = Array(stride(from: 0, to: outChannels, by: step)) + [outChannels - 1]
            let expected = LayerShapeTests().reference(
                layer: layer, image: image, height: height, width: width, pools: pools, channels: checked)
            let stage = try ConvStage(
                plan: .init(
                    layer: layer, height: height, width: width, pools: pools, algorithm: .winograd4x4,
                    largeTiles: true))
            #expect(stage.tileSide == 6)
            for y in 0..<height {
                image.withUnsafeBufferPointer {
                    (stage.interior + y * stage.paddedRowFloats).update(
                        from: $0.baseAddress! + y * width * inChannels, count: width * inChannels)
                }
            }
            let (outHeight, outWidth) = pools ? (height / 2, width / 2) : (height, width)
            var output = [Float](repeating: .nan, count: outHeight * outWidth * outChannels)
            output.withUnsafeMutableBufferPointer {
                stage.run(
                    scratch: ConvScratch(floats: stage.scratchFloats), into: $0.baseAddress!,
                    rowStride: outWidth * outChannels)
            }
            let actual = (0..<(outHeight * outWidth)).flatMap { pixel in
                checked.map { output[pixel * outChannels + $0] }
            }
            let error = relativeError(actual, expected)
            print("F(6×6) \(inChannels)→\(outChannels) at \(height)×\(width)\(pools ? " pooled" : ""): \(error)")
            #expect(
                error < 2e-5, "\(inChannels)→\(outChannels) at \(height)×\(width)\(pools ? " pooled" : ""): \(error)")
            #expect(expected.contains { $0 > 0 })
        }
    }

    @Test("adaptive: F(6×6) in fp32 where it saves a fifth of the products; bf16: F(4×4) on maps ≥ 64 of ≥ 64 channels")
    func adaptiveChoosesLargeTilesWhereTheyPay() {
        func side(_ n: Int, pools: Bool, _ precision: ConvPrecision = .fp32, inChannels: Int = 64) -> Int {
            ConvAlgorithm.adaptive.tileSide(
                height: n, width: n, inChannels: inChannels, pools: pools, precision: precision)
        }
        // 150×150: block 1 (150), block 3's pooled layer (36 of 37 rows), block 4 (18).
        #expect(side(150, pools: false) == 6)
        #expect(side(75, pools: false) == 4)
        #expect(side(37, pools: false) == 4)
        #expect(side(37, pools: true) == 6)
        #expect(side(18, pools: true) == 6)
        #expect(side(9, pools: false) == 2)
        #expect(side(8, pools: false) == 2)
        // 224×224: 6×6 tiles never save enough.
        for n in [224, 112, 56, 28] { #expect(side(n, pools: n != 224) == 4) }
        #expect(side(14, pools: true) == 2)
        // bf16: F(4×4) on maps of at least 64 (blocks 1–2 at 150 and 224) with at least 64 input channels,
        // F(2×2) otherwise, never F(6×6).
        for n in [150, 75, 224, 112, 64] { #expect(side(n, pools: n != 150, .bf16) == 4) }
        for n in [63, 56, 37, 28, 18, 14, 9] { #expect(side(n, pools: true, .bf16, inChannels: 512) == 2) }
        #expect(side(150, pools: false, .bf16, inChannels: 63) == 2)
        #expect(
            ConvAlgorithm.winograd4x4.tileSide(
                height: 150, width: 150, inChannels: 64, pools: false, precision: .fp32) == 4)
    }
}
