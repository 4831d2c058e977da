import FileIntegrity
import Foundation
import HDF5

/// MODEL.h5: Keras 2's HDF5 weights layout for the Sequential `flatten, dense, dropout, dense_1`, so that
/// tf_keras `model.load_weights("MODEL.h5")` loads it into
/// `Sequential([Flatten(input_shape=(h,w,c)), Dense(256, "relu"), Dropout(0.5), Dense(C, "softmax")])`,
/// plus `bottleneck_*` root attributes with everything `predict` needs.
///
///     /  attrs layer_names = [flatten, dense, dropout, dense_1], backend = "tensorflow",
///              keras_version = "2.21.0" (the tf_keras whose save_weights layout this follows),
///              bottleneck_format = "bottleneck-top-model", bottleneck_format_version = 1,
///              bottleneck_class_names [C], bottleneck_feature_layer, bottleneck_feature_shape [h,w,c],
///              bottleneck_image_height, bottleneck_image_width, bottleneck_preprocess,
///              bottleneck_interpolation, bottleneck_weights_sha256
///     /flatten, /dropout, /top_level_model_weights   attr weight_names = []
///     /dense     attr weight_names = [dense/kernel:0, dense/bias:0]
///     /dense/dense/kernel:0   float32 [h·w·c, hidden]      /dense/dense/bias:0   float32 [hidden]
///     /dense_1   attr weight_names = [dense_1/kernel:0, dense_1/bias:0]
///     /dense_1/dense_1/kernel:0 float32 [hidden, C]      /dense_1/dense_1/bias:0 float32 [C]
public enum TopModelFile {
    static let format = "bottleneck-top-model"
    static let formatVersion = 1
    static let layerNames = ["flatten", "dense", "dropout", "dense_1"]
    static let kerasVersion = "2.21.0"
}

extension TopModel {
    /// Writes the model to `path` (under a temporary name first, renamed when complete, so a file at
    /// `path` is always whole). HDF5 calls run on the calling thread.
    public func save(to path: String) throws {
        let temporary = path + ".tmp-\(ProcessInfo.processInfo.processIdentifier)"
        do {
            let file = try HDF5File.create(temporary)
            defer { file.close() }
            let root = file.root
            let a = root.attributes
            try a.set("layer_names", strings: TopModelFile.layerNames)
            try a.set("backend", string: "tensorflow")
            try a.set("keras_version", string: TopModelFile.kerasVersion)
            for empty in ["flatten", "dropout", "top_level_model_weights"] {
                try root.createGroup(empty).attributes.set("weight_names", strings: [])
            }
            let w = weights
            for (layer, kernel, kernelShape, bias) in [
                ("dense", w.hiddenKernel, [w.inputs, w.hidden], w.hiddenBias),
                ("dense_1", w.outputKernel, [w.hidden, w.classes], w.outputBias),
            ] {
                let group = try root.createGroup(layer)
                try group.attributes.set("weight_names", strings: ["\(layer)/kernel:0", "\(layer)/bias:0"])
                _ = try group.write("\(layer)/kernel:0", kernel, shape: kernelShape)
                _ = try group.write("\(layer)/bias:0", bias, shape: [bias.count])
            }
            try a.set("bottleneck_format", string: TopModelFile.format)
            try a.set("bottleneck_format_version", int: TopModelFile.formatVersion)
            try a.set("bottleneck_class_names", strings: classNames)
            try a.set("bottleneck_feature_layer", string: provenance.featureLayer)
            try a.set("bottleneck_feature_shape", ints: featureShape)
            try a.set("bottleneck_image_height", int: provenance.imageHeight)
            try a.set("bottleneck_image_width", int: provenance.imageWidth)
            try a.set("bottleneck_preprocess", string: provenance.preprocess)
            try a.set("bottleneck_interpolation", string: provenance.interpolation)
            try a.set("bottleneck_weights_sha256", string: provenance.weightsSHA256)
            try a.set("bottleneck_precision", string: provenance.precision)
            try file.flush()
            try file.closeChecked()
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw TopModelError.cannotWrite(path: path, reason: "\(error)")
        }
        do { try AtomicFile.publish(temporary, as: path) } catch let error as FileIOError {
            throw TopModelError.cannotWrite(path: path, reason: error.description)
        }
    }

    /// Whether `path` is a model file written by `save(to:)` (an HDF5 file whose root attribute
    /// `bottleneck_format` is "bottleneck-top-model"), the check a command makes before writing over an
    /// existing file. Reads only the attribute.
    public static func isModelFile(_ path: String) -> Bool {
        guard HDF5File.isHDF5(path), let file = try? HDF5File.open(path) else { return false }
        defer { file.close() }
        let attributes = file.root.attributes
        return attributes.contains("bottleneck_format")
            && (try? attributes.string("bottleneck_format")) == TopModelFile.format
    }

