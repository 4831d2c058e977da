import ArgumentParser
import CLI
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

    /// Runs the command line; see `CommandLineRunner` for the exit statuses.
    static func main() { CommandLineRunner.main(Self.self) }

    func run() throws {
        try options.run(selfCheckArguments: ["--blas-selfcheck"])
    }
}
