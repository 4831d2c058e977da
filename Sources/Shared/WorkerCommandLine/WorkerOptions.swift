import ArgumentParser
import BLAS
import CLI
import Foundation
import Logging
import VGG16
import Wire
import WorkerRuntime

#if canImport(Glibc)
    import Glibc
#endif

/// The worker's command-line options and its run: one definition for `bottleneck-worker` and the developer
/// tool's `worker` subcommand.
///
/// `run` chooses the OpenBLAS kernel set (which may re-execute the process), runs a `WorkerSession` and ends
/// the process with the session's exit status.
public struct WorkerOptions: ParsableArguments {
    @Option(help: "The coordinator's endpoint, e.g. tcp://10.0.0.1:5555 or ipc:///tmp/bottleneck.sock.")
    public var connect: String = ""

    @Option(help: "Threads for the convolutions (default: OpenBLAS' choice, one per core).")
    public var threads: Int?

    @Flag(help: "After a job ends, wait for the next one instead of exiting.")
    public var persistent = false

    @Option(help: "Where received weights are cached (default: $XDG_CACHE_HOME/bottleneck or ~/.cache/bottleneck).")
    public var cacheDir: String?

    @Option(help: "Seconds without an answer from the coordinator before giving up.")
    public var giveUpAfter: Double = 60

    @Option(help: "Name shown in the coordinator's logs (default: host:pid).")
    public var name: String?

    @Option(help: ArgumentHelp("Exit when this process is no longer the parent (local workers).", visibility: .hidden))
    public var parentPid: Int32?

    @Option(
        help: ArgumentHelp(
            "OpenBLAS kernel set: auto, keep, or a name such as Haswell or SkylakeX.",
            discussion: """
                auto (default, or $BOTTLENECK_OPENBLAS_CORETYPE): on an AVX-512 CPU, checks OpenBLAS' SkylakeX kernels \
                in a child process and re-executes this worker with OPENBLAS_CORETYPE=SkylakeX if they compute \
                correctly. keep: OpenBLAS' own choice. All workers of a job must run the same set for bit-identical \
                features.
                """))
    public var blasCoretype: String = BLASKernelChoice.defaultMode

    @Flag(help: ArgumentHelp("Check this process' OpenBLAS sgemm and print its kernel set.", visibility: .hidden))
    public var blasSelfcheck = false

    @Option(
        help: ArgumentHelp(
            "The arithmetic of the convolutions: fp32 (default) or bf16 (needs the CPU flag avx512_bf16).",
            discussion: "A coordinator refuses a worker whose precision is not its job's."))
    public var precision: ConvPrecision = .fp32

    @OptionGroup public var common: CommonOptions

    @Option(help: "This worker's CURVE key pair (from `bottleneck-coordinator keygen`).")
    public var curveKey: String?

    @Option(help: "The coordinator's public key (its .pub file), with --curve-key.")
    public var serverKey: String?

    public init() {}

    public func validate() throws {
        if !blasSelfcheck {
            guard connect.hasPrefix("tcp://") || connect.hasPrefix("ipc://") else {
                throw ValidationError("--connect must be tcp://HOST:PORT or ipc://PATH, not \(connect)")
            }
        }
        if let threads, threads < 1 { throw ValidationError("--threads must be at least 1") }
        if giveUpAfter <= 0 { throw ValidationError("--give-up-after must be positive") }
        if (curveKey == nil) != (serverKey == nil) { throw ValidationError("--curve-key and --server-key go together") }
    }

    /// Runs the self-check (with `--blas-selfcheck`) or a worker session, and ends the process.
    ///
    /// `selfCheckArguments` make this executable run the self-check in the child that `BLASKernelChoice`
    /// starts. `shardDelayMilliseconds` slows every shard down, `exitAfterChunks` kills the
    /// process on its this-many-th fine-tuning chunk (developer tool only).
    ///
    /// `withheldCPUFlags` are /proc/cpuinfo flags this process treats as missing (developer tool only: it lets a
    /// test see the refusal of bf16 on a CPU that has the flag).
    public func run(
        selfCheckArguments: [String], shardDelayMilliseconds: Int = 0, exitAfterChunks: Int? = nil,
        forgetImagesAfterChunks: Int? = nil, withheldCPUFlags: [String] = []
    ) throws -> Never {
        if blasSelfcheck { throw ExitCode(BLASKernelChoice.runSelfCheck()) }
        if precision == .bf16 {
            // Refused before connecting, naming the flag; never a fall-back to fp32.
            let missing =
                CPUFeatures.missingForBF16 + withheldCPUFlags.filter { !CPUFeatures.missingForBF16.contains($0) }
            if !missing.isEmpty { throw MissingCPUFeature(missingFlags: missing) }
        }
        common.bootstrapLogging()
        let logger = Logger(label: "bottleneck.worker")
        BLASKernelChoice.apply(mode: blasCoretype, selfCheckArguments: selfCheckArguments, logger: logger)
        var security = SocketSecurity.plaintext
        if let curveKey, let serverKey {
            security = try .curveClient(keyFile: curveKey, serverKeyFile: serverKey)
        }
        var configuration = WorkerConfiguration(
            endpoint: connect, threads: threads, persistent: persistent, cacheDirectory: cacheDir,
            giveUpAfter: giveUpAfter, parentPID: parentPid, name: name, shardDelayMilliseconds: shardDelayMilliseconds,
            exitAfterChunks: exitAfterChunks)
        configuration.forgetImagesAfterChunks = forgetImagesAfterChunks
        configuration.security = security
        configuration.precision = precision
        let session = WorkerSession(configuration: configuration, logger: logger)
        // SIGTERM (and SIGINT): leave the job cleanly; a second one ends the process at once.
        let stopRequest = session.stopRequest
        let signals = InterruptSignals { stopRequest.request(signal: $0) }
        let outcome = session.run()
        signals.cancel()
        switch outcome {
        case .jobEnded: logger.info("job finished; exiting")
        case .gaveUp(let why), .failed(let why), .refused(let why, remedy: nil): logger.error("\(why)")
        case .refused(let why, let remedy?): logger.error("\(why) (\(CommandLineRunner.hint(for: remedy)))")
        case .parentGone: logger.error("the coordinator that started this worker is gone; exiting")
        case .stopped(let signal):
            logger.notice("stopped by \(InterruptSignals.name(signal)); the coordinator hands its shards to others")
        }
        // Leave without running exit-time destructors: OpenBLAS' would free its buffers while a compute
        // thread of an abandoned shard may still be inside sgemm (seen as a segfault after the last log line).
        fflush(nil)
        _exit(outcome.exitCode)
    }
}

// `--precision`: a fixed set of values, parsed as the enum (`--help` lists them).
extension ConvPrecision: ExpressibleByArgument {}
