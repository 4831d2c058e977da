import Reporting

/// A weights file that cannot be used, with a message naming the file, the layer and what was expected.
public struct WeightsError: Error, CustomStringConvertible, Sendable {
    /// The file as given to `VGG16Weights.load(path:)`.
    public let path: String
    public let message: String

    public init(path: String, message: String) {
        self.path = path
        self.message = message
    }

    public var description: String { path.isEmpty ? "weights: \(message)" : "\(path): \(message)" }
}

extension WeightsError: ReportedError {
    public var subject: String? { path.isEmpty ? nil : path }
}
