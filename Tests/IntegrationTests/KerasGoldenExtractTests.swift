import Foundation
import HDF5
import Storage
import TestSupport
import Testing

/// `extract` end to end (real coordinator and worker processes) on the Keras fixture tree, against the
/// file list, labels and features Keras itself produced (Tests/Fixtures/keras, README there).
@Suite("extract equals Keras on the golden tree", .enabled(if: BuiltExecutables.available))
struct KerasGoldenExtractTests {
    static let keras = fixturesDirectory() + "/keras"

    struct Golden {
        let classNames: [String]
        let filenames: [String]
        let labels: [Int32]
        let loadable: [UInt8]
        let features: [Float]
        let rowSize: Int
        let rows: [Int]?

        init(dataset: String, rows: String? = nil) throws {
            let file = try HDF5File.open(keras + "/golden.h5")
            classNames = try file.root.dataset("class_names").readStrings()
            filenames = try file.root.dataset("train/filenames").readStrings()
            labels = try file.root.dataset("train/labels").read(Int32.self)
            loadable = try file.root.dataset("train/loadable").read(UInt8.self)
            let features = try file.root.dataset("train/\(dataset)")
            self.features = try features.read(Float.self)
            rowSize = features.shape.dropFirst().reduce(1, *)
            self.rows = try rows.map { try file.root.dataset("train/\($0)").read(Int32.self).map(Int.init) }
        }
    }

    /// Runs `extract` on the fixture tree's train split and returns the feature file.
    static func extract(weights: String, extra: [String], in directory: TemporaryDirectory) throws -> FeatureFile {
        let output = directory.file("features-\(UUID().uuidString.prefix(6)).h5")
        let run = try ChildProcess(
            BuiltExecutables.coordinator,
            [
                "extract", "--train", keras + "/tree/train", "--weights", keras + "/weights/" + weights, "--output",
                output,
                "--workers", "1", "--shard-size", "7", "--log-level", "warning",
            ] + extra,
            logDirectory: directory.path, label: "extract")
        let status = run.wait(timeout: 300)
        #expect(status == 0, "extract failed: \(run.stderr)")
        return try FeatureFile.open(output)
    }

    /// Compares the train split with Keras: rows are Keras' loadable files minus the TIFF (not decoded here),
    /// in Keras' order, with Keras' labels; every other listed file is skipped with a reason.
    static func check(_ file: FeatureFile, against golden: Golden, maxRelativeError: inout Float) throws {
        #expect(file.classNames == golden.classNames)
        let split = try file.split("train")
        let kept = golden.filenames.indices.filter {
            golden.loadable[$0] == 1 && !golden.filenames[$0].hasSuffix(".TIF")
        }
        #expect(try split.filenames() == kept.map { golden.filenames[$0] })
        #expect(try split.labels() == kept.map { golden.labels[$0] })
        let skipped = try split.skipped()
        #expect(
            Set(skipped.map(\.filename))
                == Set(golden.filenames.indices.filter { !kept.contains($0) }.map { golden.filenames[$0] }))
        #expect(skipped.allSatisfy { !$0.reason.isEmpty })
        let ours = try split.readFeatures(rows: 0..<split.count)
        let scale = golden.features.map(abs).max() ?? 1
        var worst: Float = 0
        for (row, index) in kept.enumerated() {
            for k in 0..<golden.rowSize {
                worst = max(
                    worst, abs(ours[row * golden.rowSize + k] - golden.features[index * golden.rowSize + k]) / scale)
            }
        }
        maxRelativeError = worst
        #expect(worst <= 1e-4, "largest difference \(worst) of the largest magnitude \(scale)")
    }

    @Test(
        "caffe features within 1e-4 of Keras from each of the four weight layouts (and the full file)",
        arguments: [
            "notop-official.h5", "full-official.h5", "keras2-save-weights.h5", "keras3.weights.h5", "theano-gist.h5",
        ])
    func caffeAllLayouts(weights: String) throws {
        let directory = try TemporaryDirectory("golden-extract")
        defer { directory.remove() }
        var error: Float = 0
        let file = try Self.extract(
            weights: weights, extra: ["--image-size", "48", "--preprocess", "caffe"], in: directory)
        try Self.check(file, against: Golden(dataset: "features_caffe"), maxRelativeError: &error)
        print("golden extract \(weights) caffe 48x48: max relative error \(error)")
    }

    @Test("rescale features within 1e-4 of Keras' ImageDataGenerator(rescale=1/255)")
    func rescale() throws {
        let directory = try TemporaryDirectory("golden-rescale")
        defer { directory.remove() }
        var error: Float = 0
        let file = try Self.extract(
            weights: "notop-official.h5", extra: ["--image-size", "48", "--preprocess", "rescale"], in: directory)
        try Self.check(file, against: Golden(dataset: "features_rescale"), maxRelativeError: &error)
        print("golden extract rescale 48x48: max relative error \(error)")
    }

    @Test("a non-square 64x80 input gives Keras' 2x2 features")
    func nonSquare() throws {
        let directory = try TemporaryDirectory("golden-64x80")
        defer { directory.remove() }
        let golden = try Golden(dataset: "features_caffe_64x80", rows: "indices_64x80")
        let file = try Self.extract(weights: "notop-official.h5", extra: ["--image-size", "64x80"], in: directory)
        let split = try file.split("train")
        #expect(split.featureShape == [2, 2, 16])
        let names = try split.filenames()
        let ours = try split.readFeatures(rows: 0..<split.count)
        let scale = golden.features.map(abs).max() ?? 1
        for (g, index) in (golden.rows ?? []).enumerated() {
            let row = try #require(names.firstIndex(of: golden.filenames[index]))
            for k in 0..<golden.rowSize {
                #expect(abs(ours[row * golden.rowSize + k] - golden.features[g * golden.rowSize + k]) <= 1e-4 * scale)
            }
        }
    }

    @Test("a validation tree with other classes than the training tree is refused with both class lists")
    func classMismatchRefused() throws {
        let directory = try TemporaryDirectory("golden-classes")
        defer { directory.remove() }
        let run = try ChildProcess(
            BuiltExecutables.coordinator,
            [
                "extract", "--train", Self.keras + "/tree/train", "--validation", Self.keras + "/tree/validation",
                "--weights", Self.keras + "/weights/notop-official.h5", "--output", directory.file("f.h5"), "--workers",
                "1",
            ],
            logDirectory: directory.path, label: "extract")
        #expect(run.wait(timeout: 120) == 1)
        #expect(run.stderr.contains("has classes [Zebra, cat, dog]"), "stderr: \(run.stderr)")
        #expect(!FileManager.default.fileExists(atPath: directory.file("f.h5")))
    }
}
