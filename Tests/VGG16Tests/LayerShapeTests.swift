import TestSupport
import Testing

@testable import VGG16

/// Every algorithm on every VGG16 conv shape at its real channel widths, one layer at a time, against a
/// straight-loop convolution in Double.
@Suite("VGG16 conv layers at full width")
struct LayerShapeTests {
    /// (input channels, output channels) of VGG16's 13 convs, each distinct pair once.
    static let shapes = [(3, 64), (64, 64), (64, 128), (128, 128), (128, 256), (256, 256), (256, 512), (512, 512)]

    @Test(
        "each algorithm equals the straight-loop convolution within 1e-5 for every VGG16 layer shape",
        arguments: LayerShapeTests.shapes)
    func layerMatchesReference(inChannels: Int, outChannels: Int) throws {
        // 20×20 runs 4×4 Winograd tiles over whole and partial bands; 9×11 and 13×7 leave partial tiles on
        // both sides; pooled and unpooled output passes both run.
        for (height, width, pools) in [(20, 20, false), (9, 11, true), (13, 7, false)] {
            let seed = UInt64(inChannels * 1000 + outChannels)
            let layer = ConvLayerWeights(
                name: "conv_\(inChannels)_\(outChannels)", inChannels: inChannels, outChannels: outChannels,
                kernel: randomFloats(count: 9 * inChannels * outChannels, seed: seed, low: -1, high: 1)
                    .map { $0 * (6 / Float(9 * inChannels)).squareRoot() },
                bias: randomFloats(count: outChannels, seed: seed + 1, low: -0.1, high: 0.1))
            // What each layer sees: caffe-preprocessed pixels for the first, ReLU outputs (≥ 0) after it.
            let image = randomFloats(
                count: height * width * inChannels, seed: seed + 2, low: inChannels == 3 ? -120 : 0,
                high: inChannels == 3 ? 150 : 2)
            // Every output channel for narrow layers, a spread of 32 for wide ones (keeps the Double loops short).
            let step = max(1, outChannels / 32)
            let checked = Array(stride(from: 0, to: outChannels, by: step)) + [outChannels - 1]
            let expected = reference(
                layer: layer, image: image, height: height, width: width, pools: pools, channels: checked)
            for algorithm in [ConvAlgorithm.direct, .winograd, .winograd4x4] {
                let stage = try ConvStage(
                    plan: .init(layer: layer, height: height, width: width, pools: pools, algorithm: algorithm))
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
                #expect(
                    error < 1e-5,
                    "\(algorithm) \(inChannels)→\(outChannels) at \(height)×\(width)\(pools ? " pooled" : ""): \(error)"
                )
                #expect(expected.contains { $0 > 0 })
            }
        }
    }

    /// ReLU(conv3×3 'same' + bias), then max-pool 2×2/2 if `pools`, for the output `channels` only; HWC with
    /// just those channels per pixel.
    func reference(
        layer: ConvLayerWeights, image: [Float], height: Int, width: Int, pools: Bool, channels: [Int]
    ) -> [Double] {
        let cin = layer.inChannels
        let cout = layer.outChannels
        var conv = [Double](repeating: 0, count: height * width * channels.count)
        image.withUnsafeBufferPointer { input in
            layer.kernel.withUnsafeBufferPointer { kernel in
                for y in 0..<height {
                    for x in 0..<width {
                        for (slot, o) in channels.enumerated() {
                            var sum = Double(layer.bias[o])
                            for dy in 0..<3 where (0..<height).contains(y + dy - 1) {
                                for dx in 0..<3 where (0..<width).contains(x + dx - 1) {
                                    let pixel = input.baseAddress! + ((y + dy - 1) * width + x + dx - 1) * cin
                                    let taps = kernel.baseAddress! + (dy * 3 + dx) * cin * cout + o
                                    for i in 0..<cin { sum += Double(pixel[i]) * Double(taps[i * cout]) }
                                }
                            }
                            conv[(y * width + x) * channels.count + slot] = max(0, sum)
                        }
                    }
                }
            }
        }
        guard pools else { return conv }
        let (outHeight, outWidth) = (height / 2, width / 2)
        var pooled = [Double](repeating: 0, count: outHeight * outWidth * channels.count)
        for y in 0..<outHeight {
            for x in 0..<outWidth {
                for slot in channels.indices {
                    var m = -Double.infinity
                    for (dy, dx) in [(0, 0), (0, 1), (1, 0), (1, 1)] {
                        m = max(m, conv[((2 * y + dy) * width + 2 * x + dx) * channels.count + slot])
                    }
                    pooled[(y * outWidth + x) * channels.count + slot] = m
                }
            }
        }
        return pooled
    }
}
