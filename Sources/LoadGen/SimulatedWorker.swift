import CLI
import FileIntegrity
import Foundation
import Provenance
import Synchronization
import Wire

/// What a simulated worker does wrong, drawn once at start from the seed.
struct Misbehaviour: Sendable {
    /// Dies (its socket closed without a goodbye, like kill -9) on receiving its n-th shard, holding it.
    var dieAtShard: Int?
    /// Hangs (reads nothing, sends nothing) for `stallSeconds` on receiving its n-th shard, then carries on.
    var stallAtShard: Int?
}

/// The settings every simulated worker shares.
struct SimulationSettings: Sendable {
    var endpoint: String
    var imagesPerSecond: Double
    /// Shards a worker holds at a time (a real worker: its threads + 1).
    var slots: Int
    var stallSeconds: Double
    /// Sends every result a second time, `duplicateDelay` seconds after the first.
    var duplicateResults: Bool
    var duplicateDelay: Double
    var security: SocketSecurity
    var profile: ComputeProfile
    var events: LoadEvents
    var rowHashes = RowHashes()
}

/// The SHA-256 a plain-mode result carries of its rows (`ShardResult.rowsSHA256`), shared by every simulated
/// worker of the process. Rows of `Float(i % 4096)` depend only on the shard's start modulo 4096, its size and
/// its skipped offsets, so each such pattern is hashed once (`ShardRows.sha256Hex` of the very bytes sent);
/// the simulated workers stand for machines of their own, where the hash costs its worker about 2 ms per 3.2 MB,
/// not the coordinator's cores. The coordinator checks it whenever the part is read.
final class RowHashes: Sendable {
    private struct Pattern: Hashable {
        let phase: Int
        let count: Int
        let featureCount: Int
        let skipped: [Int]
    }
    private let known = Mutex([Pattern: String]())

    func sha256(of rows: UnsafeRawBufferPointer, start: Int, count: Int, featureCount: Int, skipped: Set<Int>)
        -> String
    {
        let pattern = Pattern(phase: start % 4096, count: count, featureCount: featureCount, skipped: skipped.sorted())
        if let hash = known.withLock({ $0[pattern] }) { return hash }
        let hash = ShardRows.sha256Hex(rows, rowBytes: featureCount * 4, count: count, skipped: skipped)
        known.withLock { $0[pattern] = hash }
        return hash
    }
}

/// Lines the load generator prints while it runs: the first shard any worker receives of each job (a
/// coordinator's run), with the wall-clock time, so a benchmark can time a resume to its first new shard.
final class LoadEvents: Sendable {
    private let jobsSeen = Mutex(Set<String>())

    func shardReceived(job: String) {
        let first = jobsSeen.withLock { $0.insert(job).inserted }
        guard first else { return }
        emit(
            "{\"event\":\"first_shard\",\"job\":\"\(job)\",\"unix_time\":"
                + String(format: "%.3f", Date().timeIntervalSince1970) + "}")
    }
}

/// Monotonic seconds.
func monotonicSeconds() -> Double {
    Double(DispatchTime.now().uptimeNanoseconds) / 1e9
}

/// One simulated worker: the protocol of `bottleneck-worker` (hello with a compute profile, request with its
/// status, results, heartbeats, reset → hello again), computing nothing: a shard takes `count / imagesPerSecond`
/// seconds and its features are `Float(i % 4096)` for every value of the image at split index i.
///
/// Owned by one polling thread, like its socket.
final class SimulatedWorker {
    enum Phase: Equatable {
        case registering, working, stalled(until: Double), dead, finished
    }

    struct Held {
        var assignment: ShardAssignment
        var skipped: [SkippedImage]
        var readyAt: Double
    }

    let index: Int
    let name: String
    private let settings: SimulationSettings
    private let misbehaviour: Misbehaviour
    private(set) var socket: WireSocket?
    private(set) var phase = Phase.registering
    private var job: JobSpec?
    private var lastShardSequence = 0
    private var held: [Held] = []
    private var busyUntil = 0.0
    private var lastSent = 0.0
    private var helloSentAt = 0.0
    private var pendingDuplicates: [(at: Double, head: [[UInt8]], features: WireBuffer)] = []
    private(set) var shardsReceived = 0
    private(set) var resultsSent = 0
    private(set) var duplicatesSent = 0
    private(set) var imagesComputed = 0
    private(set) var rejection: String?
    /// When the last message from the coordinator arrived.
    private(set) var lastHeard: Double

