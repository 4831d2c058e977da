import ArgumentParser
import BLAS
import Foundation

/// `bottleneck-dev fma-peak`: this machine's measured fp32 FMA peak, on one thread and on all cores.
struct FMAPeakCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "fma-peak",
        abstract: "Measured AVX-512 fp32 FMA peak (GFLOP/s) on 1 and on N threads.",
        discussion: """
            Method: each thread runs a C kernel (CShims, fma_peak.c) of nothing but vfmadd on \
            \(FMAPeak.chains) independent 16-lane zmm accumulator chains (enough to hide the FMA latency on \
            every port), no memory traffic in the loop; 2 flops per lane per FMA. The N threads start \
            together; a round's time is from the start to the last thread's end (wall clock, monotonic). \
            The figure is the best of the rounds. On a CPU with avx512_bf16 the same is done with \
            vdpbf16ps (bf16-dot-peak: 2 products and 2 additions per lane per instruction), the ceiling of \
            the bf16 product. Valid only on an otherwise idle machine: the share of the \
            CPUs' time other processes used meanwhile (/proc/stat minus this process) is printed with it.
            """)

    @Option(help: "Iterations per thread and round (each: \(FMAPeak.chains) FMAs of 16 lanes).")
    var iterations: Int = 50_000_000

    @Option(help: "Rounds per thread count; the best is reported.")
    var rounds: Int = 5

    @Option(help: "Threads of the multi-thread measurement (default: the processors available).")
    var threads: Int = ProcessInfo.processInfo.activeProcessorCount

    func run() throws {
        guard CPUFeatures.hasAVX512F else {
            throw ValidationError("this CPU lacks the CPU flag avx512f, which the FMA kernel needs")
        }
        let start = MachineLoad()
        let counts = Array(Set([1, max(1, threads)])).sorted()
        for count in counts {
            report("fma-peak", threads: count, flopsPerIteration: FMAPeak.flopsPerIteration) {
                _ = FMAPeak.run(iterations: $0)
            }
        }
        if CPUFeatures.hasAVX512BF16 {
            for count in counts {
                report("bf16-dot-peak", threads: count, flopsPerIteration: FMAPeak.bf16FlopsPerIteration) {
                    _ = try? FMAPeak.runBF16(iterations: $0)
                }
            }
        }
        print(MachineLoad.report(since: start))
    }

    private func report(
        _ name: String, threads count: Int, flopsPerIteration: Double, kernel: @escaping @Sendable (Int) -> Void
    ) {
        let seconds = (0..<max(1, rounds)).map { _ in time(threads: count, kernel: kernel) }.min()!
        let gflops = Double(count) * Double(iterations) * flopsPerIteration / seconds / 1e9
        print(
            String(
                format: "%@: %d thread%@: %.1f GFLOP/s (%.1f per thread; best of %d rounds, %.3f s)", name, count,
                count == 1 ? "" : "s", gflops, gflops / Double(count), max(1, rounds), seconds))
    }

    /// Seconds from releasing `threads` threads to the end of the last one.
    private func time(threads: Int, kernel: @escaping @Sendable (Int) -> Void) -> Double {
        let ready = DispatchSemaphore(value: 0)
        let go = DispatchSemaphore(value: 0)
        let done = DispatchGroup()
        let iterations = self.iterations
        for _ in 0..<threads {
            done.enter()
            Thread {
                ready.signal()
                go.wait()
                kernel(iterations)
                done.leave()
            }.start()
        }
        for _ in 0..<threads { ready.wait() }
        let start = DispatchTime.now().uptimeNanoseconds
        for _ in 0..<threads { go.signal() }
        done.wait()
        return Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
    }
}
