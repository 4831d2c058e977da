import BLAS
import Foundation
import HDF5
import Storage
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The pids of the local workers a coordinator logged ("local worker 1: pid 123").
private func localWorkerPids(_ stderr: String) -> [Int32] {
    stderr.split(separator: "\n").compactMap { line -> Int32? in
        guard line.contains("local worker"), let range = line.range(of: ": pid ") else { return nil }
        return Int32(line[range.upperBound...].prefix { $0.isNumber })
    }
}

/// Starts a coordinator whose local workers are slow (`delay` ms per shard) and waits until `parts` shards are
/// journaled.
private func startSlowJob(
    _ fixture: DistributedFixture, _ arguments: [String], delay: Int = 250, parts: Int = 2,
    environment: [String: String] = [:]
) throws -> ChildProcess {
    let slowWorker = try BuiltExecutables.slowWorkerScript(delayMilliseconds: delay, in: fixture.directory.path)
    let coordinator = try fixture.startCoordinator(
        arguments, environment: environment.merging(["BOTTLENECK_WORKER": slowWorker]) { $1 })
    #expect(waitUntil(timeout: 60) { fixture.partsCount("out.h5") >= parts }, "the job got going")
    return coordinator
}

/// Runs the fixture with one local worker into `name`: the reference to compare with.
private func reference(_ fixture: DistributedFixture, _ name: String = "reference.h5") throws -> FeatureSnapshot {
    let run = try fixture.runCoordinator(fixture.extractArguments(name, ["--workers", "1"]))
    #expect(run.status == 0, "reference run failed:\n\(run.stderr)")
    return try FeatureSnapshot(fixture.directory.file(name))
}

