import ArgumentParser
import CLI
import FileIntegrity
import VGG16

struct GenerateWeightsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate-weights",
        abstract: "Write random (He-uniform) VGG16 weights in the official Keras layout, for demos and tests.",
        discussion: """
            Features computed with these weights are NOT ImageNet features; use them only to try the
            pipeline where the official file cannot be had. --widths makes a narrow VGG16-shaped network.
            """)

    @Option(name: .long, help: "Where to write the weights (.h5).")
    var output: String

    @Option(name: .long, help: "Random seed.")
    var seed: UInt64 = 0

    @Option(name: .long, parsing: .upToNextOption, help: "13 conv widths (default: VGG16's 64 … 512).")
    var widths: [Int] = VGG16Weights.standardWidths

    @Flag(name: .long, help: "Overwrite --output even when it exists and is not a VGG16 weights file.")
    var force = false

    @OptionGroup var common: CommonOptions

    func validate() throws {
        guard widths.count == 13, widths.allSatisfy({ $0 > 0 }) else {
            throw ValidationError("--widths needs 13 positive numbers, got \(widths)")
        }
    }

    func run() throws {
        try OutputCheck.check(
            output, kind: "VGG16 weights file", inputs: [], overwrite: force, recognises: VGG16Weights.isWeightsFile)
        common.bootstrapLogging()
        let weights = VGG16Weights.generated(widths: widths, seed: seed)
        try weights.writeOfficialLayout(to: output)
        print("wrote GENERATED random VGG16 weights (seed \(seed)) to \(output)")
    }
}
