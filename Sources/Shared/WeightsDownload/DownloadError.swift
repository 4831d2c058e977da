import Foundation
import Reporting

/// Why a download did not leave a verified file in place. Every message names the URL or the file.
public enum DownloadError: Error, Sendable, Equatable, CustomStringConvertible {
    /// The host cannot be resolved or reached, or there is no network.
    case unreachable(url: String, reason: String)
    /// Nothing arrived for `seconds` (connecting, waiting for the answer, or between two chunks).
    case timedOut(url: String, seconds: Double, partPath: String?, partBytes: Int64)
    /// The connection broke before the whole file arrived; `partPath` holds what came and is resumed next time.
    case interrupted(url: String, reason: String, partPath: String, partBytes: Int64)
    /// The server answered with an HTTP status other than 200 or 206.
    case httpStatus(url: String, status: Int)
    /// The whole file arrived but its hash is not the expected one; nothing was kept.
    case hashMismatch(url: String, algorithm: String, expected: String, actual: String)
    /// A local file could not be created, written, read or renamed.
    case io(path: String, reason: String)
    /// A setting (an environment variable) has a value that cannot be used.
    case badSetting(name: String, value: String, expected: String)

    public var description: String {
        switch self {
        case .unreachable(let url, let reason):
            return "cannot download \(url): \(reason) (no network, or the host cannot be reached)"
        case .timedOut(let url, let seconds, let partPath, let partBytes):
            var text = "cannot download \(url): no answer within \(Self.seconds(seconds)) s"
            if let partPath, partBytes > 0 { text += "; \(partBytes) bytes kept in \(partPath), run again to resume" }
            return text
        case .interrupted(let url, let reason, let partPath, let partBytes):
            return "download of \(url) cut off after \(partBytes) bytes (\(reason)); kept in \(partPath), "
                + "run again to resume"
        case .httpStatus(let url, let status):
            return "cannot download \(url): the server answered HTTP \(status), expected 200 or 206"
        case .hashMismatch(let url, let algorithm, let expected, let actual):
            return "download of \(url) refused: \(algorithm) is \(actual), expected \(expected); nothing was kept"
        case .io(let path, let reason):
            return "\(path): \(reason)"
        case .badSetting(let name, let value, let expected):
            return "\(name)=\(value): expected \(expected)"
        }
    }

    private static func seconds(_ value: Double) -> String {
        value == value.rounded() ? String(Int(value)) : String(value)
    }
}

extension DownloadError: ReportedError {
    public var subject: String? {
        switch self {
        case .unreachable(let url, _), .timedOut(let url, _, _, _), .interrupted(let url, _, _, _),
            .httpStatus(let url, _), .hashMismatch(let url, _, _, _):
            url
        case .io(let path, _): path
        case .badSetting(let name, _, _): name
        }
    }

    public var message: String { description }

    public var category: FailureCategory {
        switch self {
        case .badSetting: .badInput
        default: .failedRun
        }
    }
}
