import Reporting

/// A `ConvBase` that cannot be built for the requested image size or weights.
public struct ConvBaseError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(message: String) { self.message = message }
    public var description: String { "VGG16 conv base: \(message)" }
}

extension ConvBaseError: ReportedError {
    public var subject: String? { "VGG16 conv base" }
}
