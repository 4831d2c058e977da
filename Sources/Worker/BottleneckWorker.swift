import ArgumentParser

@main
struct BottleneckWorker: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bottleneck-worker",
        abstract: "Computes VGG16 bottleneck features for shards handed out by a bottleneck-coordinator.")
}
