import Foundation
import HDF5
import Storage
import TestSupport
import Testing

#if canImport(Glibc)
    import Glibc
#endif

/// What a careless or impatient user can throw at the release binaries: outputs over inputs, full disks,
/// impossible settings, empty and diverging data, unreachable coordinators. Every case runs the built
/// executables as a user would and checks the exit status, the message, and that nothing was destroyed.
@Suite("Hostile inputs", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct HostileInputTests {
    struct Run {
        var status: Int32?
        var stdout: String
        var stderr: String
        var signalled: Bool
    }

    /// Runs `executable` to its end (bounded by `timeout`; a process still running then is killed).
    static func run(
        _ fixture: DistributedFixture, _ arguments: [String], executable: String = BuiltExecutables.coordinator,
        timeout: Double = 120, environment: [String: String] = [:]
    ) throws -> Run {
        let child = try ChildProcess(
            executable, arguments, logDirectory: fixture.directory.path, label: "run", environment: environment)
        let status = child.wait(timeout: timeout)
        return Run(status: status, stdout: child.stdout, stderr: child.stderr, signalled: child.wasSignalled)
    }

    /// The file's bytes, nil when it cannot be read.
    static func sha(_ path: String) -> Data? { try? Data(contentsOf: URL(fileURLWithPath: path)) }

    /// A feature file and a model trained on it, in the fixture's directory.
    static func trainedModel(_ fixture: DistributedFixture) throws -> (features: String, model: String) {
        let features = fixture.directory.file("features.h5")
        let extract = try run(fixture, fixture.extractArguments("features.h5", ["--workers", "1"]))
        #expect(extract.status == 0, "\(extract.stderr)")
        let model = fixture.directory.file("model.h5")
        let train = try run(
            fixture, ["train", "--features", features, "--output", model, "--epochs", "2", "--batch-size", "8"])
        #expect(train.status == 0, "\(train.stderr)")
        return (features, model)
    }

    // MARK: - Outputs never destroy inputs

    @Test("an output that resolves to an input is refused with exit 2 before any work, the input unchanged")
    func outputOverInputIsRefused() throws {
        let fixture = try DistributedFixture("out-in")
        defer { fixture.directory.remove() }
        let weightsBefore = Self.sha(fixture.weights)
        try FileManager.default.createSymbolicLink(
            atPath: fixture.directory.file("link.h5"), withDestinationPath: fixture.weights)
        let sameWeights = [
            fixture.weights, fixture.directory.file("link.h5"), fixture.train + "/../weights.h5",
        ]
        for output in sameWeights {
            var arguments = fixture.extractArguments("unused.h5", ["--workers", "1"])
            arguments[arguments.firstIndex(of: "--output")! + 1] = output
            let extract = try Self.run(fixture, arguments)
            #expect(extract.status == 2, "\(output): \(extract.stderr)")
            #expect(extract.stderr.contains("is the weights file"), "\(extract.stderr)")
        }
        #expect(Self.sha(fixture.weights) == weightsBefore)

        let (features, model) = try Self.trainedModel(fixture)
        let featuresBefore = Self.sha(features)
        let modelBefore = Self.sha(model)
        let train = try Self.run(fixture, ["train", "--features", features, "--output", features, "--epochs", "1"])
        #expect(train.status == 2, "\(train.stderr)")
        #expect(train.stderr.contains("is the feature file"), "\(train.stderr)")
        for plot in [features, model, fixture.directory.path + "/./model.h5"] {
            let evaluate = try Self.run(
                fixture, ["evaluate", "--features", features, "--model", model, "--plot", plot])
            #expect(evaluate.status == 2, "\(plot): \(evaluate.stderr)")
        }
        #expect(Self.sha(features) == featuresBefore)
        #expect(Self.sha(model) == modelBefore)
    }

    @Test("an existing output of another kind is refused unless --force; a directory output is refused at once")
    func foreignOutputsAndDirectories() throws {
        let fixture = try DistributedFixture("out-kind")
        defer { fixture.directory.remove() }
        let photo = fixture.directory.file("photo.jpg")
        try Data([0xFF, 0xD8, 0xFF, 0xE0, 1, 2, 3]).write(to: URL(fileURLWithPath: photo))
        let refused = try Self.run(fixture, fixture.extractArguments("photo.jpg", ["--workers", "1"]))
        #expect(refused.status == 2, "\(refused.stderr)")
        #expect(refused.stderr.contains("is not a feature file") && refused.stderr.contains("--force"))
        #expect(Self.sha(photo)?.count == 7)
        let forced = try Self.run(fixture, fixture.extractArguments("photo.jpg", ["--workers", "1", "--force"]))
        #expect(forced.status == 0, "\(forced.stderr)")
        #expect(FeatureFile.isFeatureFile(photo))

        // The weights file is an HDF5 file of another kind: not a model.
        let model = try Self.run(
            fixture, ["train", "--features", photo, "--output", fixture.weights, "--epochs", "1"])
        #expect(model.status == 2, "\(model.stderr)")
        #expect(model.stderr.contains("is not a top model file"), "\(model.stderr)")
        let generated = try Self.run(
            fixture, ["generate-weights", "--output", photo, "--widths"] + Array(repeating: "4", count: 13))
        #expect(generated.status == 2, "\(generated.stderr)")

        let directory = try Self.run(fixture, fixture.extractArguments("train", ["--workers", "1"]))
        #expect(directory.status == 2, "\(directory.stderr)")
        #expect(directory.stderr.contains("is a directory"), "\(directory.stderr)")
    }

    @Test("an output that cannot be created is reported before the work as 'cannot write OUTPUT: reason'")
    func unwritableOutputIsReportedFirst() throws {
        let fixture = try DistributedFixture("out-unwritable")
        defer { fixture.directory.remove() }
        let blocker = fixture.directory.file("plain-file")
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        let extract = try Self.run(fixture, fixture.extractArguments("plain-file/features.h5", ["--workers", "1"]))
        #expect(extract.status == 1, "\(extract.stderr)")
        #expect(extract.stderr.contains("cannot write \(blocker)/features.h5: Not a directory"), "\(extract.stderr)")
        #expect(!extract.stderr.contains("extracted"))
        #expect(!FileManager.default.fileExists(atPath: blocker + "/features.h5.parts"))
    }

    // MARK: - Impossible settings

    @Test("an image size beyond the workers' limit is refused up front with exit 2")
    func impossibleImageSizeIsRefused() throws {
        let fixture = try DistributedFixture("big-size")
        defer { fixture.directory.remove() }
        var arguments = fixture.extractArguments("features.h5", ["--workers", "1"])
        arguments[arguments.firstIndex(of: "--image-size")! + 1] = "20000"
        let extract = try Self.run(fixture, arguments, timeout: 60)
        #expect(extract.status == 2, "\(extract.stderr)")
        #expect(extract.stderr.contains("out of range") && extract.stderr.contains("8192"), "\(extract.stderr)")
    }

    @Test("a job that no worker can take fails with the workers' reason instead of being offered forever")
    func jobNoWorkerTakesFails() throws {
        let fixture = try DistributedFixture("no-taker")
        defer { fixture.directory.remove() }
        // The local workers' weights cache lies below a regular file: none can store the job's weights.
        let blocker = fixture.directory.file("not-a-directory")
        try Data("x".utf8).write(to: URL(fileURLWithPath: blocker))
        var arguments = fixture.extractArguments("features.h5", ["--workers", "1"])
        arguments[arguments.firstIndex(of: "--cache-dir")! + 1] = blocker + "/cache"
        let extract = try Self.run(fixture, arguments, timeout: 120)
        #expect(extract.status == 1, "\(extract.stderr)")
        #expect(extract.stderr.contains("no worker can take this job"), "\(extract.stderr)")
        #expect(extract.stderr.contains("Not a directory"), "\(extract.stderr)")
    }

    // MARK: - Nothing empty or NaN passes as success

    @Test("empty image trees and empty splits are errors naming what is empty")
    func emptyInputsAreErrors() throws {
        let fixture = try DistributedFixture("empty")
        defer { fixture.directory.remove() }
        let empty = fixture.directory.file("empty-tree")
        for name in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: empty + "/" + name, withIntermediateDirectories: true)
        }
        var arguments = fixture.extractArguments("features.h5", ["--workers", "1"])
        arguments[arguments.firstIndex(of: "--train")! + 1] = empty
        let extract = try Self.run(fixture, arguments)
        #expect(extract.status == 1, "\(extract.stderr)")
        #expect(extract.stderr.contains("\(empty) is empty"), "\(extract.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("features.h5")))

        // A tree whose every image fails to decode: no feature row would be left, so no file is written either.
        let garbage = fixture.directory.file("garbage-tree")
        for name in ["a", "b"] {
            try FileManager.default.createDirectory(atPath: garbage + "/" + name, withIntermediateDirectories: true)
            for index in 0..<2 {
                try Data("not an image".utf8).write(to: URL(fileURLWithPath: "\(garbage)/\(name)/\(index).jpg"))
            }
        }
        arguments[arguments.firstIndex(of: "--train")! + 1] = garbage
        arguments[arguments.firstIndex(of: "--output")! + 1] = fixture.directory.file("garbage.h5")
        let validation = arguments.firstIndex(of: "--validation")!
        arguments.removeSubrange(validation...(validation + 1))
        let undecodable = try Self.run(fixture, arguments)
        #expect(undecodable.status == 1, "\(undecodable.stderr)")
        #expect(
            undecodable.stderr.contains("none of the 4 images of split 'train' could be read"), "\(undecodable.stderr)")
        #expect(undecodable.stderr.contains("a/0.jpg: not a supported image"), "\(undecodable.stderr)")
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("garbage.h5")))

        let (features, model) = try Self.trainedModel(fixture)
        // A feature file whose validation split has no rows, written by the library.
        let source = try FeatureFile.open(features)
        let emptySplit = fixture.directory.file("empty-split.h5")
        let writer = try FeatureFileWriter(
            path: emptySplit, attributes: source.attributes, classNames: source.classNames)
        try writer.beginSplit("validation", featureShape: try source.split("train").featureShape)
        try writer.finish()
        let evaluate = try Self.run(fixture, ["evaluate", "--features", emptySplit, "--model", model])
        #expect(evaluate.status == 1, "\(evaluate.stderr)")
        #expect(evaluate.stderr.contains("no rows to evaluate"), "\(evaluate.stderr)")
    }

    @Test("a diverging loss stops training naming epoch and batch, keeps the model; NaN models are refused")
    func divergingTrainingStops() throws {
        let fixture = try DistributedFixture("nan")
        defer { fixture.directory.remove() }
        let (features, model) = try Self.trainedModel(fixture)
        let before = Self.sha(model)
        let train = try Self.run(
            fixture,
            [
                "train", "--features", features, "--output", model, "--learning-rate", "1e30", "--epochs", "3",
                "--batch-size", "8",
            ])
        #expect(train.status == 1, "\(train.stderr)")
        #expect(train.stderr.contains("epoch 1, batch"), "\(train.stderr)")
        #expect(Self.sha(model) == before)

        // The same model with one NaN weight, as a diverged run of another program would leave it.
        let poisoned = fixture.directory.file("poisoned.h5")
        try FileManager.default.copyItem(atPath: model, toPath: poisoned)
        let file = try HDF5File.open(poisoned, writable: true)
        let bias = try file.root.dataset("dense_1/dense_1/bias:0")
        var values = try bias.read(Float.self)
        values[0] = .nan
        try bias.writeRows(values, at: 0)
        try file.closeChecked()
        let evaluate = try Self.run(fixture, ["evaluate", "--features", features, "--model", poisoned])
        #expect(evaluate.status == 1, "\(evaluate.stderr)")
        #expect(evaluate.stderr.contains("non-finite"), "\(evaluate.stderr)")
        let image = fixture.train + "/cat/img000.ppm"
        let predict = try Self.run(
            fixture, ["predict", "--weights", fixture.weights, "--model", poisoned, image])
        #expect(predict.status == 1, "\(predict.stderr)")
        #expect(predict.stderr.contains("non-finite"), "\(predict.stderr)")
        #expect(!predict.stdout.contains("nan"))
    }

    // MARK: - Messages

    @Test("messages: --train naming a file, --epochs -1, an image removed during the run")
    func plainMessages() throws {
        let fixture = try DistributedFixture("messages")
        defer { fixture.directory.remove() }
        var arguments = fixture.extractArguments("features.h5", ["--workers", "1"])
        arguments[arguments.firstIndex(of: "--train")! + 1] = fixture.weights
        let notDirectory = try Self.run(fixture, arguments)
        #expect(notDirectory.status == 1, "\(notDirectory.stderr)")
        #expect(notDirectory.stderr.contains("is not a directory"), "\(notDirectory.stderr)")

        for (option, value) in [("--epochs", "-1"), ("--learning-rate", "-0.5"), ("--batch-size", "0")] {
            let train = try Self.run(
                fixture, ["train", "--features", fixture.weights, "--output", "m.h5", option, value])
            #expect(train.status == 2, "\(train.stderr)")
            #expect(train.stderr.contains("\(option) \(value) is out of range"), "\(train.stderr)")
        }

        // One slow local worker, one image per shard: the last image is removed while the first shards run.
        let slow = try BuiltExecutables.slowWorkerScript(delayMilliseconds: 300, in: fixture.directory.path)
        let victim = fixture.validation + "/fox/img001.ppm"
        let child = try fixture.startCoordinator(
            fixture.extractArguments("features.h5", ["--workers", "1", "--shard-size", "1"]),
            environment: ["BOTTLENECK_WORKER": slow])
        #expect(child.waitForStderr("joined", timeout: 60), "\(child.stderr)")
        try FileManager.default.removeItem(atPath: victim)
        #expect(child.wait(timeout: 120) == 0, "\(child.stderr)")
        let skipped = try FeatureFile.open(fixture.directory.file("features.h5")).split("validation").skipped()
        #expect(skipped.map(\.filename) == ["fox/img001.ppm"])
        #expect(skipped.first?.reason.contains("missing") == true, "\(skipped)")
        #expect(!child.stderr.contains("empty file"), "\(child.stderr)")
    }

    @Test("a worker pointed at a refused port or an unknown host says so within seconds")
    func unreachableCoordinatorIsNamed() throws {
        let fixture = try DistributedFixture("unreachable")
        defer { fixture.directory.remove() }
        let refused = try fixture.startWorker("tcp://127.0.0.1:\(freeTCPPort())", label: "refused")
        #expect(refused.waitForStderr("Connection refused", timeout: 15), "\(refused.stderr)")
        refused.signal(SIGTERM)
        let unknown = try Self.run(
            fixture, ["--connect", "tcp://no-such-host.invalid:5555", "--give-up-after", "60"],
            executable: BuiltExecutables.worker, timeout: 30)
        #expect(unknown.status == 1, "\(unknown.stderr)")
        #expect(unknown.stderr.contains("cannot resolve the host 'no-such-host.invalid'"), "\(unknown.stderr)")
    }

    // MARK: - Nothing left behind

    @Test("a finished extract leaves no socket file; keygen refuses an empty or directory path")
    func nothingLeftBehind() throws {
        let fixture = try DistributedFixture("leftovers")
        defer { fixture.directory.remove() }
        // Files of this run only: an earlier coordinator with the same (reused) pid may have left one.
        let before = Set(try FileManager.default.contentsOfDirectory(atPath: "/tmp"))
        let child = try fixture.startCoordinator(fixture.extractArguments("features.h5", ["--workers", "1"]))
        let pid = child.pid
        #expect(child.wait(timeout: 120) == 0, "\(child.stderr)")
        let left = (try FileManager.default.contentsOfDirectory(atPath: "/tmp")).filter {
            $0.hasPrefix("bottleneck-\(pid)-") && !before.contains($0)
        }
        #expect(left.isEmpty, "\(left)")

        for path in ["", fixture.directory.path, fixture.directory.path + "/", ".key"] {
            let keygen = try Self.run(fixture, ["keygen", path])
            #expect(keygen.status == 2, "'\(path)': \(keygen.stderr)")
        }
        #expect(!FileManager.default.fileExists(atPath: fixture.directory.path + "/.key"))
    }
}

