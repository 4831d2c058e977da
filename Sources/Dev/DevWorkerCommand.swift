import ArgumentParser
import WorkerCommandLine

/// `bottleneck-dev worker`: the real worker session with `bottleneck-worker`'s options plus test hooks.
///
/// `--shard-delay-ms N` waits N ms before each shard: a slow worker for tests of reassignment, duplicates
/// and progress. `--die-after-chunks N` kills the worker with SIGKILL on its N-th fine-tuning chunk;
/// `--forget-images-after-chunks N` drops the images it holds after its N-th one. `--withhold-cpu-flag
/// avx512_bf16` treats that CPU flag as missing, so that a test sees the refusal of bf16 on a CPU that has it.
struct DevWorkerCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "worker",
        abstract: "Run a worker (as bottleneck-worker) with test hooks such as --shard-delay-ms.")

    @OptionGroup var options: WorkerOptions

    @Option(help: "Milliseconds to wait before each shard (simulates a slow worker).")
    var shardDelayMs: Int = 0

    @Option(help: "Kill this process with SIGKILL on receiving its N-th fine-tuning chunk (a worker dying mid-step).")
    var dieAfterChunks: Int?

    @Option(help: "Forget the images held after the N-th fine-tuning chunk (a worker that lost its state).")
    var forgetImagesAfterChunks: Int?

    @Option(help: "A /proc/cpuinfo flag to treat as missing, e.g. avx512_bf16 (repeatable).")
    var withholdCpuFlag: [String] = []

    func validate() throws {
        if shardDelayMs < 0 { throw ValidationError("--shard-delay-ms must not be negative") }
        if let dieAfterChunks, dieAfterChunks < 1 { throw ValidationError("--die-after-chunks must be 1 or more") }
    }

    func run() throws {
        try options.run(
            selfCheckArguments: ["worker", "--blas-selfcheck"], shardDelayMilliseconds: shardDelayMs,
            exitAfterChunks: dieAfterChunks, forgetImagesAfterChunks: forgetImagesAfterChunks,
            withheldCPUFlags: withholdCpuFlag)
    }
}
