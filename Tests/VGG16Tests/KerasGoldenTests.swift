import Foundation
import HDF5
import TestSupport
import Testing
import VGG16

/// Checks against files written by Keras itself (Tests/Fixtures/keras, made by Tests/Fixtures/generate.sh):
/// narrow VGG16 weights (widths 4, 8, 8, 16, 16 per block) in every layout, and Keras' own outputs.
@Suite("VGG16 against Keras golden files")
struct KerasGoldenTests {
    static let weightsDirectory = fixturesDirectory() + "/keras/weights"
    static let goldenPath = fixturesDirectory() + "/keras/golden.h5"

    func weightsFile(_ name: String) -> String { Self.weightsDirectory + "/" + name }

    @Test("the official, full, Keras 2, Keras 3 and Theano files load to identical weights")
    func layoutsAgree() throws {
        let reference = try VGG16Weights.load(path: weightsFile("notop-official.h5"))
        #expect(reference.format == .kerasOfficial)
        #expect(reference.widths == [4, 4, 8, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16])
        let others: [(String, WeightsFormat)] = [
            ("full-official.h5", .kerasOfficial), ("keras2-save-weights.h5", .kerasSaveWeights),
            ("keras3.weights.h5", .keras3), ("theano-gist.h5", .theano),
        ]
        var hashes: Set<String> = [reference.sha256]
        for (name, format) in others {
            let weights = try VGG16Weights.load(path: weightsFile(name))
            #expect(weights.format == format, "\(name)")
            #expect(weights.layers.map(\.name) == reference.layers.map(\.name), "\(name)")
            #expect(weights.layers.map(\.kernel) == reference.layers.map(\.kernel), "\(name): kernels differ")
            #expect(weights.layers.map(\.bias) == reference.layers.map(\.bias), "\(name): biases differ")
            hashes.insert(weights.sha256)
        }
        #expect(hashes.count == 5, "each file has its own bytes and so its own hash")
    }

    @Test(
        "features of Keras' direct input match Keras within 1e-4 of the largest magnitude, every pooling layer",
        arguments: ["notop-official.h5", "keras2-save-weights.h5", "keras3.weights.h5", "theano-gist.h5"])
    func matchesKeras(weightsName: String) throws {
        let weights = try VGG16Weights.load(path: weightsFile(weightsName))
        let golden = try HDF5File.open(Self.goldenPath)
        defer { golden.close() }
        let inputDataset = try golden.root.dataset("direct/input")
        let shape = inputDataset.shape  // (N, H, W, 3)
        let input = try inputDataset.read(Float.self)
        for layer in PoolingLayer.allCases where golden.root.isDataset("direct/\(layer.rawValue)") {
            for algorithm in ConvAlgorithm.allCases {
                let expected = try golden.root.dataset("direct/\(layer.rawValue)").read(Float.self)
                let base = try ConvBase(
                    weights: weights, imageHeight: shape[1], imageWidth: shape[2], output: layer, algorithm: algorithm)
                let features = base.forward(images: input, count: shape[0])
                #expect(features.count == expected.count)
                let scale = expected.map(abs).max() ?? 0
                let worst = zip(features, expected).map { abs($0 - $1) }.max() ?? .infinity
                let relative = worst / scale
                print("Keras golden \(weightsName) \(layer) \(algorithm): max |difference| / max |Keras| = \(relative)")
                #expect(scale > 0)
                #expect(relative < 1e-4, "\(weightsName) \(layer) \(algorithm): \(relative)")
            }
        }
    }

    @Test("each bad weights file written by Keras' generator gets its own clear message")
    func badFiles() throws {
        func message(_ name: String) -> String {
            do {
                _ = try VGG16Weights.load(path: weightsFile(name))
                return "loaded"
            } catch {
                print("\(name): \(error)")
                return (error as? WeightsError)?.message ?? "\(error)"
            }
        }
        #expect(message("not-hdf5.h5") == "not an HDF5 file")
        #expect(message("truncated.h5").hasPrefix("truncated or damaged HDF5 file ("))
        #expect(
            message("missing-layer.h5")
                == "no layer block4_conv2 (expected the 13 VGG16 conv layers block1_conv1 … block5_conv3)")
        #expect(message("wrong-shape.h5").hasPrefix("layer block3_conv2 has kernel (3,3,12,8), expected (3,3,8,8)"))
        #expect(
            message("vgg19-like.h5").hasPrefix(
                "has layer block3_conv4, which VGG19 has and VGG16 does not — this is a VGG19 weights file"))
        #expect(
            message("resnet-like.h5").hasPrefix(
                "has layers conv1, bn_conv1, res2a_branch2a, res2a_branch1, avg_pool — not a VGG16 weights file (expected one of:"
            ))
    }
}
