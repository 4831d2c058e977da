import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The exclusive lock of a journal directory: one coordinator per output.
///
/// An `flock` on `<parts>/lock`, taken without waiting; the file then says who holds it ("pid 42 on host
/// node1"). The kernel releases the lock when its descriptor closes, so any exit of the holder, kill -9
/// included, frees it; the descriptor is close-on-exec, so worker processes never inherit it.
final class JournalLock {
    static let name = "lock"
    private let descriptor: Int32

    private init(descriptor: Int32) { self.descriptor = descriptor }

    deinit { close(descriptor) }

    /// Takes the lock of `directory` (which must exist), or throws `JournalError.inUse` naming the holder.
    static func acquire(directory: String) throws -> JournalLock {
        let path = directory + "/" + name
        let fd = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0o644)
        guard fd >= 0 else {
            throw JournalError(.io, "cannot open \(path): \(String(cString: strerror(errno)))")
        }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            var holder = [UInt8](repeating: 0, count: 256)
            let count = pread(fd, &holder, holder.count, 0)
            close(fd)
            guard code == EWOULDBLOCK else {
                throw JournalError(.io, "cannot lock \(path): \(String(cString: strerror(code)))")
            }
            let who = String(decoding: holder.prefix(max(0, count)), as: UTF8.self)
                .trimmingCharacters(in: .whitespacesAndNewlines)
            throw JournalError(
                .inUse,
                "\(directory) is in use by another extraction (\(who.isEmpty ? "holder unknown" : who)); "
                    + "wait for it to finish or stop it")
        }
        let text = Array("pid \(getpid()) on host \(ProcessInfo.processInfo.hostName)\n".utf8)
        guard ftruncate(fd, 0) == 0, pwrite(fd, text, text.count, 0) == text.count else {
            let code = errno
            close(fd)
            throw JournalError(.io, "cannot write \(path): \(String(cString: strerror(code)))")
        }
        return JournalLock(descriptor: fd)
    }
}
