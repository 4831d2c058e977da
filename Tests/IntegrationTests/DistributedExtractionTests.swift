import BLAS
import Foundation
import Provenance
import TestSupport
import Testing
import VGG16

#if canImport(Glibc)
    import Glibc
#endif

/// Real coordinator and worker processes on real sockets; each test compares its output with an undisturbed
/// single-worker run of the same fixture.
@Suite("Distributed extraction", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct DistributedExtractionTests {
    /// Runs the fixture with one local worker: the reference every other run must match.
    private func reference(_ fixture: DistributedFixture) throws -> FeatureSnapshot {
        let run = try fixture.runCoordinator(fixture.extractArguments("reference.h5", ["--workers", "1"]))
        #expect(run.status == 0, "reference run failed:\n\(run.stderr)")
        return try FeatureSnapshot(fixture.directory.file("reference.h5"))
    }

    @Test("output is identical for 1 and 2 local workers, remote TCP workers, and other shard sizes")
    func identicalAcrossTopologies() throws {
        let fixture = try DistributedFixture("topologies")
        defer { fixture.directory.remove() }
        let expected = try reference(fixture)
        #expect(expected.rowCount == fixture.imageCount)
        #expect(expected.splits["train"]?.skipped.count == 1)
        #expect(expected.splits["train"]?.skipped.first?.hasPrefix("dog/broken.ppm: ") == true)

        for (name, extra) in [
            ("two.h5", ["--workers", "2", "--shard-size", "4"]),
            ("seven.h5", ["--workers", "2", "--shard-size", "7"]),
            ("one-image-shards.h5", ["--workers", "2", "--shard-size", "1", "--shared-filesystem"]),
        ] {
            let run = try fixture.runCoordinator(fixture.extractArguments(name, extra))
            #expect(run.status == 0, "\(extra) failed:\n\(run.stderr)")
            #expect(try FeatureSnapshot(fixture.directory.file(name)) == expected, "\(extra)")
            #expect(run.stderr.contains("dog/broken.ppm"), "the undecodable file is reported")
            #expect(!FileManager.default.fileExists(atPath: fixture.directory.file(name) + ".parts"))
        }

        let port = freeTCPPort()
        let coordinator = try fixture.startCoordinator(
            fixture.extractArguments(
                "remote.h5", ["--workers", "0", "--bind", "tcp://127.0.0.1:\(port)", "--shard-size", "3"]))
        let first = try fixture.startWorker("tcp://127.0.0.1:\(port)", label: "remote-a", shardDelayMs: 30)
        let second = try fixture.startWorker(
            "tcp://127.0.0.1:\(port)", ["--threads", "1"], label: "remote-b", shardDelayMs: 30)
        #expect(coordinator.wait(timeout: 120) == 0, "coordinator:\n\(coordinator.stderr)")
        #expect(first.wait(timeout: 30) == 0, "a worker exits 0 when the job ends:\n\(first.stderr)")
        #expect(second.wait(timeout: 30) == 0, "\(second.stderr)")
        #expect(try FeatureSnapshot(fixture.directory.file("remote.h5")) == expected)
        // Workers received the weights over the wire and cached them by hash.
        let cached =
            (try? FileManager.default.contentsOfDirectory(atPath: fixture.directory.file("cache-remote-a/weights")))
            ?? []
        #expect(cached.contains { $0.hasSuffix(".h5") && $0.count == 64 + 3 })
    }

    @Test("a worker killed mid-shard loses and duplicates nothing")
    func workerKilledMidShard() throws {
        let fixture = try DistributedFixture("sigkill-worker")
        defer { fixture.directory.remove() }
        let expected = try reference(fixture)
        let port = freeTCPPort()
        let coordinator = try fixture.startCoordinator(
            fixture.extractArguments(
                "out.h5",
                ["--workers", "0", "--bind", "tcp://127.0.0.1:\(port)", "--shard-size", "2", "--worker-timeout", "2"]))
        let victim = try fixture.startWorker("tcp://127.0.0.1:\(port)", label: "victim", shardDelayMs: 300)
        let survivor = try fixture.startWorker("tcp://127.0.0.1:\(port)", label: "survivor", shardDelayMs: 50)
        #expect(waitUntil(timeout: 30) { fixture.partsCount("out.h5") >= 2 }, "the job got going")
        victim.signal(SIGKILL)
        #expect(coordinator.wait(timeout: 120) == 0, "coordinator:\n\(coordinator.stderr)")
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == expected)
        #expect(survivor.wait(timeout: 30) == 0)
    }

    @Test("a stopped worker's shards are reassigned after the timeout and its late results ignored")
    func stoppedWorker() throws {
        let fixture = try DistributedFixture("sigstop-worker")
        defer { fixture.directory.remove() }
        let expected = try reference(fixture)
        let port = freeTCPPort()
        let coordinator = try fixture.startCoordinator(
            fixture.extractArguments(
                "out.h5",
                ["--workers", "0", "--bind", "tcp://127.0.0.1:\(port)", "--shard-size", "2", "--worker-timeout", "1.5"])
        )
        // The sleeper works alone until its first part is written, so that it surely holds shards when it is
        // stopped, whatever the load of the machine; the steady worker joins only then.
        let sleeper = try fixture.startWorker("tcp://127.0.0.1:\(port)", label: "sleeper", shardDelayMs: 400)
        #expect(sleeper.waitForStderr("block5_pool", timeout: 60), "the sleeper joined the job: \(sleeper.stderr)")
        #expect(waitUntil(timeout: 30) { fixture.partsCount("out.h5") >= 1 }, "the job got going")
        sleeper.signal(SIGSTOP)
        // One shard at a time and slow enough that the job outlasts the timeout (copies of the sleeper's shards
        // could otherwise finish it first).
        let steady = try fixture.startWorker(
            "tcp://127.0.0.1:\(port)", ["--threads", "1"], label: "steady", shardDelayMs: 300)
        #expect(coordinator.waitForStderr("silent for", timeout: 30), "the stopped worker is declared dead")
        sleeper.signal(SIGCONT)
        #expect(coordinator.wait(timeout: 120) == 0, "coordinator:\n\(coordinator.stderr)")
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == expected)
        #expect(steady.wait(timeout: 30) == 0)
        sleeper.wait(timeout: 30)
    }

    @Test("killing the coordinator takes its local workers down; the rerun resumes and says so")
    func coordinatorKilledAndResumed() throws {
        let fixture = try DistributedFixture("sigkill-coordinator")
        defer { fixture.directory.remove() }
        let expected = try reference(fixture)
        let arguments = fixture.extractArguments(
            "out.h5", ["--workers", "2", "--shard-size", "2", "--worker-timeout", "2"])
        let slowWorker = try BuiltExecutables.slowWorkerScript(delayMilliseconds: 250, in: fixture.directory.path)
        let coordinator = try fixture.startCoordinator(arguments, environment: ["BOTTLENECK_WORKER": slowWorker])
        #expect(waitUntil(timeout: 30) { fixture.partsCount("out.h5") >= 3 }, "the job got going")
        let pids = coordinator.stderr.split(separator: "\n").compactMap { line -> Int32? in
            guard let range = line.range(of: ": pid ") else { return nil }
            return Int32(line[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(pids.count == 2, "local worker pids are logged:\n\(coordinator.stderr)")
        coordinator.signal(SIGKILL)
        coordinator.wait(timeout: 10)
        #expect(
            waitUntil(timeout: 10) { pids.allSatisfy { !processExists($0) } }, "local workers outlived the coordinator")
        let partsBefore = fixture.partsCount("out.h5")

        let rerun = try fixture.runCoordinator(arguments)
        #expect(rerun.status == 0, "rerun:\n\(rerun.stderr)")
        let resumed = try #require(
            rerun.stderr.split(separator: "\n").first { $0.contains("resuming: ") }, "the rerun says it resumes")
        let numbers = resumed.split(separator: " ").compactMap { Int($0) }
        #expect(numbers.count == 2 && numbers[0] == partsBefore && numbers[0] > 0 && numbers[0] < numbers[1])
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == expected)
    }

    @Test("a corrupted part is caught by its hash at assembly and by --verify-parts, named, and recomputed")
    func corruptPart() throws {
        let fixture = try DistributedFixture("corrupt-part")
        defer { fixture.directory.remove() }
        let expected = try reference(fixture)
        let arguments = fixture.extractArguments("out.h5", ["--workers", "1", "--shard-size", "4", "--keep-parts"])
        #expect(try fixture.runCoordinator(arguments).status == 0)
        let shards = fixture.partsCount("out.h5")
        let location = try #require(fixture.partLocation("out.h5", shard: 2))
        func corrupt() throws {
            try FileManager.default.removeItem(atPath: fixture.directory.file("out.h5"))
            let handle = try #require(
                FileHandle(forUpdatingAtPath: fixture.directory.file("out.h5.parts/" + location.part)))
            try handle.seek(toOffset: UInt64(location.offset + 8))
            let byte = try #require(try handle.read(upToCount: 1)?.first)
            try handle.seek(toOffset: UInt64(location.offset + 8))
            try handle.write(contentsOf: Data([byte ^ 0x40]))
            try handle.close()
        }

        // A resume trusts the journal log; assembly reads the rows, finds the mismatch and names it.
        try corrupt()
        let caught = try fixture.runCoordinator(arguments)
        #expect(caught.status == 1, "\(caught.stderr)")
        #expect(caught.stderr.contains("resuming: \(shards) of \(shards) shards done"), "\(caught.stderr)")
        #expect(caught.stderr.contains("shard 2: "), "\(caught.stderr)")
        #expect(caught.stderr.contains(location.part) && caught.stderr.contains("offset \(location.offset)"))
        #expect(caught.stderr.contains("checksum mismatch"))
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("out.h5")))
        let rerun = try fixture.runCoordinator(arguments)
        #expect(rerun.status == 0, "rerun:\n\(rerun.stderr)")
        #expect(rerun.stderr.contains("resuming: \(shards - 1) of \(shards) shards done"), "\(rerun.stderr)")
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == expected)

        // --verify-parts hashes every finished shard before work starts.
        try corrupt()
        let verified = try fixture.runCoordinator(arguments + ["--verify-parts"])
        #expect(verified.status == 0, "\(verified.stderr)")
        #expect(verified.stderr.contains("shard 2 must be recomputed"), "\(verified.stderr)")
        #expect(verified.stderr.contains("checksum mismatch"))
        #expect(verified.stderr.contains("resuming: \(shards - 1) of \(shards) shards done"))
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == expected)
    }

    @Test("a resume with a changed image size, preprocessing or weights is refused and names the change")
    func changedSettingsRefused() throws {
        let fixture = try DistributedFixture("changed-settings")
        defer { fixture.directory.remove() }
        let base = ["--workers", "1", "--keep-parts"]
        #expect(try fixture.runCoordinator(fixture.extractArguments("out.h5", base)).status == 0)

        let size = try fixture.runCoordinator(
            fixture.extractArguments("out.h5", base).map { (argument: String) -> String in
                argument == "32" ? "48" : argument
            })
        #expect(size.status == 1)
        #expect(size.stderr.contains("image size (was 32x32, now 48x48)"), "\(size.stderr)")

        let preprocessing = try fixture.runCoordinator(
            fixture.extractArguments("out.h5", base + ["--preprocess", "rescale"]))
        #expect(preprocessing.status == 1)
        #expect(preprocessing.stderr.contains("preprocessing (was caffe, now rescale)"), "\(preprocessing.stderr)")

        let otherWeights = fixture.directory.file("other-weights.h5")
        try VGG16WeightsFile.write(otherWeights, seed: 99)
        let weights = try fixture.runCoordinator(
            fixture.extractArguments("out.h5", base).map { (argument: String) -> String in
                argument == fixture.weights ? otherWeights : argument
            })
        #expect(weights.status == 1)
        #expect(weights.stderr.contains("weights (was sha256"), "\(weights.stderr)")
        #expect(weights.stderr.contains("--restart"))

        let restarted = try fixture.runCoordinator(
            fixture.extractArguments("out.h5", base + ["--preprocess", "rescale", "--restart"]))
        #expect(restarted.status == 0, "\(restarted.stderr)")
        #expect(!restarted.stderr.contains("resuming"))
    }

    @Test("a bad network (latency, stalls, resets mid-message) between workers and coordinator changes nothing")
    func faultyNetwork() throws {
        let fixture = try DistributedFixture("fault-proxy")
        defer { fixture.directory.remove() }
        let expected = try reference(fixture)
        let port = freeTCPPort()
        var faults = FaultProxy.Faults()
        faults.latencyMilliseconds = 2
        faults.stallProbability = 0.05
        faults.stallMilliseconds = 300
        faults.resetProbability = 0.04
        faults.maxResets = 4
        faults.seed = 42
        faults.cutConnections = 2
        faults.cutAfterBytes = 3000
        let proxy = try FaultProxy(upstreamPort: port, faults: faults)
        defer { proxy.stop() }
        let coordinator = try fixture.startCoordinator(
            fixture.extractArguments(
                "out.h5",
                ["--workers", "0", "--bind", "tcp://127.0.0.1:\(port)", "--shard-size", "2", "--worker-timeout", "3"]))
        let workers = try (0..<2).map {
            try fixture.startWorker("tcp://127.0.0.1:\(proxy.port)", label: "proxied-\($0)", shardDelayMs: 20)
        }
        let status = coordinator.wait(timeout: 120)
        #expect(
            status == 0,
            "coordinator:\n\(coordinator.stderr)\nworkers:\n\(workers.map(\.stderr).joined(separator: "\n---\n"))")
        guard status == 0 else { return }
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == expected)
        for worker in workers {
            #expect(worker.wait(timeout: 30) == 0, "a worker learns that the job ended:\n\(worker.stderr)")
        }
        #expect(proxy.connections >= 3, "workers reconnected after the cuts")
        #expect(proxy.resetCount >= 2)
    }
}

