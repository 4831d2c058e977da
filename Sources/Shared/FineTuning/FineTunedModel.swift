import FileIntegrity
import Foundation
import HDF5
import TopModel
import VGG16

/// A fine-tuned classifier: all thirteen VGG16 convolution layers (the frozen ones unchanged, the trained
/// block updated) and the top model, with what `predict` needs to prepare images.
///
/// FINETUNED.h5 follows tf_keras' `Model.save_weights` layout for the fine-tuning structure
/// `Model(base.input, Sequential([Flatten, Dense(256, relu), Dropout, Dense(C, softmax)])(base.output))`
/// with `base = VGG16(include_top=False, weights=None, input_shape=(H, W, 3))`:
///
///     /  attrs layer_names = [input_1, block1_conv1, …, block5_pool, sequential], backend, keras_version,
///              bottleneck_format = "bottleneck-finetuned-model", bottleneck_format_version = 1,
///              bottleneck_class_names, bottleneck_feature_layer = "block5_pool", bottleneck_feature_shape,
///              bottleneck_image_height, bottleneck_image_width, bottleneck_preprocess,
///              bottleneck_interpolation, bottleneck_weights_sha256 (the VGG16 file fine-tuning started from)
///     /input_1, /blockN_pool, /top_level_model_weights   attr weight_names = [] (float64)
///     /blockN_convK  attr weight_names = [blockN_convK/kernel:0, blockN_convK/bias:0]
///     /blockN_convK/blockN_convK/kernel:0  float32 [3, 3, in, out]   …/bias:0 float32 [out]
///     /sequential  attr weight_names = [dense/kernel:0, dense/bias:0, dense_1/kernel:0, dense_1/bias:0]
///     /sequential/dense/kernel:0 [features, hidden] …  /sequential/dense_1/bias:0 [C]
public struct FineTunedModel: Sendable {
    public var convLayers: [ConvLayerWeights]
    public var top: TopModel
    /// SHA-256 of the file the model was loaded from (empty for a model not read from a file). The file is a
    /// VGG16 weights file too: extracting with it gives features whose weights hash is this one.
    public var fileSHA256 = ""

    public init(convLayers: [ConvLayerWeights], top: TopModel) throws {
        guard convLayers.map(\.name) == VGG16Weights.convLayerNames else {
            throw FineTuningError.structure(
                "conv layers [\(convLayers.map(\.name).joined(separator: ", "))], expected the 13 of VGG16")
        }
        self.convLayers = convLayers
        self.top = top
    }

    /// Reads a FINETUNED.h5 written by `save(to:)`: the conv layers through `VGG16Weights.load` (the file is
    /// a Keras 2 `save_weights` file), the top model from `/sequential` and the `bottleneck_*` attributes.
    /// Throws `FineTuningError.output` naming what is missing, or the weights reader's error.
    public static func load(_ path: String) throws -> FineTunedModel {
        let conv = try VGG16Weights.load(path: path)
        func bad(_ reason: String) -> FineTuningError { .output(path: path, reason: reason) }
        let file: HDF5File
        do { file = try HDF5File.open(path) } catch { throw bad("cannot open: \(error)") }
        defer { file.close() }
        let a = file.root.attributes
        guard a.contains("bottleneck_format"), try a.string("bottleneck_format") == format else {
            throw bad("not a fine-tuned model written by this program (no bottleneck_format \(format))")
        }
        do {
            func tensor(_ name: String) throws -> (values: [Float], shape: [Int]) {
                let dataset = try file.root.dataset("sequential/\(name):0")
                return (try dataset.read(Float.self), dataset.shape)
            }
            let (k1, b1, k2, b2) = try (
                tensor("dense/kernel"), tensor("dense/bias"), tensor("dense_1/kernel"), tensor("dense_1/bias")
            )
            guard k1.shape.count == 2, k2.shape.count == 2 else {
                throw bad("the top model's kernels are not matrices")
            }
            let weights = try TopModelWeights(
                inputs: k1.shape[0], hidden: k1.shape[1], classes: k2.shape[1], hiddenKernel: k1.values,
                hiddenBias: b1.values, outputKernel: k2.values, outputBias: b2.values)
            let provenance = FeatureProvenance(
                featureLayer: try a.string("bottleneck_feature_layer"),
                imageHeight: try a.int("bottleneck_image_height"), imageWidth: try a.int("bottleneck_image_width"),
                preprocess: try a.string("bottleneck_preprocess"),
                interpolation: try a.string("bottleneck_interpolation"),
                weightsSHA256: try a.string("bottleneck_weights_sha256"))
            let top = try TopModel(
                classNames: try a.strings("bottleneck_class_names"),
                featureShape: try a.ints("bottleneck_feature_shape"),
                provenance: provenance, weights: weights)
            var model = try FineTunedModel(convLayers: conv.layers, top: top)
            model.fileSHA256 = conv.sha256
            return model
        } catch let error as FineTuningError {
            throw error
        } catch {
            throw bad("\(error)")
        }
    }

