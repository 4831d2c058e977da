import FileIntegrity
import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// The worker processes a coordinator starts on its own machine.
///
/// Each is started with `--parent-pid <coordinator>`, so it exits by itself when the coordinator dies, whatever
/// the signal, and logs at the coordinator's level. A worker that exits during the job is replaced, up to `respawnBudget` times in all. Used from the
/// coordinator's event-loop thread only.
public final class LocalWorkerPool {
    public let executable: String
    public let arguments: [String]
    public private(set) var processes: [Process] = []
    private var respawnBudget: Int
    private let logger: Logger
    public private(set) var lastExitStatus: Int32 = 0

    public init(
        count: Int, endpoint: String, threads: Int?, cacheDirectory: String?, giveUpAfter: Double,
        extraArguments: [String] = [], logger: Logger
    ) throws {
        executable = try Self.workerExecutable()
        var arguments = [
            "--connect", endpoint, "--parent-pid", String(getpid()), "--give-up-after", String(giveUpAfter),
            "--log-level", logger.logLevel.rawValue,
        ]
        if let threads { arguments += ["--threads", String(threads)] }
        if let cacheDirectory { arguments += ["--cache-dir", cacheDirectory] }
        self.arguments = arguments + extraArguments
        self.logger = logger
        respawnBudget = max(3, 2 * count)
        for index in 0..<count { try spawn(index) }
    }

    /// `bottleneck-worker` next to the running executable, or `$BOTTLENECK_WORKER`.
    public static func workerExecutable() throws -> String {
        if let path = ProcessInfo.processInfo.environment["BOTTLENECK_WORKER"], !path.isEmpty { return path }
        let me =
            (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/exe")) ?? CommandLine.arguments[0]
        let path = URL(fileURLWithPath: me).deletingLastPathComponent().appendingPathComponent("bottleneck-worker").path
        guard FileManager.default.isExecutableFile(atPath: path) else {
            throw ExtractionError(.failed, "cannot find bottleneck-worker next to \(me) (set BOTTLENECK_WORKER)")
        }
        return path
    }

    private func spawn(_ index: Int) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments + ["--name", "local-\(index + 1)"]
        do { try process.run() } catch {
            throw ExtractionError(
                .failed, FileIOError(path: executable, operation: "start", error: error).description)
        }
        if index < processes.count { processes[index] = process } else { processes.append(process) }
        logger.info("local worker \(index + 1): pid \(process.processIdentifier)")
    }

    /// Replaces workers that exited; returns false when one exited and the respawn budget is spent.
    public func replaceExited() -> Bool {
        var healthy = true
        for (index, process) in processes.enumerated() where !process.isRunning {
            lastExitStatus = process.terminationStatus
            if respawnBudget > 0 {
                respawnBudget -= 1
                let status = process.terminationStatus
                logger.warning(
                    "local worker \(index + 1) (pid \(process.processIdentifier)) exited with status \(status); starting another"
                )
                do { try spawn(index) } catch {
                    logger.error("\(error)")
                    healthy = false
                }
            } else {
                healthy = false
            }
        }
        return healthy
    }

    public var runningCount: Int { processes.filter(\.isRunning).count }

    /// Waits up to `grace` seconds for the workers to exit on their own (after `end`), then kills the rest.
    public func shutDown(grace: Double) {
        let deadline = Date().addingTimeInterval(grace)
        while processes.contains(where: \.isRunning) && Date() < deadline { Thread.sleep(forTimeInterval: 0.02) }
        for process in processes where process.isRunning {
            kill(process.processIdentifier, SIGKILL)
        }
        for process in processes { process.waitUntilExit() }
    }
}
