import Foundation
import TestSupport
import Testing
import VGG16

/// Many workers fetching the weights at once over a slow link: the weights cross it about once per host, the
/// coordinator sends a bounded number at a time, and nobody waiting for them is declared lost.
@Suite("Weights fan-out", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct WeightsFanOutTests {
    /// Widths that make a weights file of about 1.6 MB: slow enough to cross a throttled link, small in memory.
    static let widths = [32, 32, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64, 64]

    struct Job {
        let fixture: DistributedFixture
        let weights: String
        let weightsSize: Int
        let proxy: FaultProxy
        let coordinator: ChildProcess

        init(_ label: String, bytesPerSecond: Int, extra: [String]) throws {
            fixture = try DistributedFixture(label, imagesPerClass: 4, validationPerClass: 1)
            weights = fixture.directory.file("wide.h5")
            try VGG16Weights.generated(widths: WeightsFanOutTests.widths, seed: 5).writeOfficialLayout(to: weights)
            weightsSize = (try FileManager.default.attributesOfItem(atPath: weights)[.size] as? Int) ?? 0
            let port = freeTCPPort()
            coordinator = try fixture.startCoordinator(
                [
                    "extract", "--train", fixture.train, "--validation", fixture.validation, "--weights", weights,
                    "--output", fixture.directory.file("out.h5"), "--image-size", "32", "--workers", "0", "--bind",
                    "tcp://127.0.0.1:\(port)", "--shared-filesystem", "--json-progress", "--worker-timeout", "2",
                    "--heartbeat-interval", "0.5",
                ] + extra)
            #expect(coordinator.waitForStderr("listening for workers", timeout: 60), "\(coordinator.stderr)")
            var faults = FaultProxy.Faults()
            faults.downstreamBytesPerSecond = bytesPerSecond
            proxy = try FaultProxy(upstreamPort: port, faults: faults)
        }

        func startWorkers(_ count: Int, sharedCache: Bool) throws -> [ChildProcess] {
            try (0..<count).map { index in
                try ChildProcess(
                    BuiltExecutables.worker,
                    [
                        "--connect", "tcp://127.0.0.1:\(proxy.port)", "--threads", "1", "--blas-coretype", "keep",
                        "--give-up-after", "60", "--cache-dir",
                        fixture.directory.file(sharedCache ? "cache" : "cache-\(index)"),
                    ], logDirectory: fixture.directory.path, label: "worker-\(index)")
            }
        }

        /// The coordinator's closing JSON summary.
        func summary() throws -> [String: Any] {
            let line = try #require(coordinator.stdout.split(separator: "\n").last { $0.contains("\"summary\"") })
            return try #require(try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any])
        }
    }

    @Test("50 workers of one host joining at once through a throttled link: the weights cross it about once")
    func crowdOnOneHost() throws {
        let job = try Job("fan-out", bytesPerSecond: 3_000_000, extra: [])
        defer {
            job.proxy.stop()
            job.fixture.directory.remove()
        }
        let workers = try job.startWorkers(50, sharedCache: true)
        #expect(job.coordinator.wait(timeout: 300) == 0, "\(job.coordinator.stderr)")
        for worker in workers { worker.wait(timeout: 60) }
        let summary = try job.summary()
        let transfers = summary["weights_transfers"] as? Int ?? -1
        let bytes = job.proxy.bytesFromUpstream
        print("fan-out: 50 workers, weights \(job.weightsSize) bytes, \(transfers) transfers, \(bytes) bytes sent")
        #expect((1...2).contains(transfers), "\(summary)")
        #expect(bytes < 3 * job.weightsSize, "\(bytes) bytes crossed the link for \(job.weightsSize) bytes of weights")
        #expect(!job.coordinator.stderr.contains(" silent for "), "a worker waiting for weights was declared lost")
    }

    @Test("workers with caches of their own: at most K transfers at a time, the rest queued, nobody declared lost")
    func transfersQueued() throws {
        let job = try Job("fan-out-queue", bytesPerSecond: 3_000_000, extra: ["--weights-transfers", "2"])
        defer {
            job.proxy.stop()
            job.fixture.directory.remove()
        }
        let workers = try job.startWorkers(8, sharedCache: false)
        #expect(job.coordinator.wait(timeout: 300) == 0, "\(job.coordinator.stderr)")
        for worker in workers { worker.wait(timeout: 60) }
        let summary = try job.summary()
        let transfers = summary["weights_transfers"] as? Int ?? -1
        let bytes = job.proxy.bytesFromUpstream
        print("queued: 8 workers, weights \(job.weightsSize) bytes, \(transfers) transfers, \(bytes) bytes sent")
        #expect(job.coordinator.stderr.contains("waits for the weights behind"), "\(job.coordinator.stderr)")
        #expect(transfers <= 8 && transfers >= 1, "\(summary)")
        #expect(bytes < 9 * job.weightsSize, "no resend storm: \(bytes) bytes")
        #expect(!job.coordinator.stderr.contains(" silent for "), "a worker waiting for weights was declared lost")
    }
}