/// A small tmpfs mounted for one test (root only), unmounted by `unmount()`.
struct SmallTmpfs {
    let path: String

    /// Mounts a tmpfs of `size` (e.g. "2m", read-only with `readOnly`) on a fresh directory; nil and the reason
    /// when it cannot.
    static func mount(size: String, readOnly: Bool = false) -> (SmallTmpfs?, String) {
        guard geteuid() == 0 else { return (nil, "mounting a tmpfs needs root") }
        let path = NSTemporaryDirectory() + "bottleneck-tmpfs-\(UUID().uuidString.prefix(8))"
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        let options = (readOnly ? "ro," : "") + "size=\(size)"
        let status = Self.command("/bin/mount", ["-t", "tmpfs", "-o", options, "tmpfs", path])
        guard status == 0 else {
            try? FileManager.default.removeItem(atPath: path)
            return (nil, "mount -t tmpfs failed (status \(status)): no privilege to mount here")
        }
        return (SmallTmpfs(path: path), "")
    }

    func resize(_ size: String) -> Bool {
        Self.command("/bin/mount", ["-o", "remount,size=\(size)", path]) == 0
    }

    /// Fills what space is left with a file of zeros; returns its path.
    func fill() -> String {
        let filler = path + "/filler"
        let fd = open(filler, O_WRONLY | O_CREAT | O_TRUNC, 0o600)
        let block = [UInt8](repeating: 0, count: 4096)
        while block.withUnsafeBytes({ write(fd, $0.baseAddress, $0.count) }) > 0 {}
        close(fd)
        return filler
    }

