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
    /// bytes (an empty string when not `hashing`: the caller has it). Never creates or truncates the file.
    @discardableResult
    public static func write(
        _ bytes: UnsafeRawBufferPointer, to path: String, at offset: Int, hashing: Bool = true, sync: Bool = true
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
        return hashing ? Checksum.hex(SHA256.hash(data: bytes)) : ""
    }

    /// The alignment `writeDirect` needs of the offset and the size (the usual logical block size) and of the
    /// bytes' address (a page).
    public static let directBlock = 512
    public static let directMemoryAlignment = 4096

    /// Linux's `O_DIRECT` (Glibc's module map leaves it out: it is a `_GNU_SOURCE` flag).
    #if arch(arm64)
        private static let directFlag: Int32 = 0o200000
    #else
        private static let directFlag: Int32 = 0o40000
    #endif

    /// Writes `bytes` at byte `offset` of the existing file `path` past the page cache (`O_DIRECT`): large writes go
    /// to the device at once instead of through the kernel's write-back, which on some systems is many times
    /// slower. Returns false, having written nothing, when direct I/O cannot be used here: the offset or size is not
    /// a multiple of `directBlock`, the bytes are not aligned to `directMemoryAlignment`, or the filesystem refuses
    /// it (`EINVAL`); the caller then writes through `write`. Not durable until `sync(_:)`. Never creates or
    /// truncates the file.
    public static func writeDirect(
        _ bytes: UnsafeRawBufferPointer, to path: String, at offset: Int
    ) throws(FileIOError) -> Bool {
        guard offset % directBlock == 0, bytes.count % directBlock == 0, bytes.count > 0,
            Int(bitPattern: bytes.baseAddress!) % directMemoryAlignment == 0
        else { return false }
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC | directFlag)
        if fd < 0 {
            if errno == EINVAL { return false }
            throw FileIOError(path: path, operation: "open", errno: errno)
        }
        defer { Glibc.close(fd) }
        var written = 0
        while written < bytes.count {
            let result = pwrite(fd, bytes.baseAddress! + written, bytes.count - written, off_t(offset + written))
            if result < 0 {
                if errno == EINTR { continue }
                // Refused before anything was written: the caller writes through the page cache instead.
                if errno == EINVAL && written == 0 { return false }
                throw FileIOError(path: path, operation: "write", errno: errno)
            }
            // A short direct write leaves an unaligned rest: write it through the page cache.
            written += result
            if written < bytes.count && (written % directBlock != 0) { break }
        }
        if written < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[written...])
            try write(rest, to: path, at: offset + written, hashing: false, sync: false)
        }
        return true
    }

    /// fsyncs the file `path`: makes durable what was written to it without `sync`.
    public static func sync(_ path: String) throws(FileIOError) {
        let fd = Glibc.open(path, O_WRONLY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError(path: path, operation: "open", errno: errno) }
        defer { Glibc.close(fd) }
        guard fsync(fd) == 0 else { throw FileIOError(path: path, operation: "fsync", errno: errno) }
    }
}
