import BLAS
import Foundation

/// Where a top model's features came from: everything `predict` needs to turn an image into the
/// features this model expects. Stored as `bottleneck_*` root attributes of MODEL.h5.
public struct FeatureProvenance: Sendable, Codable, Equatable {
    /// The convolutional base's layer the features come from, e.g. `block5_pool`.
    public var featureLayer: String
    /// Input image size the base saw, in pixels.
    public var imageHeight: Int
    public var imageWidth: Int
    /// Preprocessing mode, e.g. `caffe` or `rescale`.
    public var preprocess: String
    /// Resize interpolation, e.g. `nearest` or `bilinear`.
    public var interpolation: String
    /// SHA-256 (hex) of the convolutional base's weights file.
    public var weightsSHA256: String
    /// The arithmetic of the convolutions that computed the features, "fp32" or "bf16": images given to the
    /// model are computed at it.
    public var precision: String

    public init(
        featureLayer: String, imageHeight: Int, imageWidth: Int, preprocess: String, interpolation: String,
        weightsSHA256: String, precision: String = "fp32"
    ) {
        self.precision = precision
        self.featureLayer = featureLayer
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.preprocess = preprocess
        self.interpolation = interpolation
        self.weightsSHA256 = weightsSHA256
    }

    private enum CodingKeys: String, CodingKey {
        case featureLayer, imageHeight, imageWidth, preprocess, interpolation, weightsSHA256, precision
    }

    /// Decodes a provenance; one without `precision` (written before bf16 existed) is fp32.
    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        self.init(
            featureLayer: try c.decode(String.self, forKey: .featureLayer),
            imageHeight: try c.decode(Int.self, forKey: .imageHeight),
            imageWidth: try c.decode(Int.self, forKey: .imageWidth),
            preprocess: try c.decode(String.self, forKey: .preprocess),
            interpolation: try c.decode(String.self, forKey: .interpolation),
            weightsSHA256: try c.decode(String.self, forKey: .weightsSHA256),
            precision: try c.decodeIfPresent(String.self, forKey: .precision) ?? "fp32")
    }
}

/// One class and its probability.
public struct ClassProbability: Sendable, Codable, Equatable {
    public var className: String
    public var probability: Float

    public init(className: String, probability: Float) {
        self.className = className
        self.probability = probability
    }

    enum CodingKeys: String, CodingKey {
        case className = "class"
        case probability
    }
}

/// The trained softmax top model: `Flatten → Dense(hidden, relu) → Dropout → Dense(classes, softmax)`,
/// with the class names (Keras order) and feature shape it was trained on, and the provenance of its
/// features. A value type; safe to share.
public struct TopModel: Sendable, Equatable {
    /// Class names, index = class label (Keras' alphabetical order).
    public var classNames: [String]
    /// Shape of one feature map `[h, w, c]` (channels_last); flattened it is `weights.inputs` long.
    public var featureShape: [Int]
    public var provenance: FeatureProvenance
    public var weights: TopModelWeights

    public init(classNames: [String], featureShape: [Int], provenance: FeatureProvenance, weights: TopModelWeights)
        throws
    {
        guard featureShape.reduce(1, *) == weights.inputs else {
            throw TopModelError.invalidArgument(
                "feature shape \(featureShape) has \(featureShape.reduce(1, *)) values, the weights expect \(weights.inputs)"
            )
        }
        guard classNames.count == weights.classes else {
            throw TopModelError.invalidArgument("\(classNames.count) class names for \(weights.classes) outputs")
        }
        self.classNames = classNames
        self.featureShape = featureShape
        self.provenance = provenance
        self.weights = weights
    }

    /// One line for people, e.g. `3 classes (cat, dog, owl); features block5_pool [4, 4, 512] of 150x150
    /// images, preprocess caffe, nearest; 256 hidden units`.
    public var summary: String {
        let names =
            classNames.count <= 8
            ? classNames.joined(separator: ", ")
            : classNames.prefix(8).joined(separator: ", ") + ", …"
        return "\(classNames.count) classes (\(names)); features \(provenance.featureLayer) \(featureShape) of "
            + "\(provenance.imageHeight)x\(provenance.imageWidth) images, preprocess \(provenance.preprocess), "
            + "\(provenance.interpolation); \(weights.hidden) hidden units"
    }

    /// Flattened feature size `h·w·c`.
    public var featureSize: Int { weights.inputs }

    /// Class probabilities for feature rows (inference: dropout off).
    ///
    /// - Parameter features: row-major `[rows, featureSize]`.
    /// - Returns: row-major `[rows, classes]`.
    /// Results do not depend on `threads` (see `TrainingOptions.threads`).
    public func probabilities(
        features: [Float], batchSize: Int = 256, threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) throws -> [Float] {
        let d = featureSize
        let c = classNames.count
        guard features.count % d == 0 else {
            throw TopModelError.mismatch(
                "features: \(features.count) values are not whole rows of \(d) (feature shape \(featureShape))")
        }
        if let index = features.firstIndex(where: { !$0.isFinite }) {
            throw TopModelError.badFeatures(
                "features: row \(index / d) has a non-finite value; expected finite numbers")
        }
        let rows = features.count / d
        let network = Network(weights: weights, maxBatch: max(1, min(batchSize, rows)), threads: threads)
        var out = [Float](repeating: 0, count: rows * c)
        BLASThreads.withFixedCount(1) {
            features.withUnsafeBufferPointer { x in
                var start = 0
                while start < rows {
                    let batch = min(network.maxBatch, rows - start)
                    network.predict(x.baseAddress! + start * d, batch: batch)
                    for i in 0..<(batch * c) { out[start * c + i] = network.probabilities[i] }
                    start += batch
                }
            }
        }
        return out
    }

    /// The `k` most probable classes for each feature row, best first (ties: lower class index first).
    ///
    /// - Parameter features: row-major `[rows, featureSize]`.
    public func predict(features: [Float], topK k: Int = 3) throws -> [[ClassProbability]] {
        guard k > 0 else { throw TopModelError.invalidArgument("top-k must be at least 1, got \(k)") }
        let p = try probabilities(features: features)
        let c = classNames.count
        return stride(from: 0, to: p.count, by: c).map { start in
            let row = Array(p[start..<(start + c)])
            let order = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }
            return order.prefix(k).map { ClassProbability(className: classNames[$0], probability: row[$0]) }
        }
    }

    /// Checks that features with these class names and shape are what this model was trained on;
    /// the error names both sides and the difference.
    public func checkCompatible(classNames other: [String], featureShape otherShape: [Int], source: String) throws {
        if otherShape != featureShape {
            throw TopModelError.mismatch(
                "\(source): feature shape \(otherShape), but the model was trained on \(featureShape)"
                    + " (different image size or feature layer?)")
        }
        if other != classNames {
            let missing = classNames.filter { !other.contains($0) }
            let extra = other.filter { !classNames.contains($0) }
            var parts: [String] = []
            if !missing.isEmpty { parts.append("missing \(missing.joined(separator: ", "))") }
            if !extra.isEmpty { parts.append("not in the model: \(extra.joined(separator: ", "))") }
            if parts.isEmpty { parts.append("same names in a different order") }
            throw TopModelError.mismatch(
                "\(source): classes [\(other.joined(separator: ", "))] differ from the model's "
                    + "[\(classNames.joined(separator: ", "))]: \(parts.joined(separator: "; "))")
        }
    }
}
