import FileIntegrity
import Foundation
import Reporting

#if canImport(FoundationNetworking)
    import FoundationNetworking
#endif

/// One file downloaded over HTTP(S) to `destination`, through `destination.part`, verified before it is
/// renamed into place.
///
/// A `.part` left by an earlier, cut-off run is continued with `Range: bytes=N-`; a server that answers
/// 200 instead of 206 is followed from the start. A hash mismatch deletes the part and throws; a broken
/// connection or a timeout keeps it for the next run. Redirects are followed. Blocks the calling thread.
public struct FileDownload: Sendable {
    public var url: URL
    public var destination: String
    public var expectedHash: ExpectedHash
    /// Seconds without progress (connecting, waiting for the answer, or between chunks) before giving up.
    public var timeout: Double

    public init(url: URL, destination: String, expectedHash: ExpectedHash, timeout: Double = 30) {
        self.url = url
        self.destination = destination
        self.expectedHash = expectedHash
        self.timeout = timeout
    }

    /// The temporary name the bytes are written to until the hash matches.
    public var partPath: String { destination + ".part" }

    /// Downloads (or resumes) the file, checks its hash and renames it to `destination`.
    ///
    /// Progress goes to `progress` from a background thread after each received chunk, as a report of task
    /// `download` counting `bytes` (`alreadyDone`: the bytes resumed from the part; `total`: the file's size,
    /// or the bytes so far while the server has not said). Throws `DownloadError`.
    public func run(progress: ProgressSink = .none) throws {
        let directory = (destination as NSString).deletingLastPathComponent
        do {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        } catch {
            throw DownloadError.io(path: directory, reason: "cannot be created: \(error.localizedDescription)")
        }
        // At most one retry from zero: after a 416 on a part that does not verify.
        for _ in 0..<2 {
            let offset = Self.size(of: partPath) ?? 0
            switch try transfer(from: offset, progress: progress) {
            case .complete:
                try verifyAndPublish()
                return
            case .rangeNotSatisfiable:
                // The part may already be whole (a run stopped between the last byte and the rename).
                if (try? expectedHash.digest(ofFileAt: partPath)) == expectedHash.hex {
                    try publish()
                    return
                }
                try? FileManager.default.removeItem(atPath: partPath)
            }
        }
        throw DownloadError.httpStatus(url: url.absoluteString, status: 416)
    }

    private enum Outcome { case complete, rangeNotSatisfiable }

    private func transfer(from offset: Int64, progress: ProgressSink) throws -> Outcome {
        if !FileManager.default.fileExists(atPath: partPath) {
            guard FileManager.default.createFile(atPath: partPath, contents: nil) else {
                throw DownloadError.io(path: partPath, reason: "cannot be created")
            }
        }
        guard let handle = FileHandle(forWritingAtPath: partPath) else {
            throw DownloadError.io(path: partPath, reason: "cannot be opened for writing")
        }
        defer { try? handle.close() }

        let receiver = Receiver(handle: handle, offset: offset, partPath: partPath, progress: progress)
        let configuration = URLSessionConfiguration.ephemeral
        configuration.timeoutIntervalForRequest = timeout
        configuration.requestCachePolicy = .reloadIgnoringLocalCacheData
        configuration.urlCache = nil
        let queue = OperationQueue()
        queue.maxConcurrentOperationCount = 1
        let session = URLSession(configuration: configuration, delegate: receiver, delegateQueue: queue)
        var request = URLRequest(url: url, cachePolicy: .reloadIgnoringLocalCacheData, timeoutInterval: timeout)
        if offset > 0 { request.setValue("bytes=\(offset)-", forHTTPHeaderField: "Range") }
        session.dataTask(with: request).resume()
        receiver.finished.wait()
        session.finishTasksAndInvalidate()

        let state = receiver.state()
        if state.status == 416 { return .rangeNotSatisfiable }
        if state.failure != nil || state.error != nil {
            // An empty part is no progress worth keeping; a non-empty one is resumed by the next run.
            let written = Self.size(of: partPath) ?? 0
            if written == 0 { try? FileManager.default.removeItem(atPath: partPath) }
            if let failure = state.failure { throw failure }
            if let error = state.error { throw classify(error, partBytes: written) }
        }
        do {
            try handle.synchronize()
        } catch {
            throw DownloadError.io(path: partPath, reason: "cannot be written: \(error.localizedDescription)")
        }
        return .complete
    }

    private func classify(_ error: any Error, partBytes: Int64) -> DownloadError {
        let urlString = url.absoluteString
        let nsError = error as NSError
        let reason = nsError.userInfo[NSLocalizedDescriptionKey] as? String ?? error.localizedDescription
        if nsError.code == NSURLErrorTimedOut {
            return .timedOut(url: urlString, seconds: timeout, partPath: partPath, partBytes: partBytes)
        }
        // Bytes arrived: the connection broke midway and the part is worth resuming. None: the host was never
        // reached (no network, name not resolved, connection refused, TLS failure).
        if partBytes > 0 {
            return .interrupted(url: urlString, reason: reason, partPath: partPath, partBytes: partBytes)
        }
        return .unreachable(url: urlString, reason: reason)
    }

