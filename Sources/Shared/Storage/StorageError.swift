import Reporting

/// A feature file, part file or journal that cannot be read or written as expected.
public struct StorageError: Error, CustomStringConvertible, Sendable {
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { "\(path): \(message)" }
}

extension StorageError: ReportedError {
    public var subject: String? { path }
}
