import Foundation
import TestSupport
import Testing
import VGG16
import Wire

/// A real `bottleneck-worker` process against a coordinator played by the test on a real ROUTER socket.
@Suite("Worker protocol", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct WorkerProtocolTests {
    final class FakeCoordinator {
        let directory: String
        let context: WireContext
        let router: WireSocket
        let endpoint: String
        let weightsPath: String
        let weights: VGG16Weights
        var worker: [UInt8] = []

        init() throws {
            directory = NSTemporaryDirectory() + "bottleneck-worker-protocol-\(UUID().uuidString.prefix(8))"
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            weightsPath = directory + "/weights.h5"
            try VGG16Weights.generated(widths: [4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8], seed: 5)
                .writeOfficialLayout(to: weightsPath)
            weights = try VGG16Weights.load(path: weightsPath)
            context = try WireContext()
            router = try WireSocket(context: context, kind: .router)
            endpoint = try router.bind("tcp://127.0.0.1:*")
        }

        func close() {
            router.close()
            context.terminate()
            try? FileManager.default.removeItem(atPath: directory)
        }

        func startWorker() throws -> ChildProcess {
            try ChildProcess(
                BuiltExecutables.worker,
                [
                    "--connect", endpoint, "--cache-dir", directory + "/cache", "--give-up-after", "15", "--threads",
                    "2",
                ],
                logDirectory: directory, label: "worker")
        }

        func job(featureCount: Int = 8) throws -> JobSpec {
            let size = try Data(contentsOf: URL(fileURLWithPath: weightsPath)).count
            return JobSpec(
                jobID: "job-\(UUID().uuidString.prefix(4))", weightsSHA256: weights.sha256, weightsSize: size,
                imageHeight: 32, imageWidth: 32, interpolation: "nearest", preprocessing: "caffe",
                layer: "block5_pool", featureCount: featureCount, sharedFilesystem: false,
                heartbeatIntervalMilliseconds: 500, peerTimeoutMilliseconds: 10_000)
        }

        /// The next message from the worker other than a heartbeat, within `timeout` seconds.
        func next(timeout: Double = 10) throws -> WireMessage? {
            let deadline = Date().addingTimeInterval(timeout)
            while Date() < deadline {
                guard try router.waitReadable(timeoutMilliseconds: 50), let frames = try router.receive() else {
                    continue
                }
                worker = frames[0]
                let message = try WireCodec.decode(Array(frames.dropFirst()))
                if case .heartbeat = message { continue }
                return message
            }
            return nil
        }

        func send(_ message: WireMessage, version: UInt16 = WireCodec.protocolVersion) throws {
            try router.send([worker] + WireCodec.encode(message, version: version))
        }

        func image() -> [UInt8] {
            Array("P6\n32 32\n255\n".utf8) + (0..<(32 * 32 * 3)).map { UInt8(truncatingIfNeeded: $0 &* 7) }
        }
    }

    @Test("a worker never computes with weights that do not hash to the job's")
    func weightsIntegrity() throws {
        let fake = try FakeCoordinator()
        defer { fake.close() }
        let worker = try fake.startWorker()
        guard case .hello? = try fake.next() else {
            Issue.record("no hello:\n\(worker.stderr)")
            return
        }
        let job = try fake.job()
        try fake.send(.welcome(Welcome(job: job)))
        guard case .needWeights(let request)? = try fake.next() else {
            Issue.record("no weights request")
            return
        }
        #expect(request.sha256 == job.weightsSHA256)

        var forged = [UInt8](try Data(contentsOf: URL(fileURLWithPath: fake.weightsPath)))
        forged[forged.count / 2] ^= 1
        try fake.send(.weights(WeightsTransfer(sha256: job.weightsSHA256, size: forged.count), bytes: forged))
        let shard = ShardAssignment(
            jobID: job.jobID, shardID: 0, attempt: 1, sequence: 1, start: 0, filenames: ["a/x.ppm"])
        try fake.send(.shard(shard, images: [fake.image()]))
        guard case .needWeights? = try fake.next() else {
            Issue.record("forged weights were not refused")
            return
        }
        #expect(worker.stderr.contains("hash"), "\(worker.stderr)")

        try fake.send(
            .weights(
                WeightsTransfer(sha256: job.weightsSHA256, size: forged.count),
                bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: fake.weightsPath)))))
        guard case .request(let ready)? = try fake.next() else {
            Issue.record("no request after the real weights")
            return
        }
        // Two compute threads: a shard each, and one more in flight.
        #expect(ready.status == WorkerStatus(lastShardSequence: 0, held: [], free: 3), "the earlier shard was ignored")
        try fake.send(.shard(shard, images: [fake.image()]))
        guard case .result(let result, let features)? = try fake.next() else {
            Issue.record("no result")
            return
        }
        #expect(result.shardID == 0 && result.count == 1 && result.skipped.isEmpty)
        #expect(features.count == 8 * 4)
        try fake.send(.end(JobEnd(jobID: job.jobID, reason: "done")))
        #expect(worker.wait(timeout: 10) == 0)
    }

    @Test("a welcome beyond the wire's limits ends the worker with a goodbye naming the limit, not a hello loop")
    func refusesJobBeyondLimits() throws {
        let fake = try FakeCoordinator()
        defer { fake.close() }
        let worker = try fake.startWorker()
        guard case .hello? = try fake.next() else {
            Issue.record("no hello:\n\(worker.stderr)")
            return
        }
        var job = try fake.job()
        job.imageHeight = 20000
        job.imageWidth = 20000
        #expect(WireLimits().refusal(of: job)?.contains("20000x20000") == true)
        try fake.send(.welcome(Welcome(job: job)))
        var goodbye: Goodbye?
        while let message = try fake.next() {
            if case .goodbye(let body) = message {
                goodbye = body
                break
            }
        }
        #expect(goodbye?.reason.contains("image size 20000x20000 is outside 1...8192") == true, "\(worker.stderr)")
        #expect(worker.wait(timeout: 10) == 1)
    }

    @Test("a worker refuses a job whose settings it cannot honour exactly")
    func refusesMismatchedJob() throws {
        let fake = try FakeCoordinator()
        defer { fake.close() }
        let worker = try fake.startWorker()
        guard case .hello? = try fake.next() else {
            Issue.record("no hello:\n\(worker.stderr)")
            return
        }
        try fake.send(.welcome(Welcome(job: try fake.job(featureCount: 9999))))
        if case .needWeights? = try fake.next() {
            try fake.send(
                .weights(
                    WeightsTransfer(sha256: fake.weights.sha256, size: try fake.job().weightsSize),
                    bytes: [UInt8](try Data(contentsOf: URL(fileURLWithPath: fake.weightsPath)))))
        }
        guard case .goodbye(let goodbye)? = try fake.next() else {
            Issue.record("no goodbye:\n\(worker.stderr)")
            return
        }
        #expect(goodbye.reason.contains("expects 9999"))
        #expect(worker.wait(timeout: 10) == 1)
    }

    @Test("a coordinator speaking another protocol version is a clear error for the worker")
    func versionMismatch() throws {
        let fake = try FakeCoordinator()
        defer { fake.close() }
        let worker = try fake.startWorker()
        guard case .hello? = try fake.next() else {
            Issue.record("no hello:\n\(worker.stderr)")
            return
        }
        try fake.send(.welcome(Welcome(job: try fake.job())), version: 7)
        #expect(worker.wait(timeout: 10) == 1)
        #expect(worker.stderr.contains("protocol version 7"), "\(worker.stderr)")
    }
}
