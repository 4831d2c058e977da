import HDF5

/// What the features of a job were computed under, besides its settings: recorded in the journal's manifest
/// (a resume must find the same) and in the feature file's root attributes.
public struct ComputeProvenance: Codable, Sendable, Hashable {
    /// The OpenBLAS kernel set, e.g. "Haswell".
    public var kernelSet: String
    /// Images whose last layers a conv base computes together.
    public var grouping: Int
    /// The arithmetic of the convolutions, e.g. "fp32".
    public var precision: String
    /// The build of the workers that computed the features.
    public var buildVersion: String
    /// Library versions by name: "openblas" (its configuration), "libjpeg-turbo", "libpng" of the workers, and
    /// "hdf5" of the coordinator that writes the files.
    public var libraries: [String: String]

    public init(kernelSet: String, grouping: Int, precision: String, buildVersion: String, libraries: [String: String])
    {
        self.kernelSet = kernelSet
        self.grouping = grouping
        self.precision = precision
        self.buildVersion = buildVersion
        self.libraries = libraries
    }

    /// Each difference from the recorded `self` to `new`, e.g. "kernel set (was Haswell, now SkylakeX)".
    public func changes(comparedTo new: ComputeProvenance) -> [String] {
        var changes: [String] = []
        func compare(_ what: String, _ old: String, _ now: String) {
            if old != now { changes.append("\(what) (was \(old), now \(now))") }
        }
        compare("kernel set", kernelSet, new.kernelSet)
        compare("grouping", String(grouping), String(new.grouping))
        compare("precision", precision, new.precision)
        compare("build version", buildVersion, new.buildVersion)
        for name in Set(libraries.keys).union(new.libraries.keys).sorted() {
            compare(name, libraries[name] ?? "absent", new.libraries[name] ?? "absent")
        }
        return changes
    }

    /// The version of the HDF5 library this process writes with.
    public static var hdf5Version: String { HDF5Library.version }

    /// The feature file's root attributes for this provenance, name → value.
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
