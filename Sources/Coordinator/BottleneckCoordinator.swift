import ArgumentParser

@main
struct BottleneckCoordinator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bottleneck-coordinator",
        abstract: "VGG16 bottleneck features for a labelled image tree, and the softmax top model on them.",
        subcommands: [KeygenCommand.self])
}
