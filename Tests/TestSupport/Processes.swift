import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// The package's executables, built next to the test bundle (`.build/debug/bottleneck-worker`).
public enum BuiltExecutables {
    /// The directory holding the test runner, which SwiftPM also fills with the package's executables.
    public static var directory: String {
        let runner =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        var url = URL(fileURLWithPath: runner).deletingLastPathComponent()
        // `swift test` runs `<bin>/BottleneckPackageTests.xctest`; some runners sit one level deeper.
        for _ in 0..<3 {
            if FileManager.default.isExecutableFile(atPath: url.appendingPathComponent("bottleneck-worker").path) {
                return url.path
            }
            url.deleteLastPathComponent()
        }
        return URL(fileURLWithPath: runner).deletingLastPathComponent().path
    }

    public static func path(_ name: String) -> String { directory + "/" + name }

    public static var coordinator: String { path("bottleneck-coordinator") }
    public static var worker: String { path("bottleneck-worker") }
    /// The developer tool; `bottleneck-dev worker --shard-delay-ms N` is a slow worker.
    public static var dev: String { path("bottleneck-dev") }
    /// Simulated workers for load tests (`bottleneck-loadgen --connect … --workers N`).
    public static var loadgen: String { path("bottleneck-loadgen") }

    /// True when the executables were built (`swift build --build-tests` builds them).
    public static var available: Bool {
        [coordinator, worker, dev].allSatisfy { FileManager.default.isExecutableFile(atPath: $0) }
    }

    /// Writes `directory/slow-worker-N.sh`, which runs `bottleneck-dev worker` with the arguments it is given
    /// plus `--shard-delay-ms delayMilliseconds` (same pid: the script execs). Set it as the coordinator's
    /// `BOTTLENECK_WORKER` to make its local workers slow.
    public static func slowWorkerScript(delayMilliseconds: Int, in directory: String) throws -> String {
        let script = directory + "/slow-worker-\(delayMilliseconds).sh"
        let text = "#!/bin/sh\nexec '\(dev)' worker \"$@\" --shard-delay-ms \(delayMilliseconds)\n"
        try text.write(toFile: script, atomically: true, encoding: .utf8)
        try FileManager.default.setAttributes([.posixPermissions: 0o755], ofItemAtPath: script)
        return script
    }
}

/// A child process started by a test, its stdout and stderr captured in files.
///
/// Every wait is bounded; `deinit` kills the process if it still runs, so a failing test leaves no orphans.
public final class ChildProcess: @unchecked Sendable {
    public let process = Process()
    public let stdoutPath: String
    public let stderrPath: String

    /// Starts `executable` with `arguments`; output goes to files under `directory`.
    public init(
        _ executable: String, _ arguments: [String], logDirectory directory: String, label: String,
        environment: [String: String] = [:]
    ) throws {
        stdoutPath = directory + "/\(label)-\(UUID().uuidString.prefix(6)).out"
        stderrPath = directory + "/\(label)-\(UUID().uuidString.prefix(6)).err"
        _ = FileManager.default.createFile(atPath: stdoutPath, contents: nil)
        _ = FileManager.default.createFile(atPath: stderrPath, contents: nil)
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardOutput = try FileHandle(forWritingTo: URL(fileURLWithPath: stdoutPath))
        process.standardError = try FileHandle(forWritingTo: URL(fileURLWithPath: stderrPath))
        if !environment.isEmpty {
            process.environment = ProcessInfo.processInfo.environment.merging(environment) { $1 }
        }
        try process.run()
    }

    deinit {
        if process.isRunning {
            kill(process.processIdentifier, SIGCONT)
            kill(process.processIdentifier, SIGKILL)
            process.waitUntilExit()
        }
    }

    public var pid: Int32 { process.processIdentifier }
    public var isRunning: Bool { process.isRunning }

    public func signal(_ signal: Int32) { kill(process.processIdentifier, signal) }

    /// Waits up to `timeout` seconds; returns the exit status, or nil if the process still runs.
    @discardableResult
    public func wait(timeout: Double) -> Int32? {
        let deadline = Date().addingTimeInterval(timeout)
        while process.isRunning && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        if process.isRunning { return nil }
        process.waitUntilExit()
        return process.terminationStatus
    }

    /// True when the process ended by a signal rather than exit().
    public var wasSignalled: Bool { !process.isRunning && process.terminationReason == .uncaughtSignal }

    public var stdout: String { (try? String(contentsOfFile: stdoutPath, encoding: .utf8)) ?? "" }
    public var stderr: String { (try? String(contentsOfFile: stderrPath, encoding: .utf8)) ?? "" }

    /// Waits up to `timeout` seconds until stderr contains `text`.
    @discardableResult
    public func waitForStderr(_ text: String, timeout: Double) -> Bool {
        waitUntil(timeout: timeout) { self.stderr.contains(text) }
    }
}

/// Polls `condition` every 20 ms for up to `timeout` seconds.
@discardableResult
public func waitUntil(timeout: Double, _ condition: () -> Bool) -> Bool {
    let deadline = Date().addingTimeInterval(timeout)
    while Date() < deadline {
        if condition() { return true }
        Thread.sleep(forTimeInterval: 0.02)
    }
    return condition()
}

/// True while a process with `pid` exists (a zombie counts as gone).
public func processExists(_ pid: Int32) -> Bool {
    guard kill(pid, 0) == 0 else { return false }
    guard let status = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8) else { return false }
    // Field 3 is the state; "Z" is a zombie waiting for its parent.
    let afterName = status.split(separator: ")").last ?? ""
    return afterName.split(separator: " ").first != "Z"
}

/// A TCP port that was free a moment ago on 127.0.0.1 (bind to port 0, read it, close).
public func freeTCPPort() -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = 0
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    _ = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) }
    }
    _ = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { getsockname(fd, $0, &length) }
    }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// Writes a binary PPM (P6) image, one of the formats the Keras allow-list and the decoder accept.
public func writePPM(_ path: String, width: Int, height: Int, rgb: [UInt8]) throws {
    precondition(rgb.count == width * height * 3)
    var bytes = Array("P6\n\(width) \(height)\n255\n".utf8)
    bytes.append(contentsOf: rgb)
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}
