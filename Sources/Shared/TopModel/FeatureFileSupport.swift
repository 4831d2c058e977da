import Storage

/// A split of a feature file as a `FeatureSource`; errors name the file and the split.
public final class FeatureSplitSource: FeatureSource {
    public let split: FeatureSplit
    public let path: String
    public var sourceDescription: String { "\(path): split '\(split.name)'" }
    public var count: Int { split.count }
    public var featureShape: [Int] { split.featureShape }

    public init(_ split: FeatureSplit, path: String) {
        self.split = split
        self.path = path
    }

    public func labels() throws -> [Int32] {
        do { return try split.labels() } catch let error as StorageError {
            throw TopModelError.badFeatures("\(error.description); training and evaluation need labelled features")
        }
    }

    public func readFeatures(rows: Range<Int>) throws -> [Float] {
        do { return try split.readFeatures(rows: rows) } catch let error as StorageError {
            throw TopModelError.badFeatures(error.description)
        }
    }
}

extension FeatureFile {
    /// The split `name` as a feature source; a missing split is a `TopModelError.badFeatures` naming the
    /// splits the file has.
    public func source(_ name: String) throws -> FeatureSplitSource {
        do { return FeatureSplitSource(try split(name), path: path) } catch let error as StorageError {
            throw TopModelError.badFeatures(error.description)
        }
    }
}

extension FeatureProvenance {
    /// The provenance recorded in a feature file's root attributes.
    public init(_ attributes: FeatureFileAttributes) {
        self.init(
            featureLayer: attributes.layer, imageHeight: attributes.imageHeight, imageWidth: attributes.imageWidth,
            preprocess: attributes.preprocess, interpolation: attributes.interpolation,
            weightsSHA256: attributes.weightsSHA256, precision: attributes.precision)
    }

    /// Human-readable differences from a feature file's attributes (empty when the features were made the
    /// same way), e.g. `preprocess caffe (model) vs rescale (features)`.
    public func differences(from attributes: FeatureFileAttributes) -> [String] {
        var out: [String] = []
        func compare<T: Equatable>(_ name: String, _ mine: T, _ theirs: T) {
            if mine != theirs { out.append("\(name) \(mine) (model) vs \(theirs) (features)") }
        }
        compare("feature layer", featureLayer, attributes.layer)
        compare("image size", "\(imageHeight)x\(imageWidth)", "\(attributes.imageHeight)x\(attributes.imageWidth)")
        compare("preprocess", preprocess, attributes.preprocess)
        compare("interpolation", interpolation, attributes.interpolation)
        compare("weights sha256", weightsSHA256, attributes.weightsSHA256)
        compare("precision", precision, attributes.precision)
        return out
    }
}

extension TopModelTrainer {
    /// Trains on a feature file's `trainSplit`, validating on `validationSplit` after each epoch.
    ///
    /// - Parameter validationSplit: `.automatic` uses "validation" when the file has it; `.named` requires the
    ///   split; `.none` trains without validation.
    public static func train(
        featureFile: FeatureFile, trainSplit: String = "train", validationSplit: ValidationSplit = .automatic,
        options: TrainingOptions = TrainingOptions(),
        onEpoch: (EpochRecord) -> Void = { _ in }, onBatch: (BatchProgress) -> Void = { _ in }
    ) throws -> TrainingResult {
        let train = try featureFile.source(trainSplit)
        let validation: FeatureSplitSource?
        switch validationSplit {
        case .automatic:
            validation = featureFile.splitNames.contains("validation") ? try featureFile.source("validation") : nil
        case .named(let name): validation = try featureFile.source(name)
        case .none: validation = nil
        }
        return try TopModelTrainer.train(
            train: train, validation: validation, classNames: featureFile.classNames,
            provenance: FeatureProvenance(featureFile.attributes), options: options, onEpoch: onEpoch, onBatch: onBatch)
    }

    /// Which split validates training.
    public enum ValidationSplit: Sendable, Equatable {
        case automatic
        case named(String)
        case none
    }
}

extension TopModel {
    /// Evaluates on split `split` of a feature file, after checking that the file's class names and feature
    /// shape are the model's (the error names the difference).
    public func evaluate(featureFile: FeatureFile, split: String = "validation", batchSize: Int = 100) throws
        -> Evaluation
    {
        let source = try featureFile.source(split)
        try checkCompatible(
            classNames: featureFile.classNames, featureShape: source.featureShape,
            source: source.sourceDescription)
        return try evaluate(source, batchSize: batchSize)
    }
}
