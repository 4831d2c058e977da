import Foundation
import Provenance
import Storage
import TestSupport
import Testing
import VGG16
import Wire

#if canImport(Glibc)
    import Glibc
#endif

/// A real coordinator under attack from peers on its TCP port: garbage bytes, malformed and out-of-order
/// messages, another protocol version, oversized frames, a worker that takes a shard and vanishes. The job must
/// finish with exactly the output of an undisturbed run.
@Suite("Hostile peers", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct HostilePeerTests {
    struct Fixture {
        let directory: String
        let train: String
        let weights: String

        init() throws {
            directory = NSTemporaryDirectory() + "bottleneck-hostile-\(UUID().uuidString.prefix(8))"
            train = directory + "/train"
            weights = directory + "/weights.h5"
            for (c, name) in ["ant", "bee"].enumerated() {
                try FileManager.default.createDirectory(atPath: train + "/" + name, withIntermediateDirectories: true)
                for i in 0..<10 {
                    let rgb = (0..<(36 * 36 * 3)).map { UInt8(truncatingIfNeeded: $0 &* (i + 2) &+ c * 91) }
                    try writePPM(train + "/\(name)/\(i).ppm", width: 36, height: 36, rgb: rgb)
                }
            }
            try VGG16Weights.generated(widths: [4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], seed: 3)
                .writeOfficialLayout(to: weights)
        }

        func arguments(_ output: String, _ extra: [String]) -> [String] {
            [
                "extract", "--train", train, "--weights", weights, "--output", directory + "/" + output,
                "--image-size", "32", "--shard-size", "2", "--cache-dir", directory + "/cache",
            ] + extra
        }

        func snapshot(_ output: String) throws -> [String] {
            let split = try FeatureFile.open(directory + "/" + output).split("train")
            return [
                "\(try split.readFeatures(rows: 0..<split.count))", "\(try split.labels())", "\(try split.filenames())",
            ]
        }
    }

    /// Opens a raw TCP connection and writes `bytes` (then closes).
    private func sendRaw(_ bytes: [UInt8], port: Int) {
        let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        defer { close(fd) }
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_addr.s_addr = inet_addr("127.0.0.1")
        address.sin_port = UInt16(port).bigEndian
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size))
            }
        }
        guard connected == 0 else { return }
        _ = bytes.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        usleep(50_000)
    }

    private func receive(_ socket: WireSocket, timeout: Double) throws -> WireMessage? {
        let deadline = Date().addingTimeInterval(timeout)
        while Date() < deadline {
            if try socket.waitReadable(timeoutMilliseconds: 50), let frames = try socket.receive() {
                if let message = try? WireCodec.decode(frames) { return message }
            }
        }
        return nil
    }

    @Test("garbage, malformed and out-of-order messages are dropped; the output is identical")
    func hostilePeers() throws {
        let fixture = try Fixture()
        defer { try? FileManager.default.removeItem(atPath: fixture.directory) }
        let reference = try ChildProcess(
            BuiltExecutables.coordinator, fixture.arguments("reference.h5", ["--workers", "1"]),
            logDirectory: fixture.directory, label: "reference")
        #expect(reference.wait(timeout: 120) == 0, "\(reference.stderr)")

        let port = freeTCPPort()
        let slowWorker = try BuiltExecutables.slowWorkerScript(delayMilliseconds: 150, in: fixture.directory)
        let coordinator = try ChildProcess(
            BuiltExecutables.coordinator,
            fixture.arguments(
                "out.h5", ["--workers", "1", "--bind", "tcp://127.0.0.1:\(port)", "--worker-timeout", "2"]),
            logDirectory: fixture.directory, label: "coordinator", environment: ["BOTTLENECK_WORKER": slowWorker])
        #expect(coordinator.waitForStderr("listening for workers", timeout: 30))
        let endpoint = "tcp://127.0.0.1:\(port)"

        // Raw TCP garbage, and a ZMTP greeting followed by garbage.
        var seed: UInt64 = 12345
        for _ in 0..<5 {
            let garbage = (0..<4096).map { _ -> UInt8 in
                seed = seed &* 6364136223846793005 &+ 1442695040888963407
                return UInt8(truncatingIfNeeded: seed >> 33)
            }
            sendRaw(garbage, port: port)
        }
        sendRaw(
            [0xFF] + [UInt8](repeating: 0, count: 8) + [0x7F, 3, 0] + Array("NULL".utf8)
                + [UInt8](repeating: 0, count: 60), port: port)

        let context = try WireContext()
        defer { context.terminate() }

        // Malformed multipart messages and messages only a coordinator sends.
        let vandal = try WireSocket(context: context, kind: .dealer)
        defer { vandal.close() }
        try vandal.connect(endpoint)
        let sha = String(repeating: "0", count: 64)
        for frames: [[UInt8]] in [
            [[]], [[1, 2, 3]], [Array("BNWK".utf8)], [Array("BNWK".utf8) + [0, 1, 99, 0]] + [[1]],
            Array(repeating: [0], count: 5000), [Array("BNWK\u{0}\u{1}\u{3}\u{0}{}".utf8), [1, 2, 3, 4]],
            WireCodec.encode(.end(JobEnd(jobID: "x", reason: "forged"))),
            WireCodec.encode(
                .shard(
                    ShardAssignment(jobID: "x", shardID: 0, attempt: 0, sequence: 1, start: 0, filenames: ["a"]),
                    images: [[1]])),
            WireCodec.encode(.weights(WeightsTransfer(sha256: sha, size: 1), bytes: [1])),
            [[UInt8](repeating: 0x41, count: 8 << 20)],
        ] {
            try? vandal.send(frames)
        }

        // A result before any hello is out of order: the coordinator asks the peer to register.
        let stranger = try WireSocket(context: context, kind: .dealer)
        defer { stranger.close() }
        try stranger.connect(endpoint)
        try stranger.send(
            WireCodec.encode(
                .result(
                    ShardResult(jobID: "x", shardID: 0, attempt: 1, start: 0, count: 2, featureCount: 1, skipped: []),
                    features: [UInt8](repeating: 0, count: 8))))
        if case .reset? = try receive(stranger, timeout: 10) {
        } else {
            Issue.record("no reset for an unregistered peer")
        }

        // Another protocol version is refused with a message that names both versions.
        let old = try WireSocket(context: context, kind: .dealer)
        defer { old.close() }
        try old.connect(endpoint)
        try old.send(WireCodec.encode(.hello(Hello(workerName: "old", pid: 1, threads: 1)), version: 7))
        if case .reject(let rejection)? = try receive(old, timeout: 10) {
            #expect(rejection.reason.contains("version 7"))
        } else {
            Issue.record("no rejection for another protocol version")
        }

        // A hello without a compute profile is refused, and the refusal says what is missing.
        let anonymous = try WireSocket(context: context, kind: .dealer)
        defer { anonymous.close() }
        try anonymous.connect(endpoint)
        try anonymous.send(WireCodec.encode(.hello(Hello(workerName: "anonymous", pid: 1, threads: 1))))
        if case .reject(let rejection)? = try receive(anonymous, timeout: 10) {
            #expect(rejection.reason.contains("did not report its compute profile"), "\(rejection.reason)")
        } else {
            Issue.record("no rejection for a hello without a compute profile")
        }

        // A registered peer that sends nonsense results, then takes a shard and vanishes. It reports the profile
        // the local worker reported (the journal records it when that worker joins).
        let manifestPath = fixture.directory + "/out.h5.parts/manifest.json"
        var recorded: ComputeProfile?
        _ = waitUntil(timeout: 30) {
            recorded = (try? Data(contentsOf: URL(fileURLWithPath: manifestPath))).flatMap {
                try? JSONDecoder().decode(JournalManifest.self, from: $0).provenance
            }
            return recorded != nil
        }
        let provenance = try #require(recorded, "the journal records the first worker's profile")
        let profile = ComputeProfile(
            kernelSet: provenance.kernelSet, grouping: provenance.grouping, precision: provenance.precision,
            buildVersion: provenance.buildVersion, libraries: provenance.libraries.filter { $0.key != "hdf5" })
        let rogue = try WireSocket(context: context, kind: .dealer)
        defer { rogue.close() }
        try rogue.connect(endpoint)
        try rogue.send(
            WireCodec.encode(.hello(Hello(workerName: "rogue", pid: 1, threads: 1, computeProfile: profile))))
        guard case .welcome(let welcome)? = try receive(rogue, timeout: 10) else {
            Issue.record("the rogue peer was not welcomed")
            return
        }
        let job = welcome.job
        for result in [
            ShardResult(
                jobID: job.jobID, shardID: 999, attempt: 1, start: 0, count: 2, featureCount: job.featureCount,
                skipped: []),
            ShardResult(
                jobID: job.jobID, shardID: 0, attempt: 1, start: 5, count: 2, featureCount: job.featureCount,
                skipped: []),
            ShardResult(
                jobID: job.jobID, shardID: 1, attempt: 77, start: 2, count: 2, featureCount: job.featureCount,
                skipped: []),
            ShardResult(
                jobID: "other", shardID: 1, attempt: 1, start: 2, count: 2, featureCount: job.featureCount, skipped: []),
        ] {
            try rogue.send(
                WireCodec.encode(.result(result, features: [UInt8](repeating: 0xFF, count: 2 * job.featureCount * 4))))
        }
        try rogue.send(
            WireCodec.encode(
                .request(ShardRequest(jobID: job.jobID, status: WorkerStatus(lastShardSequence: 50, held: [], free: 2)))
            ))
        try rogue.send(
            WireCodec.encode(
                .request(ShardRequest(jobID: job.jobID, status: WorkerStatus(lastShardSequence: 0, held: [], free: 1))))
        )
        guard case .shard(let assignment, _)? = try receive(rogue, timeout: 10) else {
            Issue.record("the rogue peer got no shard")
            return
        }
        // Its own shard's rows (0xFF bytes: NaNs), but without their hash: dropped (past the first 20 drops it
        // goes unlogged; the output equal to the reference shows it), and the shard goes to a real worker.
        let count = assignment.filenames.count
        try rogue.send(
            WireCodec.encode(
                .result(
                    ShardResult(
                        jobID: job.jobID, shardID: assignment.shardID, attempt: assignment.attempt,
                        start: assignment.start, count: count, featureCount: job.featureCount, skipped: []),
                    features: [UInt8](repeating: 0xFF, count: count * job.featureCount * 4))))
        Thread.sleep(forTimeInterval: 0.5)
        rogue.close()

        #expect(coordinator.wait(timeout: 120) == 0, "coordinator:\n\(coordinator.stderr)")
        #expect(coordinator.stderr.contains("dropping"), "\(coordinator.stderr)")

        #expect(try fixture.snapshot("out.h5") == fixture.snapshot("reference.h5"))
    }
}
