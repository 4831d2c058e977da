import Foundation
import Reporting

/// Where a weights file comes from, its name in Keras' cache, and the hash it must have.
public struct WeightsSource: Sendable, Equatable {
    public var url: URL
    /// The file name in the cache's `models` directory (Keras' `fname`).
    public var fileName: String
    public var expectedHash: ExpectedHash

    public init(url: URL, fileName: String, expectedHash: ExpectedHash) {
        self.url = url
        self.fileName = fileName
        self.expectedHash = expectedHash
    }

    /// The official VGG16 notop file, with the MD5 `file_hash` Keras' `applications/vgg16.py` publishes for it.
    public static let vgg16Notop = WeightsSource(
        url: URL(
            string: "https://storage.googleapis.com/tensorflow/keras-applications/vgg16/"
                + "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5")!,
        fileName: "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5",
        expectedHash: .md5("6d6bbae143d832006294945121d1f1fc"))

    /// The variable naming another URL (a mirror) for the same file.
    public static let urlVariable = "BOTTLENECK_WEIGHTS_URL"
    /// The variable naming the expected SHA-256 (64 hex digits) instead of the published hash.
    public static let sha256Variable = "BOTTLENECK_WEIGHTS_SHA256"

    /// This source with `BOTTLENECK_WEIGHTS_URL` and `BOTTLENECK_WEIGHTS_SHA256` from `environment` applied.
    /// The cache file name stays the same. Throws `DownloadError.badSetting` for an unusable value.
    public func overridden(by environment: [String: String]) throws -> WeightsSource {
        var source = self
        if let value = environment[Self.urlVariable], !value.isEmpty {
            guard let url = URL(string: value), let scheme = url.scheme?.lowercased(),
                ["http", "https"].contains(scheme),
                url.host != nil
            else {
                throw DownloadError.badSetting(
                    name: Self.urlVariable, value: value, expected: "an http:// or https:// URL")
            }
            source.url = url
        }
        if let value = environment[Self.sha256Variable], !value.isEmpty {
            guard value.count == 64, let hash = ExpectedHash(hex: value) else {
                throw DownloadError.badSetting(
                    name: Self.sha256Variable, value: value, expected: "a SHA-256 as 64 hex digits")
            }
            source.expectedHash = hash
        }
        return source
    }
}

/// The weights file in Keras' cache, downloaded into it when missing — what Keras' `get_file` does for
/// `VGG16(weights="imagenet")`.
public enum WeightsFetch {
    /// The variable setting the connect/idle timeout in seconds (default `defaultTimeout`).
    public static let timeoutVariable = "BOTTLENECK_DOWNLOAD_TIMEOUT"
    public static let defaultTimeout: Double = 30

    /// The timeout from `environment`, or `defaultTimeout`. Throws `DownloadError.badSetting`.
    public static func timeout(environment: [String: String]) throws -> Double {
        guard let value = environment[timeoutVariable], !value.isEmpty else { return defaultTimeout }
        guard let seconds = Double(value), seconds > 0, seconds.isFinite else {
            throw DownloadError.badSetting(
                name: timeoutVariable, value: value, expected: "a positive number of seconds")
        }
        return seconds
    }

    /// What happened in `ensure`.
    public enum Event: Sendable {
        /// The file was already in the cache; nothing was downloaded.
        case present(path: String)
        /// A download starts (`resumingAt` > 0: continuing an earlier `.part`).
        case downloading(url: URL, path: String, resumingAt: Int64)
        /// The file arrived, its hash matched, and it is in place.
        case downloaded(path: String, hash: ExpectedHash)
    }

    /// The path of `source` in Keras' cache (`$KERAS_HOME`, `$HOME/.keras` or `/tmp/.keras`, read from
    /// `environment` now), downloading it there first when missing. A file already present is used as it is.
    ///
    /// The overrides in `environment` apply (`BOTTLENECK_WEIGHTS_URL`, `BOTTLENECK_WEIGHTS_SHA256`,
    /// `BOTTLENECK_DOWNLOAD_TIMEOUT`). `events` is called on the calling thread; `progress` receives the
    /// download's reports (task `download`, in bytes) from a background thread. Throws `DownloadError`.
    @discardableResult
    public static func ensure(
        _ source: WeightsSource = .vgg16Notop,
        environment: [String: String] = ProcessInfo.processInfo.environment, progress: ProgressSink = .none,
        events: (Event) -> Void = { _ in }
    ) throws -> String {
        let cache = KerasCacheDirectory.resolve(environment: environment)
        let path = cache.file(source.fileName)
        if FileManager.default.fileExists(atPath: path) {
            events(.present(path: path))
            return path
        }
        let source = try source.overridden(by: environment)
        let download = FileDownload(
            url: source.url, destination: path, expectedHash: source.expectedHash,
            timeout: try timeout(environment: environment))
        events(.downloading(url: source.url, path: path, resumingAt: FileDownload.size(of: download.partPath) ?? 0))
        try download.run(progress: progress)
        events(.downloaded(path: path, hash: source.expectedHash))
        return path
    }

    /// Where `source` is (or would be) in Keras' cache under `environment`, without downloading.
    public static func cachedPath(
        _ source: WeightsSource = .vgg16Notop, environment: [String: String] = ProcessInfo.processInfo.environment
    ) -> String {
        KerasCacheDirectory.resolve(environment: environment).file(source.fileName)
    }
}
