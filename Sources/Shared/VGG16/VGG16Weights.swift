import Crypto
import FileIntegrity
import Foundation

/// The 13 conv layers of VGG16 (block1_conv1 … block5_conv3), whatever file layout they came from.
///
/// Kernels are HWIO and in cross-correlation convention whatever the source layout (Theano kernels are
/// transposed and flipped on load). Channel widths come from the weights, so narrow networks work too.
public struct VGG16Weights: Sendable {
    /// 13 layers, block1_conv1 … block5_conv3, in network order.
    public let layers: [ConvLayerWeights]
    public let format: WeightsFormat
    /// Lower-case hex SHA-256 of the file's bytes; for generated weights, of the parameters
    /// (see `generated(widths:seed:)`).
    public let sha256: String

    /// The output widths of the 13 conv layers of the standard VGG16.
    public static let standardWidths = [64, 64, 128, 128, 256, 256, 256, 512, 512, 512, 512, 512, 512]

    /// Conv layers in each of the five blocks.
    public static let convLayersPerBlock = [2, 2, 3, 3, 3]

    /// The Keras names of the 13 conv layers, in network order.
    public static let convLayerNames: [String] = {
        var names: [String] = []
        for (block, count) in convLayersPerBlock.enumerated() {
            for conv in 1...count { names.append("block\(block + 1)_conv\(conv)") }
        }
        return names
    }()

    /// The Keras layer names of the conv base in order, pooling layers included (as in `layer_names`).
    public static let layerNamesWithPooling: [String] = {
        var names: [String] = []
        for (block, count) in convLayersPerBlock.enumerated() {
            for conv in 1...count { names.append("block\(block + 1)_conv\(conv)") }
            names.append("block\(block + 1)_pool")
        }
        return names
    }()

    /// The output widths of the 13 conv layers.
    public var widths: [Int] { layers.map(\.outChannels) }

    /// Makes weights from 13 layers after checking that they chain: 3 input channels first, each layer's
    /// input width equal to the previous layer's output width, names block1_conv1 … block5_conv3.
    public init(layers: [ConvLayerWeights], format: WeightsFormat, sha256: String) throws {
        guard layers.map(\.name) == Self.convLayerNames else {
            throw WeightsError(
                path: "", message: "layers are named \(layers.map(\.name)), expected \(Self.convLayerNames)")
        }
        try Self.checkChain(layers.map { ($0.name, [3, 3, $0.inChannels, $0.outChannels], $0.bias.count) }, path: "")
        self.layers = layers
        self.format = format
        self.sha256 = sha256
    }

    init(unchecked layers: [ConvLayerWeights], format: WeightsFormat, sha256: String) {
        self.layers = layers
        self.format = format
        self.sha256 = sha256
    }

    /// Reads VGG16 conv weights from an HDF5 file in any of the supported layouts, identified by structure.
    ///
    /// Throws `WeightsError` for a missing or non-HDF5 file, a truncated or damaged file, a VGG19 or other
    /// network, a missing layer, or a kernel/bias of the wrong shape.
    public static func load(path: String) throws -> VGG16Weights {
        try WeightsFileReader(path: path).read()
    }

