import Reporting

/// Errors of fine-tuning: weights whose structure does not fit, bad settings.
public enum FineTuningError: Error, Sendable, Equatable {
    /// The conv layers and the top model do not chain (shapes named in the message).
    case structure(String)
    /// A setting is out of range.
    case invalidArgument(String)
}

extension FineTuningError: ReportedError {
    public var message: String {
        switch self {
        case .structure(let message), .invalidArgument(let message): message
        }
    }

    public var description: String { message }
}
