import Foundation

/// A fresh directory under the system's temporary directory, removed by `remove()`.
///
/// Tests run in parallel; each makes its own directory so that no two share a path.
public struct TemporaryDirectory: Sendable {
    public let path: String

    public init(_ label: String = "test") throws {
        path = (NSTemporaryDirectory() as NSString).appendingPathComponent("bottleneck-\(label)-\(UUID().uuidString)")
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }

    /// `path/name`.
    public func file(_ name: String) -> String { (path as NSString).appendingPathComponent(name) }

    public func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// The repository's `Tests/Fixtures` directory, found from a test source file's `#filePath`.
public func fixturesDirectory(_ filePath: String = #filePath) -> String {
    var url = URL(fileURLWithPath: filePath)
    while url.path != "/" {
        url.deleteLastPathComponent()
        let candidate = url.appendingPathComponent("Fixtures")
        if url.lastPathComponent == "Tests", FileManager.default.fileExists(atPath: candidate.path) {
            return candidate.path
        }
    }
    return URL(fileURLWithPath: filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures").path
}
