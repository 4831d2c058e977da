import ArgumentParser
import BLAS
import CLI
import Foundation
import Logging

@main
struct BottleneckCoordinator: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bottleneck-coordinator",
        abstract: "VGG16 bottleneck features for a labelled image tree, and the softmax top model on them.",
        discussion: """
            Exit status: 0 success, 1 the data or an input is bad (reported), 2 usage error.
            """,
        subcommands: [
            InspectCommand.self, ExtractCommand.self, TrainCommand.self, FinetuneCommand.self, EvaluateCommand.self,
            PredictCommand.self, ExportCommand.self, ReportCommand.self, GenerateWeightsCommand.self,
            FetchWeightsCommand.self, KeygenCommand.self, BLASSelfCheckCommand.self,
        ])

    /// Runs the command line; see `CommandLineRunner` for the exit statuses.
    static func main() { CommandLineRunner.main(Self.self) }
}

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
