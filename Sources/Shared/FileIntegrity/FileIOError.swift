import Reporting

#if canImport(Glibc)
    import Glibc
#endif

/// A file that could not be read, written, synced or renamed: the path, the operation, and the system's reason.
public struct FileIOError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The file at fault.
    public let path: String
    /// What was attempted: "create", "write", "fsync", "rename", "read".
    public let operation: String
    /// The system's words for the failure (`strerror`), e.g. "No space left on device".
    public let reason: String
    /// The `errno` value, when the failure came from a system call.
    public let code: Int32?

    public init(path: String, operation: String, reason: String) {
        self.path = path
        self.operation = operation
        self.reason = reason
        self.code = nil
    }

    public init(path: String, operation: String, errno code: Int32) {
        self.path = path
        self.operation = operation
        self.reason = String(cString: strerror(code))
        self.code = code
    }

    public var description: String { "cannot \(operation) \(path): \(reason)" }
}

extension FileIOError: ReportedError {
    public var subject: String? { path }
    public var message: String { description }
    public var category: FailureCategory { .failedRun }
}
