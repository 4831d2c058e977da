import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Writes files so that the final path only ever holds a whole file.
///
/// A file is written under `PATH.tmp-PID`, fsynced, renamed to `PATH`, and the directory is fsynced so the
/// rename itself survives a crash. On any failure the temporary file is removed and a `FileIOError` names the
/// path and the system's reason (ENOSPC, EDQUOT, EIO, EROFS …); the previous file at `PATH`, if any, is kept.
public enum AtomicFile {
    /// The temporary name used for `path` by this process.
    public static func temporaryPath(for path: String) -> String { path + ".tmp-\(getpid())" }

    /// Writes `bytes` to `path` whole (see the type's comment).
    public static func write(_ bytes: [UInt8], to path: String, permissions: mode_t = 0o644) throws {
        let temporary = temporaryPath(for: path)
        let fd = Glibc.open(temporary, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, permissions)
        guard fd >= 0 else { throw FileIOError(path: temporary, operation: "create", errno: errno) }
        var failure: FileIOError?
        bytes.withUnsafeBytes { buffer in
            var offset = 0
            while offset < buffer.count {
                let written = Glibc.write(fd, buffer.baseAddress! + offset, buffer.count - offset)
                if written < 0 {
                    if errno == EINTR { continue }
                    failure = FileIOError(path: temporary, operation: "write", errno: errno)
                    return
                }
                offset += written
            }
        }
        if failure == nil, fsync(fd) != 0 { failure = FileIOError(path: temporary, operation: "fsync", errno: errno) }
        if Glibc.close(fd) != 0, failure == nil {
            failure = FileIOError(path: temporary, operation: "close", errno: errno)
        }
        if let failure {
            unlink(temporary)
            throw failure
        }
        try rename(temporary, to: path)
    }

    /// Makes a file written elsewhere (at `temporary`) the file at `path`: fsync, rename, directory fsync.
    public static func publish(_ temporary: String, as path: String) throws {
        let fd = Glibc.open(temporary, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError(path: temporary, operation: "open", errno: errno) }
        let synced = fsync(fd) == 0
        let code = errno
        Glibc.close(fd)
        guard synced else {
            unlink(temporary)
            throw FileIOError(path: temporary, operation: "fsync", errno: code)
        }
        try rename(temporary, to: path)
    }

    /// Renames and fsyncs the directory holding `path`.
    private static func rename(_ temporary: String, to path: String) throws {
        guard Glibc.rename(temporary, path) == 0 else {
            let code = errno
            unlink(temporary)
            throw FileIOError(path: path, operation: "rename \(temporary) to", errno: code)
        }
        try syncDirectory(containing: path)
    }

    /// fsyncs the directory holding `path`, so that a rename or a new file in it is durable.
    public static func syncDirectory(containing path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let fd = Glibc.open(directory.isEmpty ? "." : directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError(path: directory, operation: "open directory", errno: errno) }
        defer { Glibc.close(fd) }
        // Some filesystems refuse fsync on a directory (EINVAL); the rename is then as durable as they make it.
        guard fsync(fd) == 0 || errno == EINVAL else {
            throw FileIOError(path: directory, operation: "fsync directory", errno: errno)
        }
    }
}