    private func verifyAndPublish() throws {
        let actual = try expectedHash.digest(ofFileAt: partPath)
        guard actual == expectedHash.hex else {
            try? FileManager.default.removeItem(atPath: partPath)
            throw DownloadError.hashMismatch(
                url: url.absoluteString, algorithm: expectedHash.algorithm, expected: expectedHash.hex, actual: actual)
        }
        try publish()
    }

    /// Renames the verified part into place (fsync, rename, directory fsync).
    private func publish() throws {
        do {
            try AtomicFile.publish(partPath, as: destination)
        } catch let error as FileIOError {
            throw DownloadError.io(path: error.path, reason: "cannot \(error.operation): \(error.reason)")
        }
    }

    static func size(of path: String) -> Int64? {
        guard let attributes = try? FileManager.default.attributesOfItem(atPath: path),
            let size = attributes[.size] as? NSNumber
        else { return nil }
        return size.int64Value
    }
}

/// The URLSession delegate that streams the body into the part file.
private final class Receiver: NSObject, URLSessionDataDelegate, @unchecked Sendable {
    struct State {
        var status = 0
        var error: (any Error)?
        var failure: DownloadError?
    }

    let finished = DispatchSemaphore(value: 0)
    private let handle: FileHandle
    private let offset: Int64
    private let partPath: String
    private let progress: ProgressSink
    private let lock = NSLock()
    private var current = State()
    private var done: Int64 = 0
    private var total: Int64?
    private var resumedFrom: Int64 = 0

    init(handle: FileHandle, offset: Int64, partPath: String, progress: ProgressSink) {
        self.handle = handle
        self.offset = offset
        self.partPath = partPath
        self.progress = progress
    }

    func state() -> State { lock.withLock { current } }

    func urlSession(
        _ session: URLSession, dataTask: URLSessionDataTask, didReceive response: URLResponse,
        completionHandler: @escaping (URLSession.ResponseDisposition) -> Void
    ) {
        let http = response as? HTTPURLResponse
        let status = http?.statusCode ?? 0
        lock.withLock { current.status = status }
        do {
            switch status {
            case 206 where offset > 0 && Self.rangeStart(http) == offset:
                try handle.seek(toOffset: UInt64(offset))
                try handle.truncate(atOffset: UInt64(offset))
                resumedFrom = offset
                done = offset
                total =
                    Self.rangeTotal(http)
                    ?? (response.expectedContentLength >= 0
                        ? offset + response.expectedContentLength : nil)
            case 200:
                // A fresh download, or a server that ignored the Range request: start over.
                try handle.truncate(atOffset: 0)
                resumedFrom = 0
                done = 0
                total = response.expectedContentLength >= 0 ? response.expectedContentLength : nil
            case 416, 206:
                // Nothing left past the part, or a range other than the one asked for: the caller checks
                // the part and starts over when it is not the whole file.
                lock.withLock { current.status = 416 }
                completionHandler(.cancel)
                return
            default:
                lock.withLock {
                    current.failure = .httpStatus(url: response.url?.absoluteString ?? "?", status: status)
                }
                completionHandler(.cancel)
                return
            }
        } catch {
            lock.withLock {
                current.failure = .io(path: partPath, reason: "cannot be written: \(error.localizedDescription)")
            }
            completionHandler(.cancel)
            return
        }
        report()
        completionHandler(.allow)
    }

    func urlSession(_ session: URLSession, dataTask: URLSessionDataTask, didReceive data: Data) {
        do {
            try handle.write(contentsOf: data)
        } catch {
            lock.withLock {
                current.failure = .io(path: partPath, reason: "cannot be written: \(error.localizedDescription)")
            }
            dataTask.cancel()
            return
        }
        done += Int64(data.count)
        report()
    }

    private func report() {
        progress.report(
            ProgressReport(
                task: "download", done: Int(done), total: Int(total ?? done), unit: "bytes",
                alreadyDone: Int(resumedFrom)))
    }

    func urlSession(_ session: URLSession, task: URLSessionTask, didCompleteWithError error: (any Error)?) {
        lock.withLock {
            // A cancel of ours already recorded why.
            if current.failure == nil && current.status != 416 { current.error = error }
        }
        finished.signal()
    }

    /// N of `Content-Range: bytes N-M/T`.
    private static func rangeStart(_ response: HTTPURLResponse?) -> Int64? {
        guard let value = response?.value(forHTTPHeaderField: "Content-Range") else { return nil }
        let spec = value.split(separator: " ").last ?? ""
        return spec.split(separator: "-").first.flatMap { Int64($0) }
    }

    /// T of `Content-Range: bytes N-M/T`.
    private static func rangeTotal(_ response: HTTPURLResponse?) -> Int64? {
        guard let value = response?.value(forHTTPHeaderField: "Content-Range") else { return nil }
        return value.split(separator: "/").last.flatMap { Int64($0) }
    }
}
