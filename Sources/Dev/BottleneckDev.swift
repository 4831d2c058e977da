import ArgumentParser
import CLI

/// `bottleneck-dev`: developer tools kept apart from the product — engine benchmarks and a worker with test
/// hooks. Not installed with the product and not part of its command-line contract.
@main
struct BottleneckDev: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bottleneck-dev",
        abstract: "Developer tools for Bottleneck: benchmarks and a worker with test hooks.",
        subcommands: [
            BenchEngineCommand.self, DevWorkerCommand.self, FMAPeakCommand.self, BenchBF16Command.self,
            BenchTopModelCommand.self,
        ])

    /// Runs the command line (open-file limit raised, errors mapped to exit statuses; see `CommandLineRunner`).
    static func main() { CommandLineRunner.main(Self.self) }
}
