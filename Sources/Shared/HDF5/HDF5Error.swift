import Reporting

/// A failure of an HDF5 operation, naming the file, the object inside it and the cause.
public struct HDF5Error: Error, CustomStringConvertible, Sendable {
    /// The file's path.
    public let path: String
    /// The object inside the file ("/train/features"), or "" for the file itself.
    public let object: String
    /// What went wrong, with HDF5's root cause when there is one.
    public let message: String

    public init(path: String, object: String, message: String) {
        self.path = path
        self.object = object
        self.message = message
    }

    public var description: String {
        object.isEmpty ? "\(path): \(message)" : "\(path): \(object): \(message)"
    }
}

extension HDF5Error: ReportedError {
    public var subject: String? { object.isEmpty ? path : "\(path): \(object)" }
    public var category: FailureCategory { .failedRun }
}
