import Foundation
import HDF5
import TestSupport
import Testing
import VGG16

@Suite("VGG16 weights readers")
struct WeightsReaderTests {
    static let widths = [4, 4, 8, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16]

    func expectSame(_ weights: VGG16Weights, _ layers: [GeneratedConvLayer], _ comment: String) {
        #expect(weights.layers.count == 13, "\(comment)")
        for (read, written) in zip(weights.layers, layers) {
            #expect(read.name == written.name, "\(comment)")
            #expect(read.inChannels == written.inChannels && read.outChannels == written.outChannels, "\(comment)")
            #expect(read.kernel == written.kernel, "\(comment): \(read.name) kernel")
            #expect(read.bias == written.bias, "\(comment): \(read.name) bias")
        }
    }

    /// The message of the WeightsError thrown by loading `path`, or nil.
    func loadError(_ path: String) -> String? {
        do {
            _ = try VGG16Weights.load(path: path)
            return nil
        } catch let error as WeightsError {
            #expect(error.path == path)
            #expect("\(error)".hasPrefix(path + ": "))
            return error.message
        } catch {
            Issue.record("expected a WeightsError, got \(error)")
            return nil
        }
    }

    @Test("generated weights round-trip through the official layout, hashed by the file's bytes")
    func officialRoundTrip() throws {
        let directory = try TemporaryDirectory("vgg16-roundtrip")
        defer { directory.remove() }
        let generated = VGG16Weights.generated(widths: Self.widths, seed: 9)
        let path = directory.file("generated.h5")
        try generated.writeOfficialLayout(to: path)
        let loaded = try VGG16Weights.load(path: path)
        #expect(loaded.format == .kerasOfficial)
        #expect(loaded.widths == Self.widths)
        #expect(loaded.layers.map(\.kernel) == generated.layers.map(\.kernel))
        #expect(loaded.layers.map(\.bias) == generated.layers.map(\.bias))
        #expect(loaded.sha256.count == 64 && loaded.sha256 != generated.sha256)
        // The official file lists the pooling layers too, as Keras' own file does.
        let file = try HDF5File.open(path)
        defer { file.close() }
        #expect(try file.root.attributes.strings("layer_names") == VGG16Weights.layerNamesWithPooling)
        #expect(try file.root.group("block1_pool").attributes.strings("weight_names") == [])
        // A second load of the same bytes gives the same hash; a copy under another name too.
        let copy = directory.file("renamed.weights")
        try FileManager.default.copyItem(atPath: path, toPath: copy)
        #expect(try VGG16Weights.load(path: copy).sha256 == loaded.sha256)
    }

    @Test("each of the four layouts written here loads to the weights written")
    func allLayouts() throws {
        let directory = try TemporaryDirectory("vgg16-layouts")
        defer { directory.remove() }
        let layers = GeneratedWeightsFile.convLayers(widths: Self.widths, seed: 4)
        let cases: [(String, WeightsFormat, (String) throws -> Void)] = [
            ("official.h5", .kerasOfficial, { try GeneratedWeightsFile.writeKerasOfficial(layers, to: $0) }),
            ("keras2.h5", .kerasSaveWeights, { try GeneratedWeightsFile.writeKeras2SaveWeights(layers, to: $0) }),
            (
                "keras2-model.h5", .kerasSaveWeights,
                {
                    try GeneratedWeightsFile.writeKeras2SaveWeights(layers, to: $0, asWholeModel: true)
                }
            ),
            ("keras3-named.weights.h5", .keras3, { try GeneratedWeightsFile.writeKeras3(layers, to: $0) }),
            (
                "keras3-unnamed.weights.h5", .keras3,
                { try GeneratedWeightsFile.writeKeras3(layers, to: $0, storeNames: false) }
            ),
            (
                "keras3-nested.weights.h5", .keras3,
                { try GeneratedWeightsFile.writeKeras3(layers, to: $0, nestedIn: "functional") }
            ),
            ("theano.h5", .theano, { try GeneratedWeightsFile.writeTheano(layers, to: $0) }),
        ]
        for (name, format, write) in cases {
            let path = directory.file(name)
            try write(path)
            let weights = try VGG16Weights.load(path: path)
            #expect(weights.format == format, "\(name)")
            expectSame(weights, layers, name)
        }
    }

    @Test("a Keras 2 file saved under Theano has its kernels flipped back")
    func keras2TheanoBackend() throws {
        let directory = try TemporaryDirectory("vgg16-keras2-theano")
        defer { directory.remove() }
        var layers = GeneratedWeightsFile.convLayers(widths: Self.widths, seed: 5)
        let original = layers
        for index in layers.indices {
            let tap = layers[index].inChannels * layers[index].outChannels
            var flipped = layers[index].kernel
            for t in 0..<9 { for j in 0..<tap { flipped[t * tap + j] = layers[index].kernel[(8 - t) * tap + j] } }
            layers[index].kernel = flipped
        }
        let path = directory.file("theano-backend.h5")
        try GeneratedWeightsFile.writeKeras2SaveWeights(layers, to: path, backend: "theano")
        expectSame(try VGG16Weights.load(path: path), original, "backend theano")
    }

    @Test("a file that is not HDF5, is empty or is missing gets its own message")
    func notHDF5() throws {
        let directory = try TemporaryDirectory("vgg16-not-hdf5")
        defer { directory.remove() }
        let text = directory.file("x.h5")
        try "not weights\n".write(toFile: text, atomically: true, encoding: .utf8)
        #expect(loadError(text) == "not an HDF5 file")
        let empty = directory.file("empty.h5")
        FileManager.default.createFile(atPath: empty, contents: Data())
        #expect(loadError(empty)?.contains("not an HDF5 file") == true)
        #expect(loadError(directory.file("absent.h5")) == "no such file")
        let zip = directory.file("model.keras")
        FileManager.default.createFile(
            atPath: zip, contents: Data([0x50, 0x4B, 0x03, 0x04] + [UInt8](repeating: 0, count: 60)))
        #expect(loadError(zip)?.hasPrefix("not an HDF5 file but a zip archive, such as a Keras 3 .keras model") == true)
        #expect(loadError(directory.path)?.contains("directory") == true)
    }

