/// The root attributes of a feature file: what produced the features, so that a model trained on them
/// is only ever applied to images prepared the same way.
public struct FeatureFileAttributes: Sendable, Codable, Hashable {
    public var imageHeight: Int
    public var imageWidth: Int
    /// "caffe" or "rescale".
    public var preprocess: String
    /// "nearest" or "bilinear".
    public var interpolation: String
    /// The pooling layer the features come from, e.g. "block5_pool".
    public var layer: String
    public var model: String
    /// SHA-256 (hex) of the VGG16 weights file.
    public var weightsSHA256: String
    public var dataFormat: String
    /// What the features were computed under; nil only for a file without rows computed (no images).
    public var provenance: ComputeProvenance?

    public init(
        imageHeight: Int, imageWidth: Int, preprocess: String, interpolation: String, layer: String,
        weightsSHA256: String, model: String = "vgg16", dataFormat: String = "channels_last",
        provenance: ComputeProvenance? = nil
    ) {
        self.provenance = provenance
        self.imageHeight = imageHeight
        self.imageWidth = imageWidth
        self.preprocess = preprocess
        self.interpolation = interpolation
        self.layer = layer
        self.weightsSHA256 = weightsSHA256
        self.model = model
        self.dataFormat = dataFormat
    }
}
