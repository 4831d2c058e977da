import ArgumentParser
import CLI
import Foundation
import Logging
import Provenance
import Synchronization
import Wire

/// `bottleneck-loadgen`: many simulated workers in one process, for load tests of a real coordinator.
///
/// A developer tool, not part of the product. Each simulated worker has its own DEALER socket and speaks the real
/// protocol; a few threads serve all the sockets (one `zmq_poll` per thread over its share).
@main
struct BottleneckLoadGen: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bottleneck-loadgen",
        abstract: "Simulated workers for load tests of bottleneck-coordinator extract (developer tool).",
        subcommands: [WorkersCommand.self, CheckCommand.self], defaultSubcommand: WorkersCommand.self)

    /// Runs the command line (open-file limit raised, errors mapped to exit statuses; see `CommandLineRunner`).
    static func main() { CommandLineRunner.main(Self.self) }
}

/// `bottleneck-loadgen workers` (the default): the simulated workers.
struct WorkersCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "workers",
        abstract: "Run simulated workers against a coordinator.",
        discussion: """
            Each simulated worker connects with its own socket, says hello with a compute profile of its own \
            ("loadgen"), asks for shards and answers each after count / --images-per-second seconds with features \
            of the job's shape whose every value, for the image at split index i, is Float(i % 4096). It computes \
            nothing and reads no image. Chaos: --kill-fraction of the workers die (socket closed, no goodbye) \
            holding a shard; --stall-fraction hang for --stall-seconds holding a shard; --duplicate-results sends \
            every result again later. Prints a JSON line when the first shard of each job arrives \
            (event first_shard, with the wall-clock time) and one summary line when every worker has ended, died \
            or given up. \
            Exit status 0, 1 when a worker was rejected, 2 usage.
            """)

    @Option(help: "The coordinator's endpoint, e.g. tcp://127.0.0.1:5555.")
    var connect: String

    @Option(help: "Simulated workers.")
    var workers = 100

    @Option(help: "Images per second each simulated worker computes.")
    var imagesPerSecond = 20.0

    @Option(help: "Shards a simulated worker holds at a time (a real worker: its threads + 1).")
    var slots = 2

    @Option(help: "Threads that serve the sockets.")
    var threads = 2

    @Option(help: "Fraction of the workers that die holding a shard (like kill -9).")
    var killFraction = 0.0

    @Option(help: "Fraction of the workers that hang for --stall-seconds holding a shard.")
    var stallFraction = 0.0

    @Option(help: "How long a stalled worker hangs, seconds.")
    var stallSeconds = 15.0

    @Flag(help: "Send every result a second time, --duplicate-delay seconds later.")
    var duplicateResults = false

    @Option(help: "Seconds between a result and its duplicate.")
    var duplicateDelay = 1.0

    @Option(help: "Seed of the draws of who dies or stalls, and when.")
    var seed: UInt64 = 1

    @Option(help: "Seconds without a word from the coordinator after which the workers give up.")
    var giveUpAfter = 120.0

    @Option(help: "The workers' CURVE key pair (from `bottleneck-coordinator keygen`), with --server-key.")
    var curveKey: String?

    @Option(help: "The coordinator's public key (its .pub file), with --curve-key.")
    var serverKey: String?

    @OptionGroup var common: CommonOptions

    func validate() throws {
        if workers < 1 { throw ValidationError("--workers must be at least 1") }
        if imagesPerSecond <= 0 { throw ValidationError("--images-per-second must be positive") }
        if slots < 1 { throw ValidationError("--slots must be at least 1") }
        if threads < 1 { throw ValidationError("--threads must be at least 1") }
        if !(0...1).contains(killFraction) || !(0...1).contains(stallFraction) {
            throw ValidationError("--kill-fraction and --stall-fraction must be within 0...1")
        }
        if (curveKey == nil) != (serverKey == nil) { throw ValidationError("--curve-key and --server-key go together") }
    }

    func run() throws {
        common.bootstrapLogging()
        let logger = Logger(label: "bottleneck.loadgen")
        var security = SocketSecurity.plaintext
        if let curveKey, let serverKey {
            security = try .curveClient(keyFile: curveKey, serverKeyFile: serverKey)
        }
        let settings = SimulationSettings(
            endpoint: connect, imagesPerSecond: imagesPerSecond, slots: slots, stallSeconds: stallSeconds,
            duplicateResults: duplicateResults, duplicateDelay: duplicateDelay, security: security,
            profile: ComputeProfile(
                kernelSet: "loadgen", grouping: 1, precision: "fp32", buildVersion: BuildVersion.current,
                libraries: [:]), events: LoadEvents())
        var random = SplitMix64(seed: seed)
        let misbehaviours = (0..<workers).map { _ -> Misbehaviour in
            var misbehaviour = Misbehaviour()
            let draw = random.nextUnit()
            if draw < killFraction {
                misbehaviour.dieAtShard = 1 + Int(random.next() % 4)
            } else if draw < killFraction + stallFraction {
                misbehaviour.stallAtShard = 1 + Int(random.next() % 4)
            }
            return misbehaviour
        }
        logger.info(
            "\(workers) simulated workers on \(threads) threads → \(connect), \(imagesPerSecond) images/s each")
        let totals = SharedTotals()
        let started = monotonicSeconds()
        let threadCount = min(threads, workers)
        let finished = DispatchGroup()
        for thread in 0..<threadCount {
            let mine = Array(stride(from: thread, to: workers, by: threadCount))
            let chosen = mine.map { misbehaviours[$0] }
            finished.enter()
            let body = PollingThread(
                indices: mine, misbehaviours: chosen, settings: settings, giveUpAfter: giveUpAfter)
            Thread.detachNewThread {
                let outcome = body.run()
                totals.value.withLock { $0.add(outcome) }
                finished.leave()
            }
        }
        finished.wait()
        let total = totals.value.withLock { $0 }
        let seconds = monotonicSeconds() - started
        for error in total.errors.prefix(5) { logger.error("\(error)") }
        let summary: [String: Any] = [
            "event": "loadgen_summary", "workers": workers, "ended": total.ended, "died": total.died,
            "stalled": misbehaviours.filter { $0.stallAtShard != nil }.count, "gave_up": total.gaveUp,
            "rejected": total.rejections.count, "shards_received": total.shardsReceived,
            "results_sent": total.resultsSent, "duplicates_sent": total.duplicatesSent,
            "images_computed": total.imagesComputed, "seconds": (seconds * 100).rounded() / 100,
            "longest_turn_seconds": (total.longestTurn * 1000).rounded() / 1000,
            "cpu_seconds": (processCPUSeconds() * 100).rounded() / 100,
        ]
        let data = try JSONSerialization.data(withJSONObject: summary, options: [.sortedKeys])
        emit(String(decoding: data, as: UTF8.self))
        if let rejection = total.rejections.first {
            throw ReportedFailure("the coordinator rejected \(total.rejections.count) worker(s): \(rejection)")
        }
    }
}

