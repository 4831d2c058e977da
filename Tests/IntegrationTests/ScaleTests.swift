import Foundation
import Storage
import TestSupport
import Testing
import VGG16

/// List input and the coordinator under many workers: `extract --train-list`, and `bottleneck-loadgen`'s
/// simulated workers (dying, hanging and sending late duplicates) against the real coordinator.
@Suite("Scale: list input and many workers", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct ScaleTests {
    /// A CSV list of `rows` rows over `fixture`'s training images, every `missingEvery`-th row naming a file that
    /// does not exist; returns the list's path and, per row, its filename and class.
    func writeList(
        _ fixture: DistributedFixture, name: String, rows: Int, files: [(filename: String, className: String)],
        missingEvery: Int
    ) throws -> (path: String, rows: [(filename: String, className: String)]) {
        var listed: [(filename: String, className: String)] = []
        var text = "id,class,filename\n"
        for row in 0..<rows {
            var entry = files[row % files.count]
            if row % missingEvery == missingEvery - 1 { entry.filename = "\(entry.className)/gone \(row).jpg" }
            listed.append(entry)
            text += "\(row),\(entry.className),\"\(entry.filename)\"\n"
        }
        let path = fixture.directory.file(name)
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        return (path, listed)
    }

    @Test(
        "a list job with missing files: rows in list order, missing files skipped as missing, same features as the tree"
    )
    func listWithMissingFiles() throws {
        let fixture = try DistributedFixture("list-input", imagesPerClass: 4, validationPerClass: 2)
        defer { fixture.directory.remove() }
        // A JPEG too, made here, next to the fixture's PPM files.
        let rgb = DistributedFixture.pattern(99)
        try ImageFiles.write(
            try ImageFiles.jpeg(rgb, width: 40, height: 40, channels: 3), to: fixture.train + "/fox/photo.jpg")
        let tree = try fixture.runCoordinator(fixture.extractArguments("tree.h5", ["--workers", "1"]))
        #expect(tree.status == 0, "tree run:\n\(tree.stderr)")
        let reference = try FeatureSnapshot(fixture.directory.file("tree.h5"))
        let treeTrain = try #require(reference.splits["train"])
        // The list names the tree's files in reverse order (the list's order is kept), plus missing ones.
        let classNames = DistributedFixture.classes
        let files =
            zip(treeTrain.filenames, treeTrain.labels).reversed().map { ($0.0, classNames[Int($0.1)]) }
            + [("dog/broken.ppm", "dog")]
        let train = try writeList(fixture, name: "train.csv", rows: files.count + 3, files: files, missingEvery: 4)
        var validationText = "filename,class\n"
        for name in classNames { validationText += "\(name)/img000.ppm,\(name)\n\(name)/lost.png,\(name)\n" }
        try Data(validationText.utf8).write(to: URL(fileURLWithPath: fixture.directory.file("validation.csv")))
        let arguments = [
            "extract", "--train-list", train.path, "--validation-list", fixture.directory.file("validation.csv"),
            "--directory", fixture.train, "--weights", fixture.weights, "--output", fixture.directory.file("list.h5"),
            "--image-size", "32", "--cache-dir", fixture.directory.file("cache"), "--workers", "1", "--shard-size", "3",
        ]
        let run = try fixture.runCoordinator(arguments)
        #expect(run.status == 0, "list run:\n\(run.stderr)")
        let snapshot = try FeatureSnapshot(fixture.directory.file("list.h5"))
        #expect(snapshot.classNames == classNames)
        let listTrain = try #require(snapshot.splits["train"])
        let kept = train.rows.filter { !$0.filename.contains("gone ") && !$0.filename.hasSuffix("broken.ppm") }
        #expect(listTrain.filenames == kept.map(\.filename), "rows in the list's order, missing ones left out")
        #expect(listTrain.labels == kept.map { Int32(classNames.firstIndex(of: $0.className)!) })
        let missing = train.rows.filter { $0.filename.contains("gone ") }.map { "\($0.filename): missing" }
        #expect(missing.count == 4)
        #expect(missing.allSatisfy(listTrain.skipped.contains), "skipped: \(listTrain.skipped)")
        #expect(listTrain.skipped.contains { $0.hasPrefix("dog/broken.ppm: ") }, "undecodable as in the tree")
        // Same image, same features: every row equals the tree's row of that file.
        let size = treeTrain.featureShape.reduce(1, *)
        for (row, filename) in listTrain.filenames.enumerated() {
            let treeRow = try #require(treeTrain.filenames.firstIndex(of: filename))
            #expect(
                Array(listTrain.features[(row * size)..<((row + 1) * size)])
                    == Array(treeTrain.features[(treeRow * size)..<((treeRow + 1) * size)]), "\(filename)")
        }
        let validation = try #require(snapshot.splits["validation"])
        #expect(validation.filenames == classNames.map { "\($0)/img000.ppm" })
        #expect(validation.skipped.sorted() == classNames.map { "\($0)/lost.png: missing" }.sorted())
        // The workers read the files themselves: the same output, missing files skipped the same way.
        let sharedArguments = arguments.map {
            $0 == fixture.directory.file("list.h5") ? fixture.directory.file("shared.h5") : $0
        }
        let shared = try fixture.runCoordinator(sharedArguments + ["--shared-filesystem"])
        #expect(shared.status == 0, "shared-filesystem list run:\n\(shared.stderr)")
        #expect(try FeatureSnapshot(fixture.directory.file("shared.h5")) == snapshot)
    }

    @Test("list input refuses mixed options, names the line of a bad list, and wants the same classes in both lists")
    func listUsageAndErrors() throws {
        let fixture = try DistributedFixture("list-errors", imagesPerClass: 1, validationPerClass: 1)
        defer { fixture.directory.remove() }
        let list = fixture.directory.file("bad.csv")
        try Data("filename,class\ncat/img000.ppm,cat\ndog/img000.ppm,\n".utf8).write(to: URL(fileURLWithPath: list))
        let common = ["--weights", fixture.weights, "--image-size", "32", "--workers", "1"]
        let both = try fixture.runCoordinator(
            ["extract", "--train", fixture.train, "--train-list", list, "--output", fixture.directory.file("a.h5")]
                + common)
        #expect(both.status == 2, "\(both.stderr)")
        #expect(both.stderr.contains("--train and --train-list"))
        let mixed = try fixture.runCoordinator(
            [
                "extract", "--train-list", list, "--validation", fixture.validation, "--output",
                fixture.directory.file("b.h5"),
            ] + common)
        #expect(mixed.status == 2, "\(mixed.stderr)")
        let bad = try fixture.runCoordinator(
            ["extract", "--train-list", list, "--directory", fixture.train, "--output", fixture.directory.file("c.h5")]
                + common)
        #expect(bad.status == 1, "\(bad.stderr)")
        #expect(bad.stderr.contains("bad.csv, line 3, column 2: empty class"), "\(bad.stderr)")
        let good = fixture.directory.file("good.csv")
        try Data("filename,class\ncat/img000.ppm,cat\ndog/img000.ppm,dog\n".utf8).write(to: URL(fileURLWithPath: good))
        let other = fixture.directory.file("other.csv")
        try Data("filename,class\ncat/img000.ppm,cat\n".utf8).write(to: URL(fileURLWithPath: other))
        let classes = try fixture.runCoordinator(
            [
                "extract", "--train-list", good, "--validation-list", other, "--directory", fixture.validation,
                "--output", fixture.directory.file("d.h5"),
            ] + common)
        #expect(classes.status == 1, "\(classes.stderr)")
        #expect(classes.stderr.contains("has classes [cat], the training list has [cat, dog]"), "\(classes.stderr)")
        let stray = try fixture.runCoordinator(
            [
                "extract", "--train", fixture.train, "--directory", fixture.train, "--output",
                fixture.directory.file("e.h5"),
            ] + common)
        #expect(stray.status == 2, "\(stray.stderr)")
    }

    /// Plain mode: features over the wire; shared filesystem: the simulated workers write the part files.
    @Test(
        "200 simulated workers, some dying, some hanging, all sending late duplicates: every image exactly once",
        arguments: [false, true])
    func loadGeneratorChaos(sharedFilesystem: Bool) throws {
        guard FileManager.default.isExecutableFile(atPath: BuiltExecutables.loadgen) else {
            Issue.record("bottleneck-loadgen is not built next to the tests")
            return
        }
        let fixture = try DistributedFixture(
            sharedFilesystem ? "loadgen-shared" : "loadgen", imagesPerClass: 1, validationPerClass: 1)
        defer { fixture.directory.remove() }
        // 20,000 rows naming one real JPEG (the coordinator reads it in plain mode), every 500th row missing. In
        // shared-filesystem mode no one reads the images (the simulated workers compute nothing): no row is missing.
        try ImageFiles.write(
            try ImageFiles.jpeg(DistributedFixture.pattern(5), width: 40, height: 40, channels: 3),
            to: fixture.directory.file("one.jpg"))
        let rows = 20_000
        var text = "filename,class\n"
        for row in 0..<rows { text += row % 500 == 499 ? "gone-\(row).jpg,c\(row % 3)\n" : "one.jpg,c\(row % 3)\n" }
        let list = fixture.directory.file("big.csv")
        try Data(text.utf8).write(to: URL(fileURLWithPath: list))
        let port = freeTCPPort()
        let endpoint = "tcp://127.0.0.1:\(port)"
        let coordinator = try fixture.startCoordinator(
            [
                "extract", "--train-list", list, "--directory", fixture.directory.path, "--weights", fixture.weights,
                "--output", fixture.directory.file("load.h5"), "--image-size", "32", "--workers", "0", "--bind",
                endpoint, "--worker-timeout", "2", "--heartbeat-interval", "0.5", "--json-progress",
            ] + (sharedFilesystem ? ["--shared-filesystem"] : []))
        let loadgen = try ChildProcess(
            BuiltExecutables.loadgen,
            [
                "--connect", endpoint, "--workers", "200", "--images-per-second", "100", "--kill-fraction", "0.05",
                "--stall-fraction", "0.03", "--stall-seconds", "3", "--duplicate-results", "--duplicate-delay",
                "0.2", "--give-up-after", "60",
            ], logDirectory: fixture.directory.path, label: "loadgen")
        #expect(coordinator.wait(timeout: 300) == 0, "coordinator:\n\(coordinator.stderr.suffix(3000))")
        #expect(loadgen.wait(timeout: 60) == 0, "loadgen:\n\(loadgen.stderr.suffix(3000))")
        let summary = try #require(
            coordinator.stdout.split(separator: "\n").last { $0.contains("\"event\":\"summary\"") })
        let figures = try #require(
            try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any])
        print(
            "loadgen chaos: coordinator \(figures["shards_retried"] ?? "?") retried, "
                + "\(figures["duplicates_dropped"] ?? "?") duplicates dropped; loadgen \(loadgen.stdout)")

        let file = try FeatureFile.open(fixture.directory.file("load.h5"))
        let split = try file.split("train")
        let isMissing = { (index: Int) in !sharedFilesystem && index % 500 == 499 }
        let missing = (0..<rows).filter(isMissing)
        #expect(split.count == rows - missing.count, "every listed image that exists is a row, once")
        #expect(try split.skipped().map(\.reason) == Array(repeating: "missing", count: missing.count))
        let labels = try split.labels()
        let features = try split.readFeatures(rows: 0..<split.count)
        let size = split.featureSize
        var row = 0
        var wrong: [Int] = []
        for index in 0..<rows where !isMissing(index) {
            let expected = Float(index % 4096)
            let values = features[(row * size)..<((row + 1) * size)]
            if labels[row] != Int32(index % 3) || values.contains(where: { $0 != expected }) { wrong.append(index) }
            row += 1
        }
        #expect(wrong.isEmpty, "rows with other values than i % 4096 or another label: \(wrong.prefix(10))")
    }

    /// Plain mode: shards go out only while the feature bytes they may bring, plus those received and not yet
    /// written, fit the result-memory budget. 50 simulated workers want 100 shards at once; a 1 MiB budget holds 4
    /// shards of 32 images of 2×2×512 features (256 KiB each).
    @Test("plain mode: the feature bytes on their way to the coordinator never exceed the result-memory budget")
    func resultMemoryBudgetHolds() throws {
        guard FileManager.default.isExecutableFile(atPath: BuiltExecutables.loadgen) else {
            Issue.record("bottleneck-loadgen is not built next to the tests")
            return
        }
        let fixture = try DistributedFixture("loadgen-budget", imagesPerClass: 1, validationPerClass: 1)
        defer { fixture.directory.remove() }
        let weights = fixture.directory.file("wide.h5")
        try VGG16Weights.generated(widths: Array(DistributedFixture.narrowWidths.dropLast()) + [512], seed: 3)
            .writeOfficialLayout(to: weights)
        try ImageFiles.write(
            try ImageFiles.jpeg(DistributedFixture.pattern(5), width: 40, height: 40, channels: 3),
            to: fixture.directory.file("one.jpg"))
        let rows = 2_000
        let list = fixture.directory.file("list.csv")
        try Data(("filename,class\n" + (0..<rows).map { "one.jpg,c\($0 % 2)\n" }.joined()).utf8)
            .write(to: URL(fileURLWithPath: list))
        let endpoint = "tcp://127.0.0.1:\(freeTCPPort())"
        let output = fixture.directory.file("budget.h5")
        let coordinator = try fixture.startCoordinator([
            "extract", "--train-list", list, "--directory", fixture.directory.path, "--weights", weights, "--output",
            output, "--image-size", "64", "--shard-size", "32", "--workers", "0", "--bind", endpoint,
            "--result-memory", "1", "--json-progress",
        ])
        let loadgen = try ChildProcess(
            BuiltExecutables.loadgen,
            ["--connect", endpoint, "--workers", "50", "--images-per-second", "400", "--give-up-after", "60"],
            logDirectory: fixture.directory.path, label: "loadgen")
        #expect(coordinator.wait(timeout: 300) == 0, "coordinator:\n\(coordinator.stderr.suffix(3000))")
        #expect(loadgen.wait(timeout: 60) == 0, "loadgen:\n\(loadgen.stderr.suffix(3000))")
        let summary = try #require(
            coordinator.stdout.split(separator: "\n").last { $0.contains("\"event\":\"summary\"") })
        let figures = try #require(try JSONSerialization.jsonObject(with: Data(summary.utf8)) as? [String: Any])
        let budget = try #require(figures["result_bytes_budget"] as? Int)
        let reserved = try #require(figures["peak_result_bytes_reserved"] as? Int)
        let unwritten = try #require(figures["peak_unwritten_bytes"] as? Int)
        let shardBytes = 32 * 2 * 2 * 512 * 4
        #expect(budget == 1 << 20)
        #expect(reserved <= budget, "reserved \(reserved) of \(budget)")
        #expect(reserved > budget - shardBytes, "the budget was reached (100 shards wanted, room for 4)")
        #expect(unwritten <= reserved && unwritten >= shardBytes, "received and not yet written: \(unwritten)")
        #expect(figures["images"] as? Int == rows)
        let check = try ChildProcess(
            BuiltExecutables.loadgen, ["check", output], logDirectory: fixture.directory.path, label: "check")
        #expect(check.wait(timeout: 120) == 0, "check:\n\(check.stdout)\n\(check.stderr)")
    }
}