    /// Deterministic random weights: He-uniform kernels (limit √(6 / (9·in))) and small biases in
    /// [-0.01, 0.01], from a SplitMix64 stream seeded with `seed`. `sha256` hashes the parameters
    /// (widths, then every kernel and bias as little-endian float32), so equal seeds and widths give
    /// equal hashes.
    public static func generated(widths: [Int] = VGG16Weights.standardWidths, seed: UInt64) -> VGG16Weights {
        precondition(widths.count == 13, "VGG16 has 13 conv layers, got \(widths.count) widths")
        precondition(widths.allSatisfy { $0 > 0 }, "widths must be positive")
        var random = SplitMix64(seed: seed)
        var layers: [ConvLayerWeights] = []
        var inChannels = 3
        for (index, outChannels) in widths.enumerated() {
            let limit = (6.0 / Double(9 * inChannels)).squareRoot()
            let kernel = (0..<(9 * inChannels * outChannels)).map { _ in Float(random.uniform(in: -limit, limit)) }
            let bias = (0..<outChannels).map { _ in Float(random.uniform(in: -0.01, 0.01)) }
            layers.append(
                ConvLayerWeights(
                    name: convLayerNames[index], inChannels: inChannels, outChannels: outChannels, kernel: kernel,
                    bias: bias))
            inChannels = outChannels
        }
        var hasher = SHA256()
        hasher.update(data: Data("vgg16-generated".utf8))
        for width in widths { withUnsafeBytes(of: UInt32(width).littleEndian) { hasher.update(bufferPointer: $0) } }
        for layer in layers {
            for values in [layer.kernel, layer.bias] {
                let bits = values.map { $0.bitPattern.littleEndian }
                bits.withUnsafeBytes { hasher.update(bufferPointer: $0) }
            }
        }
        return VGG16Weights(unchecked: layers, format: .generated, sha256: Checksum.hex(hasher.finalize()))
    }

    /// Writes these weights in the official Keras notop layout (root `layer_names` with the pooling layers,
    /// `/<layer>/<layer>_W_1:0` HWIO kernels and `/<layer>/<layer>_b_1:0` biases), readable by
    /// `load(path:)` and by Keras `model.load_weights` on a VGG16 conv base of the same widths.
    public func writeOfficialLayout(to path: String) throws {
        try OfficialLayoutWriter.write(self, to: path)
    }

    /// Whether `path` is a VGG16 weights file with a root `layer_names` (official Keras layout, Keras 2
    /// `save_weights`, or what `writeOfficialLayout` writes): the check before writing over an existing file.
    public static func isWeightsFile(_ path: String) -> Bool { OfficialLayoutWriter.isWeightsFile(path) }

    /// Checks the 13 conv layers' shapes, given as (label, kernel shape HWIO, bias count) in network order,
    /// and throws the first inconsistency. `label` names the layer in messages ("block3_conv2").
    static func checkChain(_ shapes: [(label: String, kernel: [Int], biasCount: Int)], path: String) throws {
        guard shapes.count == 13 else {
            throw WeightsError(path: path, message: "has \(shapes.count) conv layers, expected the 13 of VGG16")
        }
        var expectedIn = 3
        for (index, shape) in shapes.enumerated() {
            let kernel = shape.kernel
            guard kernel.count == 4, kernel[0] == 3, kernel[1] == 3, kernel[2] == expectedIn, kernel[3] > 0 else {
                let out = kernel.count == 4 ? String(kernel[3]) : "out"
                var message =
                    "layer \(shape.label) has kernel \(shapeText(kernel)), expected (3,3,\(expectedIn),\(out))"
                if kernel.count == 4, kernel[2] == 3, kernel[3] == 3, kernel[0] != 3 || kernel[1] != 3 {
                    message += " — it looks channels-first (out,in,3,3); is this a Theano 'th' file?"
                } else if kernel.count == 4, kernel[0] == 3, kernel[1] == 3, index > 0 {
                    message += " — its input width does not follow from \(VGG16Weights.convLayerNames[index - 1])"
                    message += "; is this a VGG19 file or another network?"
                }
                throw WeightsError(path: path, message: message)
            }
            guard shape.biasCount == kernel[3] else {
                throw WeightsError(
                    path: path,
                    message: "layer \(shape.label) has bias (\(shape.biasCount),), expected (\(kernel[3]),) "
                        + "to match its kernel \(shapeText(kernel))")
            }
            expectedIn = kernel[3]
        }
    }
}

/// "(3,3,128,256)"
func shapeText(_ shape: [Int]) -> String {
    shape.count == 1 ? "(\(shape[0]),)" : "(" + shape.map(String.init).joined(separator: ",") + ")"
}
