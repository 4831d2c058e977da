import ArgumentParser
import Foundation
import Logging
import WorkerRuntime

@main
struct BottleneckCoordinator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bottleneck-coordinator",
        abstract: "VGG16 bottleneck features for a labelled image tree, and the softmax top model on them.",
        discussion: """
            Exit status: 0 success, 1 the data or an input is bad (reported), 2 usage error.
            """,
        subcommands: [
            InspectCommand.self, ExtractCommand.self, TrainCommand.self, EvaluateCommand.self, PredictCommand.self,
            GenerateWeightsCommand.self, FetchWeightsCommand.self, KeygenCommand.self, BLASSelfCheckCommand.self,
            BenchEngineCommand.self,
        ])

    /// Runs the command line; usage errors exit 2 (not ArgumentParser's 64), reported failures 1.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is CleanExit {
                exit(withError: error)
            }
            let message = fullMessage(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            if code == .validationFailure || isUsageError(error) { Foundation.exit(2) }
            Foundation.exit(code.rawValue == 0 ? 1 : code.rawValue)
        }
    }

    private static func isUsageError(_ error: any Error) -> Bool {
        error is ValidationError || String(describing: type(of: error)).contains("ParserError")
    }
}

/// Options every subcommand shares.
struct CommonOptions: ParsableArguments {
    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error, critical.")
    var logLevel: Logger.Level = .info

    /// Sends log lines to standard error at the chosen level; call once at the start of `run()`.
    func bootstrapLogging() {
        let level = logLevel
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = level
            return handler
        }
    }
}

extension Logger.Level: @retroactive ExpressibleByArgument {}

extension CommonOptions {
    /// Chooses OpenBLAS' kernel set before any matrix product runs: on an AVX-512 CPU, its AVX-512 kernels
    /// after a self-check in a child process (the process re-executes itself), unless
    /// `BOTTLENECK_OPENBLAS_CORETYPE` says `keep` or names a set. See `BLASKernelChoice`.
    func chooseBLASKernels() {
        BLASKernelChoice.apply(
            mode: BLASKernelChoice.defaultMode, selfCheckArguments: ["blas-selfcheck"],
            logger: Logger(label: "bottleneck.blas"))
    }
}

/// The OpenBLAS self-check run by `chooseBLASKernels` in a child process.
struct BLASSelfCheckCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "blas-selfcheck", abstract: "Check OpenBLAS' sgemm against a float64 reference.",
        shouldDisplay: false)

    func run() throws { throw ExitCode(BLASKernelChoice.runSelfCheck()) }
}

/// A failure already explained to the user; exits with status 1.
struct ReportedFailure: Error, CustomStringConvertible {
    let description: String
    init(_ message: String) { description = message }
}

/// Writes a line to standard output at once (not buffered), so that logs of long runs can be followed.
func emit(_ line: String) {
    FileHandle.standardOutput.write(Data((line + "\n").utf8))
}
