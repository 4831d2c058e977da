import ArgumentParser
import CLI
import Foundation
import Reporting
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

    @Flag(help: "Progress as JSON lines on stdout (the path is then printed as the last line).")
    var jsonProgress = false

    @OptionGroup var common: CommonOptions

    func run() throws {
        common.bootstrapLogging()
        print(try DefaultWeights.path(progress: jsonProgress ? .json : .automatic))
    }
}

/// The weights used when a command is given no `--weights`: Keras' cache file, fetched when missing.
enum DefaultWeights {
    /// The cached file's path, after downloading it when missing, with progress drawn in `style`.
    /// A failed or refused download throws its `DownloadError` (exit status 1).
    static func path(progress style: ProgressStyle = .automatic) throws -> String {
        let renderer = ProgressRenderer(style)
        defer { renderer.finish() }
        return try WeightsFetch.ensure(progress: sink(renderer)) { event in
            switch event {
            case .present:
                break
            case .downloading(let url, let path, let resumingAt):
                let resuming = resumingAt > 0 ? ", resuming at \(resumingAt) bytes" : ""
                renderer.message("downloading \(url.absoluteString) into \(path)\(resuming)")
            case .downloaded(let path, let hash):
                renderer.message("\(path): \(hash.algorithm) verified")
            }
        }
    }

    /// The download's byte counts as they are (JSON lines), or in megabytes for people.
    private static func sink(_ renderer: ProgressRenderer) -> ProgressSink {
        guard !renderer.isJSON else { return renderer.sink }
        return ProgressSink(report: { bytes in
            renderer.update(megabytes(bytes))
        })
    }

    /// `report` counted in whole megabytes (10⁶ bytes); the last report stays complete.
    static func megabytes(_ report: ProgressReport) -> ProgressReport {
        let total = (report.total + 999_999) / 1_000_000
        let done = report.isComplete ? total : report.done / 1_000_000
        return ProgressReport(
            task: report.task, done: done, total: total, unit: "MB", alreadyDone: report.alreadyDone / 1_000_000,
            fields: report.fields)
    }
}