/// The threads' totals, added up under a lock.
final class SharedTotals: Sendable {
    let value = Mutex(LoadTotals())
}

/// What one polling thread's workers did.
struct LoadTotals: Sendable {
    var ended = 0
    var died = 0
    var gaveUp = 0
    var shardsReceived = 0
    var resultsSent = 0
    var duplicatesSent = 0
    var imagesComputed = 0
    var rejections: [String] = []
    var errors: [String] = []
    /// The longest time between two turns of a polling thread (a turn serves all of its sockets), seconds.
    var longestTurn = 0.0

    mutating func add(_ other: LoadTotals) {
        ended += other.ended
        died += other.died
        gaveUp += other.gaveUp
        shardsReceived += other.shardsReceived
        resultsSent += other.resultsSent
        duplicatesSent += other.duplicatesSent
        imagesComputed += other.imagesComputed
        longestTurn = max(longestTurn, other.longestTurn)
        rejections += other.rejections
        errors += other.errors
    }
}

/// One thread's share of the simulated workers: their sockets are made, polled and closed on that thread.
struct PollingThread: Sendable {
    var indices: [Int]
    var misbehaviours: [Misbehaviour]
    var settings: SimulationSettings
    var giveUpAfter: Double

    func run() -> LoadTotals {
        var totals = LoadTotals()
        let context: WireContext
        var workers: [SimulatedWorker] = []
        do {
            context = try WireContext()
            for (index, misbehaviour) in zip(indices, misbehaviours) {
                workers.append(
                    try SimulatedWorker(index: index, settings: settings, misbehaviour: misbehaviour, context: context))
            }
        } catch {
            totals.errors.append("cannot set up the simulated workers: \(error)")
            for worker in workers { worker.close() }
            return totals
        }
        defer {
            for worker in workers { worker.close() }
            context.terminate()
        }
        let start = monotonicSeconds()
        for worker in workers { worker.start(now: start) }
        // Until the coordinator's first welcome, the heartbeat interval is assumed to be 1 s.
        let heartbeatInterval = 1.0
        var gaveUp = false
        var previous = start
        while true {
            let now = monotonicSeconds()
            totals.longestTurn = max(totals.longestTurn, now - previous)
            previous = now
            var next = now + 0.05
            var active = false
            var lastHeard = -Double.infinity
            for worker in workers where worker.isActive {
                worker.tick(now: now)
                active = active || worker.isActive
                next = min(next, worker.nextEvent(heartbeatInterval: heartbeatInterval))
                lastHeard = max(lastHeard, worker.lastHeard)
            }
            if !active { break }
            if now - lastHeard > giveUpAfter {
                gaveUp = true
                break
            }
            let listening = workers.compactMap { worker in worker.isListening ? worker.socket.map { (worker, $0) } : nil
            }
            let sockets = listening.map(\.1)
            let timeout = max(0, min(50, Int(((next - now) * 1000).rounded(.up))))
            let readable: [Int]
            do { readable = try WireSocket.readable(sockets, timeoutMilliseconds: timeout) } catch {
                totals.errors.append("polling: \(error)")
                break
            }
            let after = monotonicSeconds()
            for index in readable { listening[index].0.receive(now: after) }
        }
        for worker in workers {
            totals.shardsReceived += worker.shardsReceived
            totals.resultsSent += worker.resultsSent
            totals.duplicatesSent += worker.duplicatesSent
            totals.imagesComputed += worker.imagesComputed
            switch worker.phase {
            case .dead: totals.died += 1
            case .finished:
                if let rejection = worker.rejection { totals.rejections.append(rejection) } else { totals.ended += 1 }
            default: if gaveUp { totals.gaveUp += 1 }
            }
        }
        return totals
    }
}

/// SplitMix64: a small, seedable generator (the same draws for the same seed on every machine).
struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// A draw in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

/// This process's user + system CPU seconds so far, all threads (ZeroMQ's I/O threads included).
func processCPUSeconds() -> Double {
    var usage = rusage()
    guard getrusage(__rusage_who_t(RUSAGE_SELF.rawValue), &usage) == 0 else { return 0 }
    return Double(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec)
        + Double(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6
}
