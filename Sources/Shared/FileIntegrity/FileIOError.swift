import Foundation
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

    /// A failure of a Foundation call on `path`, in the system's words: the POSIX error behind it when
    /// there is one ("Not a directory"), never Foundation's error domain and code.
    public init(path: String, operation: String, error: any Error) {
        self.path = path
        self.operation = operation
        if let code = Self.posixCode(of: error) {
            self.reason = String(cString: strerror(code))
            self.code = code
        } else if let error = error as? FileIOError {
            self.reason = error.reason
            self.code = error.code
        } else {
            self.reason = "failed"
            self.code = nil
        }
    }

    /// The errno behind a Foundation error: its own code in the POSIX domain, an underlying POSIX error, or
    /// the POSIX meaning of the common Cocoa file codes.
    static func posixCode(of error: any Error) -> Int32? {
        if let posix = error as? POSIXError { return posix.code.rawValue }
        let ns = error as NSError
        if ns.domain == NSPOSIXErrorDomain { return Int32(ns.code) }
        if let underlying = ns.userInfo[NSUnderlyingErrorKey] as? any Error, let code = posixCode(of: underlying) {
            return code
        }
        if let cocoa = error as? CocoaError, let underlying = cocoa.underlying, let code = posixCode(of: underlying) {
            return code
        }
        guard ns.domain == NSCocoaErrorDomain else { return nil }
        switch ns.code {
        case NSFileNoSuchFileError, NSFileReadNoSuchFileError: return ENOENT
        case NSFileWriteNoPermissionError, NSFileReadNoPermissionError: return EACCES
        case NSFileWriteOutOfSpaceError: return ENOSPC
        case NSFileWriteVolumeReadOnlyError: return EROFS
        case NSFileWriteFileExistsError: return EEXIST
        default: return nil
        }
    }

    public var description: String { "cannot \(operation) \(path): \(reason)" }
}

extension FileIOError: ReportedError {
    public var subject: String? { path }
    public var message: String { description }
    public var category: FailureCategory { .failedRun }
}
