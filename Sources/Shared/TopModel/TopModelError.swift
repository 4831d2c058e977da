import Reporting

/// Errors of the top model: bad features, bad model files, mismatched models, bad options.
///
/// Every message names the file (or split) concerned and what was expected.
public enum TopModelError: Error, CustomStringConvertible, Sendable, Equatable {
    /// A feature source or split cannot be used: missing labels, wrong shape, non-finite values, missing split.
    case badFeatures(String)
    /// A file is not a top model written by this program (or is damaged).
    case badModelFile(path: String, reason: String)
    /// A model or report file could not be written (disk full, read-only, …); the reason names the system error.
    case cannotWrite(path: String, reason: String)
    /// The model does not fit the features: class names or feature shape differ.
    case mismatch(String)
    /// Training produced a non-finite loss (the message names the epoch and batch).
    case diverged(String)
    /// A training or evaluation option is out of range.
    case invalidArgument(String)

    public var description: String {
        switch self {
        case .badFeatures(let message): return message
        case .badModelFile(let path, let reason): return "\(path): not a top model file: \(reason)"
        case .cannotWrite(let path, let reason): return "cannot write \(path): \(reason)"
        case .mismatch(let message): return message
        case .invalidArgument(let message): return message
        case .diverged(let message): return message
        }
    }
}

extension TopModelError: ReportedError {
    public var subject: String? {
        switch self {
        case .badModelFile(let path, _), .cannotWrite(let path, _): return path
        default: return nil
        }
    }

    public var category: FailureCategory {
        if case .cannotWrite = self { return .failedRun }
        if case .diverged = self { return .failedRun }
        return .badInput
    }

    public var message: String {
        switch self {
        case .badFeatures(let message), .mismatch(let message), .invalidArgument(let message),
            .diverged(let message):
            message
        case .badModelFile(_, let reason): "not a top model file: \(reason)"
        case .cannotWrite(let path, let reason): "cannot write \(path): \(reason)"
        }
    }
}
