import FileIntegrity
import Foundation
import Storage
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// The first Python that imports h5py (Debian's python3-h5py).
let pythonWithH5py: String? = ["python3", "/usr/bin/python3"].first { runTool($0, ["-c", "import h5py"])?.status == 0 }

/// Why h5py checks cannot run here, or nil when a Python with h5py was found.
let h5pyUnavailable: String? =
    pythonWithH5py == nil ? "no python3 here imports h5py (apt-get install python3-h5py)" : nil

/// The journal's storage seen from outside: the virtual output read by h5py, a resume after kill -9 from the
/// journal log in plain and shared-filesystem mode.
@Suite("Extraction storage", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct ExtractionStorageTests {
    @Test("a virtual output reads the same as a copied one, in our reader and in h5py; its parts stay")
    func virtualEqualsCopy() throws {
        let fixture = try DistributedFixture("virtual")
        defer { fixture.directory.remove() }
        let copy = try fixture.runCoordinator(
            fixture.extractArguments("copy.h5", ["--workers", "1", "--shard-size", "4"]))
        #expect(copy.status == 0, "\(copy.stderr)")
        let virtual = try fixture.runCoordinator(
            fixture.extractArguments("virtual.h5", ["--workers", "1", "--shard-size", "4", "--assemble", "virtual"]))
        #expect(virtual.status == 0, "\(virtual.stderr)")
        #expect(
            try FeatureSnapshot(fixture.directory.file("virtual.h5"))
                == FeatureSnapshot(fixture.directory.file("copy.h5")))
        #expect(
            FileManager.default.fileExists(atPath: fixture.directory.file("virtual.h5.parts/part-train-000000.h5")),
            "the part files a virtual output maps onto stay")
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("copy.h5.parts")))
        // A restart, which removes the parts, says it removes the virtual output that maps onto them.
        let restarted = try fixture.runCoordinator(
            fixture.extractArguments(
                "virtual.h5", ["--workers", "1", "--shard-size", "4", "--assemble", "virtual", "--restart"]))
        #expect(restarted.status == 0, "\(restarted.stderr)")
        #expect(restarted.stderr.contains("restarting removes the part files that "), "\(restarted.stderr)")
        #expect(
            try FeatureSnapshot(fixture.directory.file("virtual.h5"))
                == FeatureSnapshot(fixture.directory.file("copy.h5")))

        if let python = pythonWithH5py {
            // From another working directory: h5py must find the parts next to the virtual file.
            let script = """
                from os import chdir
                from sys import argv
                h5py = __import__("h5py")
                np = __import__("numpy")
                copy, virtual = argv[1:3]
                chdir("/")
                with h5py.File(copy, "r") as a, h5py.File(virtual, "r") as b:
                    assert b["train/features"].is_virtual and not a["train/features"].is_virtual
                    for split in ("train", "validation"):
                        for name in ("features", "labels", "filenames"):
                            x, y = a[f"{split}/{name}"][()], b[f"{split}/{name}"][()]
                            assert x.shape == y.shape and x.dtype == y.dtype, (split, name, x.shape, y.shape)
                            assert np.array_equal(x, y), (split, name)
                    assert dict(a.attrs) .keys() == dict(b.attrs).keys()
                    print(b["train/features"].shape, len(b["train/features"].virtual_sources()))
                """
            let result = try #require(
                runTool(
                    python, ["-c", script, fixture.directory.file("copy.h5"), fixture.directory.file("virtual.h5")]))
            #expect(result.status == 0, "\(result.stderr)")
            print("h5py read the virtual output: \(result.stdout)")
        } else {
            print("h5py comparison skipped: \(h5pyUnavailable ?? "")")
        }

        // Our reader checks the part ranges it reads against the hashes the virtual output records.
        let file = try FeatureFile.open(fixture.directory.file("virtual.h5"))
        let split = try file.split("train")
        let segment = try #require(try split.segments().first)
        #expect(segment.file == "virtual.h5.parts/part-train-000000.h5")
        let handle = try #require(FileHandle(forUpdatingAtPath: fixture.directory.file(segment.file)))
        try handle.seek(toOffset: UInt64(segment.offset + 4))
        try handle.write(contentsOf: Data([0x5a, 0x5a]))
        try handle.close()
        do {
            _ = try split.readFeatures(rows: 0..<1)
            Issue.record("read rows of a changed part file")
        } catch {
            #expect("\(error)".contains("offset \(segment.offset) of "), "\(error)")
            #expect("\(error)".contains(segment.file), "\(error)")
        }
    }

    @Test(
        "shared filesystem: workers write the parts; after kill -9 and a torn log line the rerun resumes from the log"
    )
    func sharedFilesystemKilledAndResumed() throws {
        let fixture = try DistributedFixture("shared-kill")
        defer { fixture.directory.remove() }
        let reference = try fixture.runCoordinator(fixture.extractArguments("reference.h5", ["--workers", "1"]))
        #expect(reference.status == 0, "\(reference.stderr)")
        let expected = try FeatureSnapshot(fixture.directory.file("reference.h5"))
        let arguments = fixture.extractArguments(
            "out.h5", ["--workers", "2", "--shard-size", "2", "--worker-timeout", "2", "--shared-filesystem"])
        let slowWorker = try BuiltExecutables.slowWorkerScript(delayMilliseconds: 250, in: fixture.directory.path)
        let coordinator = try fixture.startCoordinator(arguments, environment: ["BOTTLENECK_WORKER": slowWorker])
        #expect(waitUntil(timeout: 30) { fixture.partsCount("out.h5") >= 3 }, "the job got going")
        coordinator.signal(SIGKILL)
        coordinator.wait(timeout: 10)
        let pids = coordinator.stderr.split(separator: "\n").compactMap { line -> Int32? in
            guard let range = line.range(of: ": pid ") else { return nil }
            return Int32(line[range.upperBound...].prefix { $0.isNumber })
        }
        #expect(waitUntil(timeout: 10) { pids.allSatisfy { !processExists($0) } }, "local workers outlived it")
        let partsBefore = fixture.partsCount("out.h5")
        let location = try #require(fixture.partLocation("out.h5", shard: 0))
        #expect(location.part == "part-train-000000.h5")

        // A crash in the middle of an append leaves a torn last line: ignored, its shard computed again.
        let log = try #require(FileHandle(forWritingAtPath: fixture.directory.file("out.h5.parts/journal.log")))
        try log.seekToEnd()
        try log.write(contentsOf: Data(#"{"done":{"count":2,"inputs":"#.utf8))
        try log.close()

        let rerun = try fixture.runCoordinator(arguments)
        #expect(rerun.status == 0, "rerun:\n\(rerun.stderr)")
        #expect(rerun.stderr.contains("ignoring 1 unreadable line(s) of "), "\(rerun.stderr)")
        let total = fixture.partsCount("out.h5")
        #expect(rerun.stderr.contains("resuming: \(partsBefore) of "), "\(rerun.stderr)")
        #expect(total == 0, "the parts are removed after a copy assembly")
        #expect(try FeatureSnapshot(fixture.directory.file("out.h5")) == expected)
    }

    @Test("a worker in shared-filesystem mode that cannot see the parts directory refuses the job, naming it")
    func workerWithoutPartsDirectoryRefused() throws {
        guard getuid() == 0,
            let unshare = ["/usr/bin/unshare", "/bin/unshare"].first(where: {
                FileManager.default.isExecutableFile(atPath: $0)
            })
        else {
            print("Parts-directory refusal test skipped: needs root and unshare(1) for a private mount namespace")
            return
        }
        let fixture = try DistributedFixture("shared-refused")
        defer { fixture.directory.remove() }
        let port = freeTCPPort()
        let coordinator = try fixture.startCoordinator(
            fixture.extractArguments(
                "out.h5", ["--workers", "0", "--bind", "tcp://127.0.0.1:\(port)", "--shared-filesystem"]))
        defer { coordinator.signal(SIGKILL) }
        #expect(coordinator.waitForStderr("listening for workers", timeout: 30), "\(coordinator.stderr)")
        let parts = OutputCheck.resolve(fixture.directory.file("out.h5.parts"))
        // The worker runs in a mount namespace of its own where an empty tmpfs hides the parts directory.
        let command =
            "mount -t tmpfs none '\(parts)' && exec '\(BuiltExecutables.worker)' --connect tcp://127.0.0.1:\(port) "
            + "--cache-dir '\(fixture.directory.file("cache-blind"))' --give-up-after 20"
        let worker = try ChildProcess(
            unshare, ["--mount", "--propagation", "private", "sh", "-c", command], logDirectory: fixture.directory.path,
            label: "blind-worker")
        let status = worker.wait(timeout: 60)
        if worker.stderr.contains("mount: ") || worker.stderr.contains("unshare: ") {
            print("Parts-directory refusal test skipped: no private mount here: \(worker.stderr)")
            return
        }
        #expect(status != 0, "\(worker.stderr)")
        #expect(worker.stderr.contains("cannot see the parts directory \(parts)"), "\(worker.stderr)")
        #expect(
            coordinator.waitForStderr("cannot see the parts directory \(parts)", timeout: 10),
            "the coordinator names the worker and the path:\n\(coordinator.stderr)")
        #expect(coordinator.stderr.contains("left: worker "))
    }
}