    func unmount() {
        _ = Self.command("/bin/umount", [path])
        try? FileManager.default.removeItem(atPath: path)
    }

    static func command(_ executable: String, _ arguments: [String]) -> Int32 {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: executable)
        process.arguments = arguments
        process.standardError = FileHandle.nullDevice
        guard (try? process.run()) != nil else { return -1 }
        process.waitUntilExit()
        return process.terminationStatus
    }
}

@Suite("Full and read-only disks", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct FullDiskTests {
    @Test("a full disk stops extract, train and evaluate --plot with exit 1 naming the file; extract then resumes")
    func fullDiskIsAnError() throws {
        let (mounted, reason) = SmallTmpfs.mount(size: "2m")
        guard let tmpfs = mounted else {
            print("Full disk test skipped: \(reason)")
            return
        }
        defer { tmpfs.unmount() }
        // 180 images of 64×64 at block1_pool (32×32×4 floats, 16 KiB each): 2.8 MiB of parts, as much again
        // for the assembled file. With 2 MiB the journal runs out; with 4 MiB, the assembly.
        let fixture = try DistributedFixture("full-disk", imagesPerClass: 60, validationPerClass: 0)
        defer { fixture.directory.remove() }
        func arguments(_ output: String) -> [String] {
            [
                "extract", "--train", fixture.train, "--weights", fixture.weights, "--output", output,
                "--image-size", "64", "--layer", "block1_pool", "--workers", "1", "--shard-size", "4",
                "--cache-dir", fixture.directory.file("cache"),
            ]
        }
        let reference = try HostileInputTests.run(fixture, arguments(fixture.directory.file("reference.h5")))
        #expect(reference.status == 0, "\(reference.stderr)")

        // The model (4096 inputs × 256 floats, 4 MiB) does not fit in 2 MiB.
        let model = tmpfs.path + "/model.h5"
        let train = try HostileInputTests.run(
            fixture,
            [
                "train", "--features", fixture.directory.file("reference.h5"), "--output", model, "--epochs", "1",
                "--no-validation",
            ])
        #expect(train.status == 1, "\(train.stderr)")
        #expect(!train.signalled)
        #expect(train.stderr.contains("No space left on device") && train.stderr.contains(model), "\(train.stderr)")
        #expect(!FileManager.default.fileExists(atPath: model))

        let output = tmpfs.path + "/features.h5"
        let full = try HostileInputTests.run(fixture, arguments(output), timeout: 120)
        #expect(full.status == 1, "\(full.stderr)")
        #expect(!full.signalled)
        #expect(full.stderr.contains("No space left on device"), "\(full.stderr)")
        #expect(full.stderr.contains(tmpfs.path), "\(full.stderr)")
        // Whichever write meets the full disk first (a part, or the journal line after a part that took the
        // last block) is the one named.
        #expect(
            full.stderr.contains(".parts/part-") || full.stderr.contains(".parts/journal.log"),
            "the failing write in OUTPUT.parts is named: \(full.stderr)")

        // The plot of `evaluate` on the full disk (a model trained elsewhere).
        let model2 = fixture.directory.file("model.h5")
        let features = fixture.directory.file("reference.h5")
        let trained = try HostileInputTests.run(
            fixture, ["train", "--features", features, "--output", model2, "--epochs", "1", "--no-validation"])
        #expect(trained.status == 0, "\(trained.stderr)")
        let plot = tmpfs.path + "/confusion.svg"
        let filler = tmpfs.fill()
        let evaluate = try HostileInputTests.run(
            fixture, ["evaluate", "--features", features, "--model", model2, "--split", "train", "--plot", plot])
        #expect(evaluate.status == 1, "\(evaluate.stderr)")
        #expect(evaluate.stderr.contains("No space left on device") && evaluate.stderr.contains(plot))
        #expect(!FileManager.default.fileExists(atPath: plot))
        try FileManager.default.removeItem(atPath: filler)

        #expect(tmpfs.resize("4m"))
        let assembly = try HostileInputTests.run(fixture, arguments(output), timeout: 120)
        #expect(assembly.status == 1, "\(assembly.stderr)")
        #expect(!assembly.signalled)
        #expect(assembly.stderr.contains("No space left on device"), "\(assembly.stderr)")
        #expect(assembly.stderr.contains("features.h5.tmp-"), "the assembly fills the disk: \(assembly.stderr)")
        for run in [train, full, evaluate, assembly] {
            print("full disk: \(run.stderr.split(separator: "\n").last ?? "")")
        }

        #expect(tmpfs.resize("16m"))
        let resumed = try HostileInputTests.run(fixture, arguments(output))
        #expect(resumed.status == 0, "\(resumed.stderr)")
        #expect(resumed.stderr.contains("resuming"), "\(resumed.stderr)")
        let expected = try FeatureFile.open(fixture.directory.file("reference.h5")).split("train")
        let actual = try FeatureFile.open(output).split("train")
        #expect(try actual.readFeatures(rows: 0..<actual.count) == expected.readFeatures(rows: 0..<expected.count))
        #expect(try actual.labels() == expected.labels())

    }

    @Test("an output on a read-only filesystem is reported before training as 'cannot write OUTPUT: reason'")
    func readOnlyOutputIsReportedFirst() throws {
        let (mounted, reason) = SmallTmpfs.mount(size: "1m", readOnly: true)
        guard let tmpfs = mounted else {
            print("Read-only filesystem test skipped: \(reason)")
            return
        }
        defer { tmpfs.unmount() }
        let fixture = try DistributedFixture("read-only")
        defer { fixture.directory.remove() }
        let (features, _) = try HostileInputTests.trainedModel(fixture)
        let model = tmpfs.path + "/model.h5"
        let train = try HostileInputTests.run(fixture, ["train", "--features", features, "--output", model])
        #expect(train.status == 1, "\(train.stderr)")
        #expect(train.stderr.contains("cannot write \(model): Read-only file system"), "\(train.stderr)")
        #expect(!train.stdout.contains("Epoch"), "no epoch ran: \(train.stdout)")
    }
}
