import Reporting

/// Errors of fine-tuning: weights whose structure does not fit, bad settings.
public enum FineTuningError: Error, Sendable, Equatable {
    /// The conv layers and the top model do not chain (shapes named in the message).
    case structure(String)
    /// A setting is out of range.
    case invalidArgument(String)
    /// An output (model, checkpoint) cannot be written, or a checkpoint cannot be used.
    case output(path: String, reason: String)
}

extension FineTuningError: ReportedError {
    public var subject: String? {
        if case .output(let path, _) = self { return path }
        return nil
    }

    public var message: String {
        switch self {
        case .structure(let message), .invalidArgument(let message): message
        case .output(_, let reason): reason
        }
    }

    public var category: FailureCategory {
        if case .output = self { return .failedRun }
        return .badInput
    }

    public var description: String { subject.map { "\($0): \(message)" } ?? message }
}
