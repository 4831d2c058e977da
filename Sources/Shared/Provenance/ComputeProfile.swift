/// What decides the bytes of a worker's features, besides the job's settings: reported in `Hello`, recorded in
/// the journal (with the coordinator's HDF5 version) and in the feature file.
///
/// Workers of one job must report equal profiles, so that an image's features do not depend on which worker
/// computed it; a resume must find the profile its journal recorded.
public struct ComputeProfile: Codable, Sendable, Hashable {
    /// The OpenBLAS kernel set, e.g. "Haswell" or "SkylakeX".
    public var kernelSet: String
    /// Images whose last layers a conv base computes together.
    public var grouping: Int
    /// The arithmetic of the convolutions: "fp32" (the only one today).
    public var precision: String
    /// The build of the worker (`BuildVersion.current`).
    public var buildVersion: String
    /// Versions of the libraries that compute or decode, by name: "openblas" (its configuration string),
    /// "libjpeg-turbo", "libpng".
    public var libraries: [String: String]

    public init(kernelSet: String, grouping: Int, precision: String, buildVersion: String, libraries: [String: String])
    {
        self.kernelSet = kernelSet
        self.grouping = grouping
        self.precision = precision
        self.buildVersion = buildVersion
        self.libraries = libraries
    }

    /// Each difference from `other`, in words, e.g. "kernel set (was Haswell, now SkylakeX)"; empty when equal.
    public func differences(from other: ComputeProfile) -> [String] {
        var changes: [String] = []
        func compare(_ what: String, _ old: String, _ new: String) {
            if old != new { changes.append("\(what) (was \(old), now \(new))") }
        }
        compare("kernel set", kernelSet, other.kernelSet)
        compare("grouping", String(grouping), String(other.grouping))
        compare("precision", precision, other.precision)
        compare("build version", buildVersion, other.buildVersion)
        for name in Set(libraries.keys).union(other.libraries.keys).sorted() {
            compare(name, libraries[name] ?? "absent", other.libraries[name] ?? "absent")
        }
        return changes
    }

    /// One line for logs: "OpenBLAS Haswell, groups of 4, fp32".
    public var summary: String { "OpenBLAS \(kernelSet), groups of \(grouping), \(precision)" }
}

/// The version of this build of Bottleneck; workers and coordinators of one job must be of the same build.
public enum BuildVersion {
    public static let current = "0.11.0"
}