    @Test("a truncated file is reported as truncated or damaged")
    func truncated() throws {
        let directory = try TemporaryDirectory("vgg16-truncated")
        defer { directory.remove() }
        let path = directory.file("whole.h5")
        try VGG16Weights.generated(widths: Self.widths, seed: 1).writeOfficialLayout(to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        for fraction in [0.5, 0.9] {
            let cut = directory.file("cut-\(fraction).h5")
            try bytes.prefix(Int(Double(bytes.count) * fraction)).write(to: URL(fileURLWithPath: cut))
            let message = loadError(cut)
            #expect(message?.hasPrefix("truncated or damaged HDF5 file") == true, "\(fraction): \(message ?? "loaded")")
        }
    }

    @Test("a missing layer, a wrong shape, VGG19 and ResNet each get a message naming what was expected")
    func badStructures() throws {
        let directory = try TemporaryDirectory("vgg16-bad")
        defer { directory.remove() }
        let layers = GeneratedWeightsFile.convLayers(widths: Self.widths, seed: 6)

        var missing = layers
        missing.remove(at: 8)  // block4_conv2
        let missingPath = directory.file("missing.h5")
        try GeneratedWeightsFile.writeKerasOfficial(missing, to: missingPath)
        #expect(
            loadError(missingPath)
                == "no layer block4_conv2 (expected the 13 VGG16 conv layers block1_conv1 … block5_conv3)")

        var wrong = layers
        wrong[5].kernelShape = [3, 3, 16, 8]
        wrong[5].kernel = [Float](repeating: 0, count: 9 * 16 * 8)
        let wrongPath = directory.file("wrong.h5")
        try GeneratedWeightsFile.writeKeras2SaveWeights(wrong, to: wrongPath)
        #expect(loadError(wrongPath)?.hasPrefix("layer block3_conv2 has kernel (3,3,16,8), expected (3,3,8,8)") == true)

        var wrongBias = layers
        wrongBias[0].bias = [0, 0]
        let biasPath = directory.file("bias.h5")
        try GeneratedWeightsFile.writeKerasOfficial(wrongBias, to: biasPath)
        #expect(loadError(biasPath)?.hasPrefix("layer block1_conv1 has bias (2,), expected (4,)") == true)

        var fiveByFive = layers
        fiveByFive[0].kernelShape = [5, 5, 3, 4]
        fiveByFive[0].kernel = [Float](repeating: 0, count: 25 * 12)
        let fivePath = directory.file("five.h5")
        try GeneratedWeightsFile.writeKeras3(fiveByFive, to: fivePath)
        #expect(
            loadError(fivePath)?.hasPrefix(
                "layer block1_conv1 (layers/conv2d) has kernel (5,5,3,4), expected (3,3,3,4)") == true)

        let vgg19Names = [
            "block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2",
            "block3_conv3",
            "block3_conv4", "block4_conv1", "block4_conv2", "block4_conv3", "block4_conv4", "block5_conv1",
            "block5_conv2",
            "block5_conv3", "block5_conv4",
        ]
        let vgg19 = GeneratedWeightsFile.convLayers(
            widths: [4, 4, 8, 8, 8, 8, 8, 8, 16, 16, 16, 16, 16, 16, 16, 16], names: vgg19Names, seed: 7)
        let writers: [(String, (String) throws -> Void)] = [
            ("official", { try GeneratedWeightsFile.writeKerasOfficial(vgg19, to: $0) }),
            ("keras2", { try GeneratedWeightsFile.writeKeras2SaveWeights(vgg19, to: $0) }),
            ("keras3", { try GeneratedWeightsFile.writeKeras3(vgg19, to: $0) }),
            ("keras3-unnamed", { try GeneratedWeightsFile.writeKeras3(vgg19, to: $0, storeNames: false) }),
            ("theano", { try GeneratedWeightsFile.writeTheano(vgg19, to: $0) }),
        ]
        for (label, write) in writers {
            let path = directory.file("vgg19-\(label).h5")
            try write(path)
            let message = loadError(path)
            #expect(message?.contains("VGG19") == true, "\(label): \(message ?? "loaded")")
        }

        let resnet = GeneratedWeightsFile.convLayers(
            widths: [8, 8, 8, 8, 8, 8],
            names: ["conv1", "res2a_branch2a", "res2a_branch2b", "res2a_branch2c", "res2a_branch1", "res2b_branch2a"],
            seed: 8)
        let resnetPath = directory.file("resnet.h5")
        try GeneratedWeightsFile.writeKerasOfficial(resnet, to: resnetPath)
        let resnetMessage = loadError(resnetPath)
        #expect(
            resnetMessage?.hasPrefix(
                "has layers conv1, res2a_branch2a, res2a_branch2b, res2a_branch2c, res2a_branch1, …") == true)
        #expect(resnetMessage?.contains("not a VGG16 weights file (expected one of: official Keras layout") == true)

        let unknown = directory.file("unknown.h5")
        let file = try HDF5File.create(unknown)
        _ = try file.root.write("data", [Float](repeating: 1, count: 4), shape: [4])
        file.close()
        #expect(loadError(unknown)?.hasPrefix("has top-level members data — not a VGG16 weights file") == true)
    }
}