@Suite(
    "Extraction: changed inputs, I/O errors, one coordinator per output, signals",
    .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct ExtractionSafetyTests {
    @Test("the feature file's root attributes and the journal record the compute profile and library versions")
    func provenanceRecorded() throws {
        let fixture = try DistributedFixture("provenance", imagesPerClass: 2, validationPerClass: 1)
        defer { fixture.directory.remove() }
        let run = try fixture.runCoordinator(fixture.extractArguments("out.h5", ["--workers", "1", "--keep-parts"]))
        #expect(run.status == 0, "\(run.stderr)")
        let attributes = try HDF5File.open(fixture.directory.file("out.h5")).root.attributes
        #expect(try attributes.string("compute_precision") == "fp32")
        #expect(try attributes.string("compute_kernel_set").isEmpty == false)
        #expect(try attributes.string("compute_grouping") == "4")
        #expect(try attributes.string("build_version").isEmpty == false)
        #expect(try attributes.string("library_openblas").contains("OpenBLAS"))
        #expect(try attributes.string("library_libjpeg_turbo").contains("."))
        #expect(try attributes.string("library_libpng").hasPrefix("1."))
        #expect(try attributes.string("library_hdf5").hasPrefix("1."))
        let manifest = try JSONDecoder().decode(
            JournalManifest.self,
            from: Data(contentsOf: URL(fileURLWithPath: fixture.directory.file("out.h5.parts/manifest.json"))))
        let provenance = try #require(manifest.provenance)
        #expect(try attributes.string("compute_kernel_set") == provenance.kernelSet)
        #expect(provenance.libraries.keys.sorted() == ["hdf5", "libjpeg-turbo", "libpng", "openblas"])
        // No object records a time: another run, with another topology, writes the same bytes.
        let again = try fixture.runCoordinator(
            fixture.extractArguments("again.h5", ["--workers", "2", "--shard-size", "3"]))
        #expect(again.status == 0, "\(again.stderr)")
        #expect(
            try Data(contentsOf: URL(fileURLWithPath: fixture.directory.file("again.h5")))
                == Data(contentsOf: URL(fileURLWithPath: fixture.directory.file("out.h5"))))
    }

    @Test("an image overwritten between a kill -9 and the rerun ends up with its new features")
    func changedImageRecomputed() throws {
        let fixture = try DistributedFixture("changed-image")
        defer { fixture.directory.remove() }
        let arguments = fixture.extractArguments("out.h5", ["--workers", "1", "--shard-size", "2"])
        let coordinator = try startSlowJob(fixture, arguments, parts: 3)
        coordinator.signal(SIGKILL)
        coordinator.wait(timeout: 10)
        // The first image of the first shard (finished) gets new pixels; its size stays the same.
        let image = fixture.train + "/cat/img000.ppm"
        #expect(fixture.partLocation("out.h5", shard: 0) != nil, "shard 0 is in the journal log")
        try writePPM(image, width: 40, height: 40, rgb: DistributedFixture.pattern(99))

        let rerun = try fixture.runCoordinator(arguments)
        #expect(rerun.status == 0, "rerun:\n\(rerun.stderr)")
        #expect(
            rerun.stderr.contains("images of 1 finished shards changed since the interrupted run; recomputing those"),
            "\(rerun.stderr)")
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == reference(fixture))

        // With the check skipped, a changed image keeps the features of its first read.
        let trusted = fixture.extractArguments("trusted.h5", ["--workers", "1", "--shard-size", "2", "--keep-parts"])
        #expect(try fixture.runCoordinator(trusted).status == 0)
        try FileManager.default.removeItem(atPath: fixture.directory.file("trusted.h5"))
        try writePPM(image, width: 40, height: 40, rgb: DistributedFixture.pattern(1))
        let again = try fixture.runCoordinator(trusted + ["--trust-inputs"])
        #expect(again.status == 0 && !again.stderr.contains("changed since"), "\(again.stderr)")
    }

    @Test("an image that cannot be read (a FIFO) is retried, then the job fails naming it; the rest is kept")
    func unreadableImageFailsTheJob() throws {
        for shared in [false, true] {
            let fixture = try DistributedFixture("unreadable", imagesPerClass: 4, validationPerClass: 1)
            defer { fixture.directory.remove() }
            let fifo = fixture.train + "/fox/img001.ppm"
            try FileManager.default.removeItem(atPath: fifo)
            #expect(mkfifo(fifo, 0o644) == 0)
            let run = try fixture.runCoordinator(
                fixture.extractArguments(
                    "out.h5", ["--workers", "2", "--shard-size", "2"] + (shared ? ["--shared-filesystem"] : [])))
            #expect(run.status == 1, "shared \(shared): \(run.stderr)")
            #expect(run.stderr.contains("cannot read 1 image file(s), 3 attempts each"), "\(run.stderr)")
            #expect(run.stderr.contains("\(fifo): not a regular file"), "\(run.stderr)")
            #expect(run.stderr.contains("attempt 2 of 3"))
            #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("out.h5")))
            #expect(fixture.partsCount("out.h5") > 0, "the finished shards are kept for a rerun")
        }
    }

    @Test("a file gone before it is read is skipped as missing; an undecodable one with its decode error")
    func missingAndCorruptImagesSkipped() throws {
        for shared in [false, true] {
            let fixture = try DistributedFixture("missing", imagesPerClass: 8, validationPerClass: 1)
            defer { fixture.directory.remove() }
            // The last training shard is read last: remove one of its images once the scan has listed it.
            let arguments = fixture.extractArguments(
                "out.h5", ["--workers", "1", "--shard-size", "2"] + (shared ? ["--shared-filesystem"] : []))
            let coordinator = try startSlowJob(fixture, arguments, delay: 200, parts: 1)
            try FileManager.default.removeItem(atPath: fixture.train + "/fox/img007.ppm")
            #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.stderr)")
            let skipped = try FeatureSnapshot(fixture.directory.file("out.h5")).splits["train"]?.skipped ?? []
            #expect(skipped.contains("fox/img007.ppm: missing"), "shared \(shared): \(skipped)")
            let broken = skipped.first { $0.hasPrefix("dog/broken.ppm: ") }
            #expect(broken != nil && broken != "dog/broken.ppm: missing", "\(skipped)")
        }
    }

    @Test("a second extract of the same output exits 1 at once naming the first one's pid and host")
    func secondCoordinatorRefused() throws {
        let fixture = try DistributedFixture("lock")
        defer { fixture.directory.remove() }
        let arguments = fixture.extractArguments("out.h5", ["--workers", "1", "--shard-size", "2"])
        let first = try startSlowJob(fixture, arguments, parts: 1)
        let second = try fixture.runCoordinator(arguments, timeout: 30)
        #expect(second.status == 1, "\(second.stderr)")
        #expect(
            second.stderr.contains("is in use by another extraction (pid \(first.pid) on host "), "\(second.stderr)")
        let restart = try fixture.runCoordinator(arguments + ["--restart"], timeout: 30)
        #expect(restart.status == 1, "a restart does not touch a journal in use:\n\(restart.stderr)")
        #expect(first.wait(timeout: 120) == 0, "the first job is unharmed:\n\(first.stderr)")
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == reference(fixture))
    }

    @Test("kill -9 releases the lock; the rerun removes the temporary files the crash left")
    func lockReleasedByKill() throws {
        let fixture = try DistributedFixture("lock-kill")
        defer { fixture.directory.remove() }
        let arguments = fixture.extractArguments("out.h5", ["--workers", "1", "--shard-size", "2"])
        let first = try startSlowJob(fixture, arguments, parts: 1)
        first.signal(SIGKILL)
        first.wait(timeout: 10)
        let leftovers = [
            fixture.directory.file("out.h5.tmp-99999"),
            fixture.directory.file("out.h5.parts/part-000099.bin.tmp-99999"),
        ]
        for path in leftovers { #expect(FileManager.default.createFile(atPath: path, contents: Data([1, 2, 3]))) }
        let rerun = try fixture.runCoordinator(arguments)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stderr.contains("resuming: "))
        for path in leftovers { #expect(!FileManager.default.fileExists(atPath: path), "\(path)") }
    }

    @Test("SIGINT and SIGTERM stop the coordinator with 130 and 143, no worker is left, and the rerun resumes")
    func coordinatorSignals() throws {
        let fixture = try DistributedFixture("signals")
        defer { fixture.directory.remove() }
        let expected = try reference(fixture)
        let arguments = fixture.extractArguments("out.h5", ["--workers", "2", "--shard-size", "2"])
        for (signal, status) in [(SIGINT, Int32(130)), (SIGTERM, Int32(143))] {
            let coordinator = try startSlowJob(fixture, arguments, delay: 400, parts: fixture.partsCount("out.h5") + 1)
            let pids = localWorkerPids(coordinator.stderr)
            #expect(pids.count == 2, "\(coordinator.stderr)")
            coordinator.signal(signal)
            #expect(coordinator.wait(timeout: 10) == status, "\(coordinator.stderr)")
            #expect(coordinator.stderr.contains("the same job run again resumes"), "\(coordinator.stderr)")
            #expect(waitUntil(timeout: 10) { pids.allSatisfy { !processExists($0) } }, "a worker was left")
        }
        // A second signal ends the process at once.
        let twice = try startSlowJob(fixture, arguments, delay: 400, parts: fixture.partsCount("out.h5") + 1)
        twice.signal(SIGINT)
        twice.signal(SIGINT)
        #expect(twice.wait(timeout: 10) == 130)
        let rerun = try fixture.runCoordinator(arguments)
        #expect(rerun.status == 0, "\(rerun.stderr)")
        #expect(rerun.stderr.contains("resuming: "))
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == expected)
    }

    @Test("SIGTERM to a worker: it leaves, its shards go to another worker, the output is unchanged")
    func workerSignal() throws {
        let fixture = try DistributedFixture("worker-sigterm")
        defer { fixture.directory.remove() }
        let expected = try reference(fixture)
        let port = freeTCPPort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let coordinator = try fixture.startCoordinator(
            fixture.extractArguments("out.h5", ["--workers", "0", "--bind", endpoint, "--shard-size", "2"]))
        let leaving = try fixture.startWorker(endpoint, label: "leaving", shardDelayMs: 300)
        #expect(waitUntil(timeout: 60) { fixture.partsCount("out.h5") >= 1 })
        leaving.signal(SIGTERM)
        #expect(leaving.wait(timeout: 10) == 143, "\(leaving.stderr)")
        #expect(coordinator.waitForStderr("left: stopped by signal 15", timeout: 10), "\(coordinator.stderr)")
        let steady = try fixture.startWorker(endpoint, label: "steady")
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.stderr)")
        #expect(steady.wait(timeout: 30) == 0)
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == expected)
    }
}

