import Reporting

/// Errors of the top model: bad features, bad model files, mismatched models, bad options.
///
/// Every message names the file (or split) concerned and what was expected.
public enum TopModelError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A feature source or split cannot be used: missing labels, wrong shape, non-finite values, missing split.
    case badFeatures(String)
    /// A file is not a top model written by this program (or is damaged).
    case badModelFile(path: String, reason: String)
    /// The model does not fit the features: class names or feature shape differ.
    case mismatch(String)
    /// A training or evaluation option is out of range.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .badFeatures(let message): return message
        case .badModelFile(let path, let reason): return "\(path): not a top model file: \(reason)"
        case .mismatch(let message): return message
        case .invalidArgument(let message): return message
        }
    }
}

extension TopModelError: ReportedError {
    public var subject: String? {
        if case .badModelFile(let path, _) = self { return path }
        return nil
    }

    public var message: String {
        switch self {
        case .badFeatures(let message), .mismatch(let message), .invalidArgument(let message): message
        case .badModelFile(_, let reason): "not a top model file: \(reason)"
        }
    }
}