    init(index: Int, settings: SimulationSettings, misbehaviour: Misbehaviour, context: WireContext) throws {
        self.index = index
        self.settings = settings
        self.misbehaviour = misbehaviour
        name = "loadgen-\(getpid())-\(index)"
        var options = SocketOptions()
        options.security = settings.security
        let socket = try WireSocket(context: context, kind: .dealer, options: options)
        try socket.connect(settings.endpoint)
        self.socket = socket
        lastHeard = monotonicSeconds()
    }

    var isActive: Bool { phase != .dead && phase != .finished }
    /// Whether its socket is read now (a hung worker reads nothing).
    var isListening: Bool {
        if case .stalled = phase { return false }
        return isActive
    }

    /// The next time `tick` has something to do.
    func nextEvent(heartbeatInterval: Double) -> Double {
        switch phase {
        case .dead, .finished: return .infinity
        case .stalled(let until): return until
        case .registering: return helloSentAt + 1
        case .working:
            var next = lastSent + heartbeatInterval
            if let first = held.first { next = min(next, first.readyAt) }
            if let duplicate = pendingDuplicates.first { next = min(next, duplicate.at) }
            return next
        }
    }

    private var status: WorkerStatus {
        WorkerStatus(
            lastShardSequence: lastShardSequence, held: held.map(\.assignment.shardID),
            free: max(0, settings.slots - held.count))
    }

    private func send(_ message: WireMessage, now: Double) {
        send(frames: WireCodec.encode(message), now: now)
    }

    private func send(frames: [[UInt8]], now: Double) {
        guard let socket else { return }
        do {
            try socket.send(frames)
            lastSent = now
        } catch {
            // A full queue or a connection not yet up: the heartbeat or the next hello tries again.
        }
    }

    /// A result: its header frame, then its features handed to ZeroMQ without a copy.
    private func send(head: [[UInt8]], features: WireBuffer, now: Double) {
        guard let socket else { return }
        do {
            try socket.send(head, payload: features)
            lastSent = now
        } catch {
            // As above: a result lost here is the coordinator's to hand out again.
        }
    }

    func start(now: Double) { hello(now: now) }

    private func hello(now: Double) {
        held = []
        lastShardSequence = 0
        busyUntil = now
        pendingDuplicates = []
        phase = .registering
        helloSentAt = now
        send(
            .hello(
                Hello(
                    workerName: name, pid: Int(getpid()), threads: max(1, settings.slots - 1),
                    computeProfile: settings.profile)), now: now)
    }

    /// Sends what is due at `now`: finished shards, late duplicate copies, heartbeats, a repeated hello.
    func tick(now: Double) {
        switch phase {
        case .dead, .finished: return
        case .stalled(let until):
            guard now >= until else { return }
            phase = job == nil ? .registering : .working
        case .registering:
            // No welcome yet (the coordinator is not up, or forgot this worker): ask again every second.
            if now - helloSentAt >= 1 { hello(now: now) }
            return
        case .working: break
        }
        guard let job else { return }
        while let first = held.first, first.readyAt <= now {
            held.removeFirst()
            finish(first, job: job, now: now)
        }
        while let duplicate = pendingDuplicates.first, duplicate.at <= now {
            pendingDuplicates.removeFirst()
            send(head: duplicate.head, features: duplicate.features, now: now)
            duplicatesSent += 1
        }
        if now - lastSent >= Double(job.heartbeatIntervalMilliseconds) / 1000 {
            send(.heartbeat(Heartbeat(status: status)), now: now)
        }
    }

