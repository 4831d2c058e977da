import TopModel

/// A classifier the report evaluates: what it is, the classes and feature shape it takes, and a function
/// from feature rows to class probabilities. Any model kind that predicts from stored features fits.
public struct ReportClassifier: Sendable {
    /// What kind of model this is, e.g. `top model (softmax on bottleneck features)`.
    public var kind: String
    /// One line for people describing the model.
    public var summary: String
    /// Class names, index = label.
    public var classNames: [String]
    /// Shape of one feature row before flattening, `[h, w, c]`.
    public var featureShape: [Int]
    /// How the features it expects were made (compared with the feature file's attributes).
    public var provenance: FeatureProvenance
    /// Extra settings rows for the provenance table, e.g. hidden units.
    public var settings: [(String, String)]
    /// Probabilities for feature rows: row-major `[rows, featureSize]` in, `[rows, classes]` out.
    public var probabilities: @Sendable ([Float]) throws -> [Float]

    public init(
        kind: String, summary: String, classNames: [String], featureShape: [Int], provenance: FeatureProvenance,
        settings: [(String, String)] = [], probabilities: @escaping @Sendable ([Float]) throws -> [Float]
    ) {
        self.kind = kind
        self.summary = summary
        self.classNames = classNames
        self.featureShape = featureShape
        self.provenance = provenance
        self.settings = settings
        self.probabilities = probabilities
    }

    /// The softmax top model written by `train`.
    public static func topModel(_ model: TopModel) -> ReportClassifier {
        ReportClassifier(
            kind: "top model (Flatten → Dense → Dropout → Dense softmax on bottleneck features)",
            summary: model.summary, classNames: model.classNames, featureShape: model.featureShape,
            provenance: model.provenance,
            settings: [("hidden units", "\(model.weights.hidden)"), ("inputs", "\(model.weights.inputs)")],
            probabilities: { try model.probabilities(features: $0) })
    }
}
