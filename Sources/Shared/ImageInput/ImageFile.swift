import Foundation
import Provenance

#if canImport(Glibc)
    import Glibc
#endif

/// What reading an image file gave: its bytes, its absence, or an I/O failure worth retrying.
public enum ImageFileRead: Sendable {
    /// The whole file, and its stamp taken from the open descriptor.
    case read([UInt8], InputStamp)
    /// No file at the path (ENOENT, ENOTDIR): recorded as skipped with reason "missing".
    case missing
    /// The read failed (EIO, ESTALE, ETIMEDOUT, EAGAIN, a short read, not a regular file …): not the file's
    /// fault as far as anyone can tell; another try may succeed.
    case failed(String)
}

/// Reads image files whole, telling a missing file and a failed read apart from a file that is there.
public enum ImageFile {
    /// Reads `path` whole. Never blocks on a FIFO or device (opened non-blocking, refused unless regular).
    public static func read(_ path: String) -> ImageFileRead {
        let fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC)
        guard fd >= 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { return .missing }
            return .failed("open: \(describe(code))")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { return .failed("fstat: \(describe(errno))") }
        guard info.st_mode & S_IFMT == S_IFREG else { return .failed("not a regular file") }
        let size = Int(info.st_size)
        var bytes = [UInt8](repeating: 0, count: size)
        var offset = 0
        while offset < size {
            let count = bytes.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + offset, size - offset, off_t(offset))
            }
            if count < 0 {
                if errno == EINTR { continue }
                return .failed("read: \(describe(errno))")
            }
            if count == 0 { return .failed("short read: \(offset) of \(size) bytes") }
            offset += count
        }
        let stamp = stampOf(info)
        var after = stat()
        guard fstat(fd, &after) == 0 else { return .failed("fstat: \(describe(errno))") }
        guard stampOf(after) == stamp else { return .failed("changed while being read") }
        return .read(bytes, stamp)
    }

    /// The stamp of `path` now, or nil when there is no file there (or it cannot be examined).
    public static func stamp(_ path: String) -> InputStamp? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        return stampOf(info)
    }

    private static func stampOf(_ info: stat) -> InputStamp {
        InputStamp(
            size: Int(info.st_size),
            modifiedNanoseconds: Int64(info.st_mtim.tv_sec) * 1_000_000_000 + Int64(info.st_mtim.tv_nsec))
    }

    private static func describe(_ code: Int32) -> String { String(cString: strerror(code)) }
}
