import ArgumentParser
import Foundation
import WeightsDownload

/// `bottleneck-coordinator fetch-weights`: the official VGG16 notop weights into Keras' cache.
struct FetchWeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fetch-weights",
        abstract: "Download the official VGG16 notop weights into Keras' cache, as Keras does; print the path.",
        discussion: """
            The cache is $KERAS_HOME/models when KERAS_HOME is set, otherwise ~/.keras/models (/tmp/.keras/models \
            when ~/.keras is not writable). A file already there is used as it is. The download goes to FILE.part, \
            is checked against the hash Keras publishes and renamed only when it matches; a cut-off download is \
            resumed by the next run. extract and predict do the same when --weights is not given.
            Environment: BOTTLENECK_WEIGHTS_URL (a mirror), BOTTLENECK_WEIGHTS_SHA256 (its expected SHA-256), \
            BOTTLENECK_DOWNLOAD_TIMEOUT (seconds without progress before giving up; default 30).
            Exit status: 0 the file is in the cache, 1 the download failed or was refused, 2 usage.
            """)

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.bootstrapLogging()
        print(try DefaultWeights.path())
    }
}

/// The weights used when a command is given no `--weights`: Keras' cache file, fetched when missing.
enum DefaultWeights {
    /// The cached file's path, after downloading it when missing, with progress on standard error.
    /// A failure throws `ReportedFailure` (exit status 1) with the download's message.
    static func path() throws -> String {
        let progress = DownloadProgressLine()
        do {
            return try WeightsFetch.ensure { event in
                switch event {
                case .present:
                    break
                case .downloading(let url, let path, let resumingAt):
                    let resuming = resumingAt > 0 ? ", resuming at \(resumingAt) bytes" : ""
                    FileHandle.standardError.write(
                        Data("downloading \(url.absoluteString) into \(path)\(resuming)\n".utf8))
                case .progress(let value):
                    progress.update(value)
                case .downloaded(let path, let hash):
                    progress.finish()
                    FileHandle.standardError.write(Data("\(path): \(hash.algorithm) verified\n".utf8))
                }
            }
        } catch let error as DownloadError {
            progress.finish()
            throw ReportedFailure(error.description)
        }
    }
}

/// Download progress on standard error: bytes, rate and ETA, redrawn on a terminal, a line every few
/// seconds otherwise. Thread-safe.
final class DownloadProgressLine: @unchecked Sendable {
    private let isTerminal = isatty(STDERR_FILENO) != 0
    private let lock = NSLock()
    private let start = Date()
    private var lastPrint = Date.distantPast
    private var printed = false

    func update(_ progress: DownloadProgress) {
        lock.lock()
        defer { lock.unlock() }
        let now = Date()
        let whole = progress.bytesTotal == progress.bytesDone
        let started = progress.bytesDone > progress.resumedFrom
        guard started, now.timeIntervalSince(lastPrint) >= (isTerminal ? 0.1 : 5) || whole else { return }
        lastPrint = now
        let elapsed = now.timeIntervalSince(start)
        let rate = elapsed > 0 ? Double(progress.bytesDone - progress.resumedFrom) / elapsed : 0
        var text = "download: " + Self.megabytes(progress.bytesDone)
        if let total = progress.bytesTotal, total > 0 {
            text += " / " + Self.megabytes(total) + " (\(100 * progress.bytesDone / total)%)"
        }
        text += ", " + Self.megabytes(Int64(rate)) + "/s"
        if let total = progress.bytesTotal, rate > 0, progress.bytesDone < total {
            text += ", ETA " + ProgressLine.duration(Double(total - progress.bytesDone) / rate)
        }
        printed = true
        FileHandle.standardError.write(Data((isTerminal ? "\r\u{1B}[K" + text : text + "\n").utf8))
    }

    func finish() {
        lock.lock()
        defer { lock.unlock() }
        if isTerminal, printed { FileHandle.standardError.write(Data("\n".utf8)) }
        printed = false
    }

    private static func megabytes(_ bytes: Int64) -> String { String(format: "%.1f MB", Double(bytes) / 1_000_000) }
}
