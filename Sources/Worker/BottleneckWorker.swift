import ArgumentParser
import Foundation
import WorkerCommandLine

@main
struct BottleneckWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bottleneck-worker",
        abstract: "Computes VGG16 bottleneck features for shards handed out by a bottleneck-coordinator.",
        discussion: """
            Needs nothing but this binary: image bytes and, when missing from the cache, the weights come from the \
            coordinator. Exits 0 when the coordinator ends the job, 1 when it gives up or is refused.
            """)

    @OptionGroup var options: WorkerOptions

    /// Runs the command line; usage errors exit 2 (not ArgumentParser's 64), like `bottleneck-coordinator`.
    static func main() {
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success || error is CleanExit || error is ExitCode { exit(withError: error) }
            let message = fullMessage(for: error)
            if !message.isEmpty { FileHandle.standardError.write(Data((message + "\n").utf8)) }
            Foundation.exit(code == .validationFailure ? 2 : 1)
        }
    }

    func run() throws {
        try options.run(selfCheckArguments: ["--blas-selfcheck"])
    }
}
