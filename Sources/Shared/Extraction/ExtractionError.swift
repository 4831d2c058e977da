import Reporting

/// An extraction that cannot run or finish, with a message naming the input or setting at fault.
///
/// `badInput` (exit code 1) is the data or the settings; `journal` a refused or broken resume (exit 1);
/// `failed` a run that could not complete (no workers left, I/O failure; exit 1).
public struct ExtractionError: Error, CustomStringConvertible, Sendable {
    public enum Reason: Sendable, Equatable {
        case badInput
        case resumeRefused
        case failed
        /// Stopped by a signal (its number); the journal is kept for a resume.
        case interrupted(signal: Int32)
    }

    public let reason: Reason
    public let message: String

    public init(_ reason: Reason, _ message: String) {
        self.reason = reason
        self.message = message
    }

    public var description: String { "extract: \(message)" }
}

extension ExtractionError: ReportedError {
    public var category: FailureCategory {
        switch reason {
        case .badInput, .resumeRefused: .badInput
        case .failed: .failedRun
        case .interrupted(let signal): .interrupted(signal: signal)
        }
    }
    public var remedy: Remedy? { reason == .resumeRefused ? .restartJob : nil }
}