@Suite(
    "Extraction: a resume under another compute profile",
    .enabled(if: BuiltExecutables.available && BLASKernels.cpuHasAVX512ForSkylakeX, "needs AVX-512 for two kernel sets")
)
struct ProvenanceResumeTests {
    @Test("a resume under another kernel set is refused naming the difference; --restart starts over")
    func resumeUnderAnotherProfileRefused() throws {
        let fixture = try DistributedFixture("profile-resume")
        defer { fixture.directory.remove() }
        let arguments = fixture.extractArguments("out.h5", ["--workers", "1", "--shard-size", "2"])
        let first = try startSlowJob(
            fixture, arguments, parts: 2, environment: ["BOTTLENECK_OPENBLAS_CORETYPE": "Haswell"])
        first.signal(SIGKILL)
        first.wait(timeout: 10)
        let refused = try fixture.runCoordinator(
            arguments, environment: ["BOTTLENECK_OPENBLAS_CORETYPE": "SkylakeX"])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("kernel set (was Haswell, now SkylakeX)"), "\(refused.stderr)")
        #expect(refused.stderr.contains("--restart"))
        let restarted = try fixture.runCoordinator(
            arguments + ["--restart"], environment: ["BOTTLENECK_OPENBLAS_CORETYPE": "SkylakeX"])
        #expect(restarted.status == 0, "\(restarted.stderr)")
        let attributes = try HDF5File.open(fixture.directory.file("out.h5")).root.attributes
        #expect(try attributes.string("compute_kernel_set") == "SkylakeX")
    }
}