    /// Reads a model written by `save(to:)`.
    ///
    /// - Throws: `TopModelError.badModelFile` naming the path and what is missing or wrong: not HDF5, not a
    ///   Keras weights file of this Sequential, a plain Keras file without the `bottleneck_*` attributes,
    ///   inconsistent shapes.
    public static func load(_ path: String) throws -> TopModel {
        func bad(_ reason: String) -> TopModelError { .badModelFile(path: path, reason: reason) }
        guard FileManager.default.fileExists(atPath: path) else { throw bad("no such file") }
        guard HDF5File.isHDF5(path) else { throw bad("not an HDF5 file") }
        let file: HDF5File
        do { file = try HDF5File.open(path) } catch { throw bad("cannot open: \(error)") }
        defer { file.close() }
        let root = file.root
        let a = root.attributes
        do {
            guard a.contains("layer_names") else {
                throw bad("no root attribute layer_names; expected a Keras HDF5 weights file")
            }
            let layers = try a.strings("layer_names")
            guard layers.contains("dense"), layers.contains("dense_1") else {
                throw bad(
                    "layers [\(layers.joined(separator: ", "))], expected \(TopModelFile.layerNames.joined(separator: ", "))"
                )
            }
            guard a.contains("bottleneck_format"), try a.string("bottleneck_format") == TopModelFile.format else {
                throw bad(
                    "a Keras weights file without the bottleneck_* attributes (class names, feature shape, "
                        + "preprocessing); write it with `bottleneck-coordinator train`")
            }
            let version = try a.int("bottleneck_format_version")
            guard version == TopModelFile.formatVersion else {
                throw bad("bottleneck_format_version \(version), expected \(TopModelFile.formatVersion)")
            }
            for name in [
                "bottleneck_class_names", "bottleneck_feature_shape", "bottleneck_feature_layer",
                "bottleneck_image_height", "bottleneck_image_width", "bottleneck_preprocess",
                "bottleneck_interpolation", "bottleneck_weights_sha256",
            ] where !a.contains(name) {
                throw bad("root attribute \(name) missing")
            }
            let classNames = try a.strings("bottleneck_class_names")
            let featureShape = try a.ints("bottleneck_feature_shape")
            guard featureShape.count == 3, featureShape.allSatisfy({ $0 > 0 }) else {
                throw bad("bottleneck_feature_shape \(featureShape), expected three positive sizes (h, w, c)")
            }
            func tensor(_ layer: String, _ name: String) throws -> (values: [Float], shape: [Int]) {
                let datasetPath = "\(layer)/\(layer)/\(name):0"
                guard root.isDataset(datasetPath) else { throw bad("dataset /\(datasetPath) missing") }
                let dataset = try root.dataset(datasetPath)
                guard dataset.isFloat else { throw bad("dataset /\(datasetPath) is not floating point") }
                return (try dataset.read(Float.self), dataset.shape)
            }
            let k1 = try tensor("dense", "kernel")
            let b1 = try tensor("dense", "bias")
            let k2 = try tensor("dense_1", "kernel")
            let b2 = try tensor("dense_1", "bias")
            for (name, values) in [
                ("dense kernel", k1.values), ("dense bias", b1.values), ("dense_1 kernel", k2.values),
                ("dense_1 bias", b2.values),
            ] where values.contains(where: { !$0.isFinite }) {
                throw bad("the \(name) holds non-finite values (NaN or infinity): the training that wrote it diverged")
            }
            guard k1.shape.count == 2, k2.shape.count == 2 else {
                throw bad("kernels have shapes \(k1.shape) and \(k2.shape), expected two matrices")
            }
            let (inputs, hidden, classes) = (k1.shape[0], k1.shape[1], k2.shape[1])
            guard k2.shape[0] == hidden, b1.shape == [hidden], b2.shape == [classes] else {
                throw bad(
                    "shapes dense kernel \(k1.shape), bias \(b1.shape), dense_1 kernel \(k2.shape), bias \(b2.shape) do not chain"
                )
            }
            guard inputs == featureShape.reduce(1, *) else {
                throw bad(
                    "dense kernel takes \(inputs) inputs, but bottleneck_feature_shape \(featureShape) flattens to \(featureShape.reduce(1, *))"
                )
            }
            guard classNames.count == classes else {
                throw bad("\(classNames.count) class names for \(classes) outputs")
            }
            let provenance = FeatureProvenance(
                featureLayer: try a.string("bottleneck_feature_layer"),
                imageHeight: try a.int("bottleneck_image_height"),
                imageWidth: try a.int("bottleneck_image_width"), preprocess: try a.string("bottleneck_preprocess"),
                interpolation: try a.string("bottleneck_interpolation"),
                weightsSHA256: try a.string("bottleneck_weights_sha256"),
                precision: a.contains("bottleneck_precision") ? try a.string("bottleneck_precision") : "fp32")
            let weights = try TopModelWeights(
                inputs: inputs, hidden: hidden, classes: classes, hiddenKernel: k1.values, hiddenBias: b1.values,
                outputKernel: k2.values, outputBias: b2.values)
            return try TopModel(
                classNames: classNames, featureShape: featureShape, provenance: provenance, weights: weights)
        } catch let error as TopModelError {
            throw error
        } catch {
            throw bad("\(error)")
        }
    }
}
