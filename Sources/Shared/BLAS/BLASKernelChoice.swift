import Foundation
import Logging

#if canImport(Glibc)
    import Glibc
#endif

/// Chooses OpenBLAS' kernel set for this process before any matrix product runs (a worker, and the
/// coordinator's train, evaluate and predict).
///
/// OpenBLAS picks its kernels when the library loads (from the CPU or `OPENBLAS_CORETYPE`), so a different set
/// needs a new process image: the process sets `OPENBLAS_CORETYPE` and re-executes itself (/proc/self/exe, same
/// pid and arguments), marking the environment with `BOTTLENECK_BLAS_CHOSEN` so that it happens once.
///
/// Modes (the worker's kernel-set option, default `$BOTTLENECK_OPENBLAS_CORETYPE`, else `auto`):
/// - `auto`: on a CPU with AVX-512 F/BW/VL/DQ whose current set is not an AVX-512 one, runs
///   itself with `selfCheckArguments` (e.g. `bottleneck-worker --blas-selfcheck`) and
///   `OPENBLAS_CORETYPE=SkylakeX` (sgemm on VGG16's shapes against a float64 reference); only if that child
///   passes and reports the SkylakeX kernels does the process switch.
///   Otherwise it keeps the set it has.
/// - `keep`: leaves OpenBLAS' own choice (and any `OPENBLAS_CORETYPE` in the environment) alone.
/// - any other value, e.g. `Haswell` or `SkylakeX`: that set, without a check.
///
/// Features are bit-identical only between workers running the same kernel set; the worker logs its set.
public enum BLASKernelChoice {
    static let candidate = "SkylakeX"
    static let chosenMarker = "BOTTLENECK_BLAS_CHOSEN"
    static let overrideVariable = "BOTTLENECK_OPENBLAS_CORETYPE"

    /// The mode from the environment when no option is given.
    public static var defaultMode: String {
        let value = ProcessInfo.processInfo.environment[overrideVariable] ?? ""
        return value.isEmpty ? "auto" : value
    }

    /// Re-executes this process with another kernel set when `mode` asks for one; returns when it keeps the
    /// current one (after logging it). Returns without effect after a re-execution. `selfCheckArguments` make
    /// this executable run `runSelfCheck()`.
    public static func apply(mode: String, selfCheckArguments: [String], logger: Logger) {
        let environment = ProcessInfo.processInfo.environment
        let current = BLASKernels.coreName
        if environment[chosenMarker] != nil {
            logger.info("OpenBLAS kernels: \(current) (\(environment[chosenMarker] ?? ""))")
            return
        }
        let target: String
        let reason: String
        switch mode.lowercased() {
        case "keep":
            logger.info("OpenBLAS kernels: \(current) (kept: kernel-set mode keep)")
            return
        case "auto":
            guard !BLASKernels.avx512CoreNames.contains(current) else {
                logger.info("OpenBLAS kernels: \(current) (already AVX-512)")
                return
            }
            guard BLASKernels.cpuHasAVX512ForSkylakeX else {
                logger.info("OpenBLAS kernels: \(current) (no AVX-512 on this CPU)")
                return
            }
            if let failure = selfCheckFails(coreType: candidate, arguments: selfCheckArguments) {
                logger.warning(
                    "OpenBLAS kernels: keeping \(current); the \(candidate) kernels failed a self-check: \(failure)")
                return
            }
            target = candidate
            reason = "auto: self-check passed; BOTTLENECK_OPENBLAS_CORETYPE=keep to disable"
        default:
            target = mode
            reason = "chosen by the kernel-set mode or BOTTLENECK_OPENBLAS_CORETYPE"
        }
        if target.lowercased() == current.lowercased() {
            logger.info("OpenBLAS kernels: \(current)")
            return
        }
        setenv("OPENBLAS_CORETYPE", target, 1)
        setenv(chosenMarker, reason, 1)
        reexec(logger: logger)
        // Only reached when exec failed: the process still runs the old kernels.
        unsetenv(chosenMarker)
        logger.warning(
            "OpenBLAS kernels: \(current) (could not re-execute with \(target): \(String(cString: strerror(errno))))")
    }

    /// nil when this executable's self-check (`arguments`) passes under `OPENBLAS_CORETYPE=coreType` and reports
    /// that set, else why not.
    private static func selfCheckFails(coreType: String, arguments: [String]) -> String? {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/proc/self/exe")
        process.arguments = arguments
        var environment = ProcessInfo.processInfo.environment
        environment["OPENBLAS_CORETYPE"] = coreType
        environment["OPENBLAS_NUM_THREADS"] = "1"
        process.environment = environment
        let output = Pipe()
        let errors = Pipe()
        process.standardOutput = output
        process.standardError = errors
        do { try process.run() } catch { return "cannot start the check: \(error.localizedDescription)" }
        // Drain stderr on the side so that a chatty child cannot block on a full pipe.
        let errorText = ErrorText()
        let drain = Thread { errorText.set(errors.fileHandleForReading.readDataToEndOfFile()) }
        drain.start()
        let data = output.fileHandleForReading.readDataToEndOfFile()
        process.waitUntilExit()
        errorText.wait()
        let lines = String(decoding: data, as: UTF8.self).split(separator: "\n").map(String.init)
        let last = lines.last?.trimmingCharacters(in: .whitespaces) ?? ""
        guard process.terminationReason == .exit, process.terminationStatus == 0 else {
            let why = (lines + [errorText.text]).joined(separator: " ").trimmingCharacters(in: .whitespacesAndNewlines)
            return why.isEmpty ? "exit status \(process.terminationStatus)" : why
        }
        guard last.lowercased() == "\(coreType.lowercased()) ok" else {
            return "OpenBLAS ran other kernels: \(last)"
        }
        return nil
    }

    private static func reexec(logger: Logger) {
        let arguments = CommandLine.arguments
        var cArguments: [UnsafeMutablePointer<CChar>?] = arguments.map { strdup($0) }
        cArguments.append(nil)
        execv("/proc/self/exe", cArguments)
    }

    /// The self-check: prints "<core name> ok" and returns 0, or prints the failure and returns 1.
    public static func runSelfCheck() -> Int32 {
        if let failure = BLASKernels.selfCheck() {
            print(failure)
            return 1
        }
        print("\(BLASKernels.coreName) ok")
        return 0
    }
}

/// Standard error of the self-check child, read on another thread; guarded by `condition`, hence thread-safe.
private final class ErrorText: @unchecked Sendable {
    private let condition = NSCondition()
    private var value: String?

    func set(_ data: Data) {
        condition.lock()
        value = String(decoding: data, as: UTF8.self)
        condition.broadcast()
        condition.unlock()
    }

    func wait() {
        condition.lock()
        while value == nil { condition.wait() }
        condition.unlock()
    }

    var text: String {
        condition.lock()
        defer { condition.unlock() }
        return value ?? ""
    }
}
