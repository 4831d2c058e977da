import FileIntegrity
import Foundation
import Reporting

#if canImport(Glibc)
    import Glibc
#endif

/// Weights files received from coordinators, content-addressed by SHA-256 under `<cache>/weights/`.
///
/// A file is only ever used after its bytes hash to the name the job asks for, so a worker never computes with
/// weights other than the job's.
struct WeightsCache {
    let directory: String

    init(cacheDirectory: String) { directory = cacheDirectory + "/weights" }

    func path(for sha256: String) -> String { directory + "/" + sha256 + ".h5" }

    /// The cached file for `sha256` if present and its bytes hash to it; a file that does not is removed.
    func verifiedPath(for sha256: String) -> String? {
        let path = path(for: sha256)
        guard let data = FileManager.default.contents(atPath: path) else { return nil }
        if Self.sha256(data) == sha256 { return path }
        try? FileManager.default.removeItem(atPath: path)
        return nil
    }

    /// Stores received weights after checking their hash; returns the cached path.
    func store(_ bytes: [UInt8], sha256: String) throws -> String {
        let actual = Self.sha256(bytes)
        guard actual == sha256 else {
            throw WeightsTransferError(
                message: "received weights hash to \(actual.prefix(12))…, the job announced \(sha256.prefix(12))…")
        }
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw WorkerError(FileIOError(path: directory, operation: "create directory", error: error).description)
        }
        let path = path(for: sha256)
        do { try AtomicFile.write(bytes, to: path) } catch let error as FileIOError {
            throw WorkerError(error.description)
        }
        return path
    }

    /// Takes the cache's fetch lock without waiting: an `flock` on the cache directory, held by the one worker
    /// process of this host that asks a coordinator for weights while the others wait for its file. Nil when
    /// another process holds it. Released when the value is dropped, or by the kernel when the process dies.
    /// Throws when the cache directory cannot be made or locked: the weights could not be stored there either.
    func tryLockForFetch() throws -> FetchLock? {
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw FileIOError(path: directory, operation: "create", error: error)
        }
        let fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC)
        guard fd >= 0 else { throw FileIOError(path: directory, operation: "open", errno: errno) }
        guard flock(fd, LOCK_EX | LOCK_NB) == 0 else {
            let code = errno
            close(fd)
            if code == EWOULDBLOCK { return nil }
            throw FileIOError(path: directory, operation: "lock", errno: code)
        }
        return FetchLock(descriptor: fd)
    }

    /// The held fetch lock of a weights cache; closing the descriptor releases it.
    final class FetchLock {
        private let descriptor: Int32
        init(descriptor: Int32) { self.descriptor = descriptor }
        deinit { close(descriptor) }
    }

    static func sha256<D: DataProtocol>(_ data: D) -> String {
        Checksum.sha256Hex(data)
    }
}

/// Weights that arrived damaged (their bytes do not hash to the job's): worth asking for again.
struct WeightsTransferError: Error, CustomStringConvertible {
    let message: String
    var description: String { message }
}

/// A failure of this worker that ends its participation in a job.
public struct WorkerError: Error, CustomStringConvertible, Sendable {
    public let message: String
    public init(_ message: String) { self.message = message }
    public var description: String { "worker: \(message)" }
}

extension WorkerError: ReportedError {
    public var category: FailureCategory { .failedRun }
}
