import ArgumentParser
import Logging

/// Options every subcommand shares: the log level.
public struct CommonOptions: ParsableArguments, Sendable {
    @Option(name: .long, help: "Log level.")
    public var logLevel: Logger.Level = .info

    public init() {}

    /// Sends log lines to standard error at the chosen level; call once at the start of `run()`.
    public func bootstrapLogging() {
        CLI.bootstrapLogging(level: logLevel)
    }
}

/// Sends log lines to standard error at `level`; call once per process. Logs (at debug) what became of the
/// open-file limit (`OpenFileLimit.atStart`).
public func bootstrapLogging(level: Logger.Level) {
    LoggingSystem.bootstrap { label in
        var handler = StreamLogHandler.standardError(label: label)
        handler.logLevel = level
        return handler
    }
    OpenFileLimit.log(Logger(label: "bottleneck"))
}

extension Logger.Level: @retroactive ExpressibleByArgument {}