    /// True when `path` is an HDF5 file whose `bottleneck_format` says it is a fine-tuned model (a MODEL.h5
    /// written by `train` is not).
    public static func isFineTunedModel(_ path: String) -> Bool {
        guard HDF5File.isHDF5(path), let file = try? HDF5File.open(path) else { return false }
        defer { file.close() }
        let a = file.root.attributes
        return a.contains("bottleneck_format") && (try? a.string("bottleneck_format")) == format
    }

    /// The top model as it classifies features extracted with this model's file as the weights
    /// (`weightsSHA256` is `fileSHA256`): what a feature file of this model's convolution weights must match.
    public var topOnOwnFeatures: TopModel {
        var top = top
        top.provenance.weightsSHA256 = fileSHA256
        return top
    }

    /// The thirteen conv layers as VGG16 weights, for the conv base (the fine-tuned block5 included).
    public func convWeights() throws -> VGG16Weights {
        try VGG16Weights(layers: convLayers, format: .kerasSaveWeights, sha256: "")
    }

    /// Class probabilities `[count, classes]` of preprocessed images `input[count, H, W, 3]` (the model's
    /// image size): the conv base with the fine-tuned weights to `block5_pool`, then the top model.
    public func probabilities(input: [Float], count: Int) throws -> [Float] {
        let weights = try convWeights()
        let base = try ConvBase(
            weights: weights, imageHeight: top.provenance.imageHeight, imageWidth: top.provenance.imageWidth)
        return try top.probabilities(features: base.forward(images: input, count: count))
    }

    static let format = "bottleneck-finetuned-model"
    static let kerasVersion = "2.21.0"

    /// Writes the model to `path` under a temporary name, fsyncs it and renames it into place
    /// (`FileIntegrity.AtomicFile`). HDF5 calls run on the calling thread.
    public func save(to path: String) throws {
        let temporary = AtomicFile.temporaryPath(for: path)
        do {
            let file = try HDF5File.create(temporary)
            defer { file.close() }
            let root = file.root
            let a = root.attributes
            try a.set("layer_names", strings: ["input_1"] + VGG16Weights.layerNamesWithPooling + ["sequential"])
            try a.set("backend", string: "tensorflow")
            try a.set("keras_version", string: Self.kerasVersion)
            for empty in ["input_1", "top_level_model_weights"] + PoolingLayer.allCases.map(\.rawValue) {
                try root.createGroup(empty).attributes.set("weight_names", strings: [])
            }
            for layer in convLayers {
                let group = try root.createGroup(layer.name)
                try group.attributes.set("weight_names", strings: ["\(layer.name)/kernel:0", "\(layer.name)/bias:0"])
                _ = try group.write(
                    "\(layer.name)/kernel:0", layer.kernel, shape: [3, 3, layer.inChannels, layer.outChannels])
                _ = try group.write("\(layer.name)/bias:0", layer.bias, shape: [layer.outChannels])
            }
            let w = top.weights
            let sequential = try root.createGroup("sequential")
            try sequential.attributes.set(
                "weight_names", strings: ["dense/kernel:0", "dense/bias:0", "dense_1/kernel:0", "dense_1/bias:0"])
            _ = try sequential.write("dense/kernel:0", w.hiddenKernel, shape: [w.inputs, w.hidden])
            _ = try sequential.write("dense/bias:0", w.hiddenBias, shape: [w.hidden])
            _ = try sequential.write("dense_1/kernel:0", w.outputKernel, shape: [w.hidden, w.classes])
            _ = try sequential.write("dense_1/bias:0", w.outputBias, shape: [w.classes])
            let p = top.provenance
            try a.set("bottleneck_format", string: Self.format)
            try a.set("bottleneck_format_version", int: 1)
            try a.set("bottleneck_class_names", strings: top.classNames)
            try a.set("bottleneck_feature_layer", string: p.featureLayer)
            try a.set("bottleneck_feature_shape", ints: top.featureShape)
            try a.set("bottleneck_image_height", int: p.imageHeight)
            try a.set("bottleneck_image_width", int: p.imageWidth)
            try a.set("bottleneck_preprocess", string: p.preprocess)
            try a.set("bottleneck_interpolation", string: p.interpolation)
            try a.set("bottleneck_weights_sha256", string: p.weightsSHA256)
            try file.flush()
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw FineTuningError.output(path: path, reason: "cannot write: \(error)")
        }
        do { try AtomicFile.publish(temporary, as: path) } catch {
            throw FineTuningError.output(path: path, reason: "\(error)")
        }
    }
}
