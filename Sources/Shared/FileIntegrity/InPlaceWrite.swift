import Crypto
import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// Bytes written into an existing file at a given offset and made durable: a range of a file whose layout was
/// fixed when it was made (a part file of the extraction journal), written by whichever process computed it.
public enum InPlaceWrite {
    /// Writes `bytes` at byte `offset` of the existing file `path` (`pwrite`), fsyncs it unless `sync` is false
    /// (the caller then calls `sync(_:)` before counting on the bytes), and returns the SHA-256 (hex) of the
    /// bytes. Never creates or truncates the file.
    public static func write(
        _ bytes: UnsafeRawBufferPointer, to path: String, at offset: Int, sync: Bool = true
    ) throws(FileIOError) -> String {
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError(path: path, operation: "open", errno: errno) }
        defer { Glibc.close(fd) }
        var written = 0
        while written < bytes.count {
            let result = pwrite(fd, bytes.baseAddress! + written, bytes.count - written, off_t(offset + written))
            if result < 0 {
                if errno == EINTR { continue }
                throw FileIOError(path: path, operation: "write", errno: errno)
            }
            written += result
        }
        guard !sync || fsync(fd) == 0 else { throw FileIOError(path: path, operation: "fsync", errno: errno) }
        return Checksum.hex(SHA256.hash(data: bytes))
    }

    /// fsyncs the file `path`: makes durable what was written to it without `sync`.
    public static func sync(_ path: String) throws(FileIOError) {
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError(path: path, operation: "open", errno: errno) }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw FileIOError(path: path, operation: "fsync", errno: errno) }
    }
}
