import ArgumentParser
import Foundation
import Reporting

/// The one place where errors become messages and exit statuses, for every executable of the package.
///
/// Exit status: 0 success; 1 a reported failure (bad data or input, a failed run); 2 a usage error (not
/// ArgumentParser's 64). `run()` methods throw domain errors (`ReportedError`), `ReportedFailure`, or
/// `ExitCode`, and let this print them.
public enum CommandLineRunner {
    /// Parses the command line of `root`, runs the chosen command, and exits.
    /// Raises the open-file limit first (`OpenFileLimit.atStart`, logged at debug once logging is set up).
    public static func main<Root: ParsableCommand>(_ root: Root.Type) -> Never {
        _ = OpenFileLimit.atStart
        do {
            var command = try root.parseAsRoot()
            try command.run()
            Foundation.exit(0)
        } catch {
            Foundation.exit(handle(error, root: root))
        }
    }

    /// Prints `error` on standard error and returns the exit status it stands for.
    static func handle<Root: ParsableCommand>(_ error: any Error, root: Root.Type) -> Int32 {
        if let exitCode = error as? ExitCode { return exitCode.rawValue }
        if let reported = error as? any ReportedError {
            writeError("Error: " + message(for: reported))
            return status(for: reported.category)
        }
        let code = root.exitCode(for: error)
        if code == .success || error is CleanExit { root.exit(withError: error) }
        let text = root.fullMessage(for: error)
        if !text.isEmpty { writeError(text) }
        if code == .validationFailure || isUsageError(error) { return 2 }
        return code.rawValue == 0 ? 1 : code.rawValue
    }

    /// The message of a domain error, with the command-line hint for its remedy.
    public static func message(for error: any ReportedError) -> String {
        guard let remedy = error.remedy else { return error.description }
        return error.description + " (" + hint(for: remedy) + ")"
    }

    /// The flags that carry out `remedy`, in words for the operator.
    public static func hint(for remedy: Remedy) -> String {
        switch remedy {
        case .restartJob: "rerun with --restart"
        case .overwrite: "--force"
        case .authorizeWorkerKey: "put the worker's .pub file in the coordinator's --authorized-workers directory"
        case .giveWorkerKeys: "give the worker --curve-key WORKER.key --server-key COORDINATOR.pub"
        case .matchCoordinatorSecurity:
            "start the coordinator with --curve-key and --authorized-workers, or the worker without keys"
        case .checkServerKey: "--server-key must be the coordinator's .pub, made with its --curve-key"
        case .secureOrLoopbackBind:
            "give --curve-key KEY --authorized-workers DIR (keys from `bottleneck-coordinator keygen`), bind "
                + "tcp://127.0.0.1:PORT, or pass --insecure on a network you trust"
        }
    }

    /// The exit status of a failure category.
    public static func status(for category: FailureCategory) -> Int32 {
        switch category {
        case .badInput, .failedRun: 1
        case .usage: 2
        case .interrupted(let signal): 128 + signal
        }
    }

    private static func isUsageError(_ error: any Error) -> Bool {
        error is ValidationError || String(describing: type(of: error)).contains("ParserError")
    }

    private static func writeError(_ text: String) {
        FileHandle.standardError.write(Data((text + "\n").utf8))
    }
}

/// A failure the command itself explains, with no domain error behind it; exits with status 1.
public struct ReportedFailure: ReportedError {
    public let message: String
    public var description: String { message }
    public init(_ message: String) { self.message = message }
}

/// Writes a line to standard output at once (not buffered), so that logs of long runs can be followed.
public func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
