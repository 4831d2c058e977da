import HDF5
import Provenance

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
    public var provenance: ComputeProfile?
    /// The arithmetic of the convolutions, "fp32" or "bf16" (root attribute `precision`; absent means fp32).
    public var precision: String

    public init(
        imageHeight: Int, imageWidth: Int, preprocess: String, interpolation: String, layer: String,
        weightsSHA256: String, model: String = "vgg16", dataFormat: String = "channels_last",
        provenance: ComputeProfile? = nil, precision: String = "fp32"
    ) {
        self.precision = precision
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

extension ComputeProfile {
    /// The version of the HDF5 library this process writes with (recorded as library "hdf5").
    public static var hdf5Version: String { HDF5Library.version }

    /// This profile with the HDF5 version of this process, which writes the journal's files and the feature file.
    public var withHDF5OfThisProcess: ComputeProfile {
        var profile = self
        profile.libraries["hdf5"] = Self.hdf5Version
        return profile
    }

    /// The feature file's root attributes for this profile, name → value.
    public var attributes: [(name: String, value: String)] {
        [
            ("compute_kernel_set", kernelSet), ("compute_grouping", String(grouping)),
            ("compute_precision", precision), ("build_version", buildVersion),
        ]
            + libraries.sorted { $0.key < $1.key }.map {
                ("library_" + $0.key.replacingOccurrences(of: "-", with: "_"), $0.value)
            }
    }
}