/// Weights files for tests: tiny generated VGG16 weights in the official Keras layout.
enum VGG16WeightsFile {
    static func write(_ path: String, seed: UInt64) throws {
        try VGG16Weights.generated(widths: DistributedFixture.narrowWidths, seed: seed).writeOfficialLayout(to: path)
    }
}

@Suite(
    "Distributed extraction: worker life cycle", .enabled(if: BuiltExecutables.available, "needs the built executables")
)
struct DistributedWorkerLifecycleTests {
    @Test("a worker whose coordinator is not there gives up naming the refused connection")
    func workerGivesUp() throws {
        let fixture = try DistributedFixture("give-up", imagesPerClass: 1, validationPerClass: 0)
        defer { fixture.directory.remove() }
        let worker = try ChildProcess(
            BuiltExecutables.worker, ["--connect", "tcp://127.0.0.1:\(freeTCPPort())", "--give-up-after", "2"],
            logDirectory: fixture.directory.path, label: "lonely")
        #expect(worker.wait(timeout: 30) == 1)
        #expect(worker.stderr.contains("Connection refused"), "\(worker.stderr)")
        #expect(worker.stderr.contains("giving up"))
    }

    @Test("a persistent remote worker serves one job after another, and rides out a coordinator restart")
    func persistentWorkerAndRestart() throws {
        let fixture = try DistributedFixture("persistent")
        defer { fixture.directory.remove() }
        let port = freeTCPPort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let worker = try fixture.startWorker(endpoint, ["--persistent"], label: "persistent", shardDelayMs: 100)
        let bind = ["--workers", "0", "--bind", endpoint, "--shard-size", "2", "--worker-timeout", "3"]

        // First job: interrupted by killing the coordinator; the worker stays and waits for it to come back.
        let first = try fixture.startCoordinator(fixture.extractArguments("out.h5", bind))
        #expect(waitUntil(timeout: 30) { fixture.partsCount("out.h5") >= 2 }, "the job got going:\n\(first.stderr)")
        first.signal(SIGKILL)
        first.wait(timeout: 10)
        #expect(worker.isRunning)

        let resumed = try fixture.runCoordinator(fixture.extractArguments("out.h5", bind))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming: "))

        // Second job on the same worker.
        let second = try fixture.runCoordinator(fixture.extractArguments("again.h5", bind))
        #expect(second.status == 0, "\(second.stderr)")
        #expect(worker.isRunning, "a persistent worker waits for the next job")
        #expect(
            try FeatureSnapshot(fixture.directory.file("out.h5")) == FeatureSnapshot(fixture.directory.file("again.h5"))
        )
        worker.signal(SIGTERM)
        worker.wait(timeout: 10)
    }

    @Test("--json-progress prints progress and a summary as JSON lines on stdout")
    func jsonProgress() throws {
        let fixture = try DistributedFixture("json-progress")
        defer { fixture.directory.remove() }
        let child = try fixture.startCoordinator(
            fixture.extractArguments("out.h5", ["--workers", "2", "--json-progress"]))
        #expect(child.wait(timeout: 120) == 0, "\(child.stderr)")
        let objects = child.stdout.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any]
        }
        #expect(objects.count == child.stdout.split(separator: "\n").count, "every stdout line is JSON")
        let summary = try #require(objects.last { $0["event"] as? String == "summary" })
        #expect(summary["images"] as? Int == fixture.imageCount)
        #expect(summary["skipped"] as? Int == 1)
        #expect((summary["per_worker"] as? [String: Int])?.values.reduce(0, +) == fixture.imageCount + 1)
        #expect(
            objects.contains {
                $0["event"] as? String == "progress" && $0["images_total"] as? Int == fixture.imageCount + 1
            })
    }

    @Test("local workers log at the coordinator's --log-level")
    func localWorkersFollowTheLogLevel() throws {
        let fixture = try DistributedFixture("log-level")
        defer { fixture.directory.remove() }
        let quiet = try fixture.runCoordinator(
            fixture.extractArguments("quiet.h5", ["--workers", "1", "--log-level", "warning"]))
        #expect(quiet.status == 0, "\(quiet.stderr)")
        #expect(!quiet.stderr.contains("bottleneck.worker"), "\(quiet.stderr)")
        let chatty = try fixture.runCoordinator(fixture.extractArguments("chatty.h5", ["--workers", "1"]))
        #expect(chatty.status == 0, "\(chatty.stderr)")
        #expect(chatty.stderr.contains("info bottleneck.worker"), "\(chatty.stderr)")
    }
}

