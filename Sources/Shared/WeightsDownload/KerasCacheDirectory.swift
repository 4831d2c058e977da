import Foundation

/// Keras' cache directory, found as Keras' `get_file` finds it, from the environment at call time.
///
/// `$KERAS_HOME` when set, otherwise `$HOME/.keras`; when that directory cannot be created or written,
/// `/tmp/.keras`. Files live in a subdirectory (`models` for weights).
public struct KerasCacheDirectory: Sendable, Equatable {
    /// The base directory (`~/.keras` or its replacement).
    public let path: String

    /// Keras' fallback when the chosen base directory is not writable.
    public static let fallback = "/tmp/.keras"

    public init(path: String) { self.path = path }

    /// The directory Keras would use in `environment` (default: this process' environment, read now).
    ///
    /// Creates the base directory when missing, as Keras does on import; falls back to `fallback` when it
    /// cannot be created or is not writable.
    public static func resolve(
        environment: [String: String] = ProcessInfo.processInfo.environment, fallback: String = fallback
    ) -> KerasCacheDirectory {
        let base: String
        if let kerasHome = environment["KERAS_HOME"], !kerasHome.isEmpty {
            base = kerasHome
        } else {
            let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? NSHomeDirectory()
            base = (home as NSString).appendingPathComponent(".keras")
        }
        try? FileManager.default.createDirectory(atPath: base, withIntermediateDirectories: true)
        if access(base, W_OK) == 0 { return KerasCacheDirectory(path: base) }
        return KerasCacheDirectory(path: fallback)
    }

    /// The path of `fileName` in `subdirectory` (Keras' `cache_subdir`) of this cache.
    public func file(_ fileName: String, subdirectory: String = "models") -> String {
        ((path as NSString).appendingPathComponent(subdirectory) as NSString).appendingPathComponent(fileName)
    }
}
