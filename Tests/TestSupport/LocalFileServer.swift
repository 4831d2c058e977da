import Foundation

/// An HTTP server on 127.0.0.1 serving one file (`local_file_server.py`, run with python3), for download
/// tests that must not leave the machine.
///
/// Modes: `normal` (Range requests answered with 206), `cut:N` (the body stops after N bytes and the
/// connection closes), `silent` (accepts, never answers), `full200` (ignores Range), `redirect`
/// (`/redirect` answers 302 to `/file`), `missing` (404). The server stops when this object goes away.
public final class LocalFileServer: @unchecked Sendable {
    public let port: Int
    private let child: ChildProcess
    private let logPath: String

    /// Starts serving `file`; its logs and port file go to `directory`. Waits up to 10 s for the port.
    public init(file: String, mode: String = "normal", directory: String) throws {
        let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
            .appendingPathComponent("local_file_server.py").path
        let portFile = directory + "/server-\(UUID().uuidString.prefix(6)).port"
        logPath = portFile.replacingOccurrences(of: ".port", with: ".requests")
        _ = FileManager.default.createFile(atPath: logPath, contents: nil)
        let child = try ChildProcess(
            "/usr/bin/env",
            ["python3", script, "--file", file, "--port-file", portFile, "--log", logPath, "--mode", mode],
            logDirectory: directory, label: "http-server")
        var found: Int?
        waitUntil(timeout: 10) {
            found = (try? String(contentsOfFile: portFile, encoding: .utf8)).flatMap { Int($0) }
            return found != nil || !child.isRunning
        }
        guard let found else {
            throw ServerError(description: "the test HTTP server did not start: \(child.stderr)")
        }
        port = found
        self.child = child
    }

    deinit {
        child.signal(SIGKILL)
        child.wait(timeout: 5)
    }

    /// `http://127.0.0.1:PORT/PATH`.
    public func url(_ path: String = "/file") -> String { "http://127.0.0.1:\(port)\(path)" }

    /// One line per request received so far: `GET /file Range=bytes=N-` (or `Range=-`).
    public var requests: [String] {
        ((try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "").split(separator: "\n").map(String.init)
    }

    struct ServerError: Error, CustomStringConvertible { let description: String }
}