@Suite(
    "Distributed extraction: workers that would compute other bits",
    .enabled(if: BuiltExecutables.available && BLASKernels.cpuHasAVX512ForSkylakeX, "needs AVX-512 for two kernel sets")
)
struct DistributedComputeProfileTests {
    @Test("a worker whose OpenBLAS kernel set differs from the job's is refused, and says why")
    func mismatchedKernelSetRefused() throws {
        let fixture = try DistributedFixture("profile", imagesPerClass: 4, validationPerClass: 1)
        defer { fixture.directory.remove() }
        let port = freeTCPPort()
        let coordinator = try fixture.startCoordinator(
            fixture.extractArguments("out.h5", ["--workers", "0", "--bind", "tcp://127.0.0.1:\(port)"]))
        let first = try fixture.startWorker(
            "tcp://127.0.0.1:\(port)", ["--blas-coretype", "Haswell"], label: "haswell", shardDelayMs: 300)
        #expect(coordinator.waitForStderr("joined", timeout: 60), "coordinator: \(coordinator.stderr)")
        let second = try fixture.startWorker(
            "tcp://127.0.0.1:\(port)", ["--blas-coretype", "SkylakeX"], label: "skylakex")
        #expect(second.wait(timeout: 60) == 1)
        #expect(second.stderr.contains("OpenBLAS Haswell"), "worker: \(second.stderr)")
        #expect(coordinator.stderr.contains("refusing worker"))
        #expect(coordinator.wait(timeout: 120) == 0, "coordinator: \(coordinator.stderr)")
        #expect(first.wait(timeout: 30) == 0)
    }
}