    private func finish(_ shard: Held, job: JobSpec, now: Double) {
        let assignment = shard.assignment
        let count = assignment.filenames.count
        let skippedOffsets = Set(shard.skipped.map(\.offset))
        let rows = count - skippedOffsets.count
        let featureCount = job.featureCount
        // With a part range (shared filesystem) every image has its row, zeros for a skipped one, written in
        // place as a real worker does; otherwise only the computed rows travel.
        let inPlace = assignment.part != nil
        // Written once, in place (no zeroing first, no copy into ZeroMQ: the buffer itself goes out).
        let bytes = WireBuffer(count: (inPlace ? count : rows) * featureCount * 4)
        bytes.withUnsafeMutableBytes { raw in
            let values = raw.bindMemory(to: Float.self)
            var row = 0
            for offset in 0..<count {
                let skip = skippedOffsets.contains(offset)
                if skip && !inPlace { continue }
                let value = skip ? 0 : Float((assignment.start + offset) % 4096)
                let at = inPlace ? offset : row
                UnsafeMutableBufferPointer(rebasing: values[(at * featureCount)..<((at + 1) * featureCount)])
                    .update(repeating: value)
                row += 1
            }
        }
        var result = ShardResult(
            jobID: job.jobID, shardID: assignment.shardID, attempt: assignment.attempt, start: assignment.start,
            count: count, featureCount: featureCount, skipped: shard.skipped,
            inputs: assignment.paths.map { Array(repeating: nil, count: $0.count) })
        if let part = assignment.part {
            guard part.size == bytes.count,
                let sha256 = try? bytes.withUnsafeBytes({ try InPlaceWrite.write($0, to: part.path, at: part.offset) })
            else {
                // As a real worker that cannot write its part: leave, so the coordinator hands the shard on.
                send(.goodbye(Goodbye(reason: "cannot write shard \(assignment.shardID) into \(part.path)")), now: now)
                die()
                return
            }
            result.written = PartRange(path: part.path, offset: part.offset, size: part.size, sha256: sha256)
        } else {
            result.rowsSHA256 = bytes.withUnsafeBytes {
                settings.rowHashes.sha256(
                    of: $0, start: assignment.start, count: count, featureCount: featureCount, skipped: skippedOffsets)
            }
        }
        // The header alone (an empty feature frame dropped), then the features: none when written in place.
        let head = Array(WireCodec.encode(.result(result, features: [])).dropLast())
        let features = inPlace ? WireBuffer(count: 0) : bytes
        send(head: head, features: features, now: now)
        resultsSent += 1
        imagesComputed += rows
        if settings.duplicateResults {
            pendingDuplicates.append((now + settings.duplicateDelay, head, features))
        }
        send(.request(ShardRequest(jobID: job.jobID, status: status)), now: now)
    }

    /// Reads every waiting message and answers it.
    func receive(now: Double) {
        while isListening, let socket, let frames = try? socket.receive(maxFrames: 8192) {
            lastHeard = now
            guard let message = try? WireCodec.decode(frames) else { continue }
            handle(message, now: now)
        }
    }

    private func handle(_ message: WireMessage, now: Double) {
        switch message {
        case .welcome(let welcome):
            job = welcome.job
            phase = .working
            busyUntil = now
            send(.request(ShardRequest(jobID: welcome.job.jobID, status: status)), now: now)
        case .shard(let assignment, let images):
            guard phase == .working, let job, assignment.jobID == job.jobID else { return }
            shardsReceived += 1
            settings.events.shardReceived(job: job.jobID)
            if misbehaviour.dieAtShard == shardsReceived {
                die()
                return
            }
            lastShardSequence = max(lastShardSequence, assignment.sequence)
            // In plain mode a missing file comes as an empty frame: a real worker cannot decode it.
            let skipped =
                assignment.paths == nil
                ? images.indices.filter { images[$0].isEmpty }.map { SkippedImage(offset: $0, reason: "missing") }
                : []
            let readyAt = max(now, busyUntil) + Double(assignment.filenames.count) / settings.imagesPerSecond
            busyUntil = readyAt
            held.append(Held(assignment: assignment, skipped: skipped, readyAt: readyAt))
            if misbehaviour.stallAtShard == shardsReceived {
                phase = .stalled(until: now + settings.stallSeconds)
            }
        case .heartbeat, .weights:
            break
        case .reset:
            hello(now: now)
        case .end:
            phase = .finished
            close()
        case .reject(let rejection):
            self.rejection = rejection.reason
            phase = .finished
            close()
        default:
            break  // worker-to-coordinator messages, and fine-tuning ones: not part of an extraction
        }
    }

    /// Like kill -9: the socket goes without a goodbye; whatever it held is lost.
    private func die() {
        phase = .dead
        held = []
        pendingDuplicates = []
        close()
    }

    func close() {
        socket?.close()
        socket = nil
    }
}
