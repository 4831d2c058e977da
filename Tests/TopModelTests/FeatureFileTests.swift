import Foundation
import HDF5
import Storage
import TestSupport
import Testing

@testable import TopModel

/// Training and evaluation from real feature files, and the errors for bad ones.
@Suite("feature files")
struct FeatureFileTests {
    static let attributes = FeatureFileAttributes(
        imageHeight: 150, imageWidth: 150, preprocess: "caffe", interpolation: "nearest", layer: "block5_pool",
        weightsSHA256: String(repeating: "ab", count: 32))

    /// Writes a feature file with the given splits (InMemoryFeatures with labels).
    func write(_ path: String, classNames: [String], splits: [(String, InMemoryFeatures)]) throws {
        let writer = try FeatureFileWriter(path: path, attributes: Self.attributes, classNames: classNames)
        for (name, data) in splits {
            try writer.beginSplit(name, featureShape: data.featureShape)
            try data.features.withUnsafeBufferPointer {
                try writer.append(
                    features: $0, labels: try data.labels(), filenames: (0..<data.count).map { "c/\($0).jpg" })
            }
        }
        try writer.finish()
    }

    func blobFile(
        _ dir: TemporaryDirectory, classNames: [String] = ["a", "b", "c"], shape: [Int] = [2, 2, 8],
        validation: Bool = true, poison: (split: String, row: Int)? = nil
    ) throws -> String {
        let path = dir.file("features.h5")
        var splits = [
            ("train", try blobs(rows: 300, classes: classNames.count, featureShape: shape, noise: 1, seed: 1))
        ]
        if validation {
            splits.append(
                ("validation", try blobs(rows: 150, classes: classNames.count, featureShape: shape, noise: 1, seed: 2)))
        }
        if let poison, let index = splits.firstIndex(where: { $0.0 == poison.split }) {
            var values = splits[index].1.features
            values[poison.row * shape.reduce(1, *) + 3] = .nan
            splits[index].1 = try InMemoryFeatures(
                features: values, featureShape: shape, labels: try splits[index].1.labels())
        }
        try write(path, classNames: classNames, splits: splits)
        return path
    }

    func options() -> TrainingOptions {
        var options = TrainingOptions()
        options.epochs = 10
        options.batchSize = 25
        options.hiddenUnits = 32
        return options
    }

    @Test("training on a feature file validates on its validation split, and evaluation agrees with the last epoch")
    func trainAndEvaluate() throws {
        let dir = try TemporaryDirectory("topmodel")
        defer { dir.remove() }
        let file = try FeatureFile.open(try blobFile(dir))
        var lines: [String] = []
        let result = try TopModelTrainer.train(
            featureFile: file, options: options(),
            onEpoch: { lines.append(TrainingText.epochLine($0, epochs: 10)) })
        #expect(lines.count == 10 && lines[9].hasPrefix("Epoch 10/10 - ") && lines[9].contains("val_accuracy: "))
        #expect(result.model.provenance == FeatureProvenance(Self.attributes))
        let last = try #require(result.history.records.last)
        #expect(try #require(last.valAccuracy) >= 0.95)
        try result.model.save(to: dir.file("MODEL.h5"))
        let model = try TopModel.load(dir.file("MODEL.h5"))
        let evaluation = try model.evaluate(featureFile: file, split: "validation")
        #expect(evaluation.count == 150 && evaluation.accuracy == last.valAccuracy)
        #expect(abs(evaluation.loss - last.valLoss!) < 1e-6)
        #expect(evaluation.confusionMatrix.map { $0.reduce(0, +) } == [50, 50, 50])
        // JSON carries the contract's keys.
        let json = try JSONSerialization.jsonObject(with: try evaluation.jsonData()) as! [String: Any]
        for key in ["accuracy", "loss", "per_class", "confusion_matrix", "class_names"] {
            #expect(json[key] != nil, "\(key)")
        }
        let perClass = try #require(json["per_class"] as? [String: [String: Any]])
        #expect(Set(perClass["a"]!.keys) == ["precision", "recall", "f1", "support"])
        #expect(evaluation.report.contains("confusion matrix"))
        #expect(evaluation.confusionMatrixSVG.hasPrefix("<svg"))
    }

    @Test("streaming a feature file in chunks trains to the same standard")
    func streamed() throws {
        let dir = try TemporaryDirectory("topmodel")
        defer { dir.remove() }
        let file = try FeatureFile.open(try blobFile(dir))
        var o = options()
        o.inMemoryLimitBytes = 0
        o.streamChunkBytes = 60 * 32 * 4
        let result = try TopModelTrainer.train(featureFile: file, options: o)
        #expect(try #require(result.history.records.last?.valAccuracy) >= 0.95)
    }

    @Test("a missing split is an error naming the file and the splits it has")
    func missingSplit() throws {
        let dir = try TemporaryDirectory("topmodel")
        defer { dir.remove() }
        let path = try blobFile(dir, validation: false)
        let file = try FeatureFile.open(path)
        let error = try #require(throws: TopModelError.self) {
            try TopModelTrainer.train(featureFile: file, validationSplit: .named("validation"), options: options())
        }
        #expect(
            error.description.contains(path) && error.description.contains("no split 'validation' (has: train)"),
            "\(error)")
        // Automatic validation simply trains without one.
        let result = try TopModelTrainer.train(featureFile: file, options: options())
        #expect(result.history.records.allSatisfy { $0.valLoss == nil })
    }

    @Test("a feature file without labels is refused for training and evaluation")
    func unlabelled() throws {
        let dir = try TemporaryDirectory("topmodel")
        defer { dir.remove() }
        // Written by hand: the writer always stores labels.
        let path = dir.file("unlabelled.h5")
        let h5 = try HDF5File.create(path)
        let a = h5.root.attributes
        try a.set("format", string: "bottleneck-features")
        try a.set("format_version", int: 1)
        for (key, value) in [
            ("model", "vgg16"), ("layer", "block5_pool"), ("preprocess", "caffe"), ("interpolation", "nearest"),
            ("data_format", "channels_last"), ("weights_sha256", "00"),
        ] {
            try a.set(key, string: value)
        }
        try a.set("image_height", int: 150)
        try a.set("image_width", int: 150)
        _ = try h5.root.writeStrings("class_names", ["a", "b"])
        _ = try h5.root.createGroup("train").write(
            "features", [Float](repeating: 1, count: 4 * 8), shape: [4, 1, 1, 8])
        h5.close()
        let file = try FeatureFile.open(path)
        let error = try #require(throws: TopModelError.self) {
            try TopModelTrainer.train(featureFile: file, options: options())
        }
        #expect(
            error.description.contains(path) && error.description.contains("split 'train'")
                && error.description.contains("labels"), "\(error)")
        let model = try TopModel(
            classNames: ["a", "b"], featureShape: [1, 1, 8], provenance: testProvenance,
            weights: .glorotUniform(inputs: 8, hidden: 4, classes: 2, seed: 0))
        let evaluationError = try #require(throws: TopModelError.self) {
            try model.evaluate(featureFile: file, split: "train")
        }
        #expect(evaluationError.description.contains("labels"), "\(evaluationError)")
    }

    @Test("non-finite feature values are refused, naming the split and the row", arguments: ["train", "validation"])
    func nonFinite(split: String) throws {
        let dir = try TemporaryDirectory("topmodel")
        defer { dir.remove() }
        let path = try blobFile(dir, poison: (split, 17))
        let error = try #require(throws: TopModelError.self) {
            try TopModelTrainer.train(featureFile: try FeatureFile.open(path), options: options())
        }
        #expect(error.description.contains("\(path): split '\(split)': row 17 has a non-finite"), "\(error)")
        // Streamed reading finds it too.
        var o = options()
        o.inMemoryLimitBytes = 0
        o.streamChunkBytes = 1
        let streamed = try #require(throws: TopModelError.self) {
            try TopModelTrainer.train(featureFile: try FeatureFile.open(path), options: o)
        }
        #expect(streamed.description.contains("split '\(split)': row 17 has a non-finite"), "\(streamed)")
    }

    @Test("a model trained on another class set or feature shape is refused, naming the difference")
    func mismatchedModel() throws {
        let dir = try TemporaryDirectory("topmodel")
        defer { dir.remove() }
        let model = try TopModel(
            classNames: ["a", "b", "c"], featureShape: [2, 2, 8], provenance: testProvenance,
            weights: .glorotUniform(inputs: 32, hidden: 4, classes: 3, seed: 0))
        let otherClasses = try FeatureFile.open(try blobFile(dir, classNames: ["a", "b", "zebra"]))
        let error = try #require(throws: TopModelError.self) { try model.evaluate(featureFile: otherClasses) }
        #expect(
            error.description.contains("missing c") && error.description.contains("not in the model: zebra"), "\(error)"
        )
        let dir2 = try TemporaryDirectory("topmodel")
        defer { dir2.remove() }
        let otherShape = try FeatureFile.open(try blobFile(dir2, shape: [1, 1, 32]))
        let shapeError = try #require(throws: TopModelError.self) { try model.evaluate(featureFile: otherShape) }
        #expect(
            shapeError.description.contains("feature shape [1, 1, 32], but the model was trained on [2, 2, 8]"),
            "\(shapeError)")
        let reordered = try #require(throws: TopModelError.self) {
            try model.checkCompatible(classNames: ["b", "a", "c"], featureShape: [2, 2, 8], source: "x.h5")
        }
        #expect(reordered.description.contains("different order"))
    }

    @Test("bad options and labels out of range are clear errors")
    func badOptions() throws {
        let data = try blobs(rows: 30, classes: 3, featureShape: [1, 1, 4], noise: 1, seed: 1)
        var o = options()
        o.batchSize = 0
        #expect(throws: TopModelError.invalidArgument("batch size must be at least 1, got 0")) {
            try TopModelTrainer.train(
                train: data, validation: nil, classNames: ["a", "b", "c"], provenance: testProvenance, options: o)
        }
        let error = try #require(throws: TopModelError.self) {
            try TopModelTrainer.train(
                train: data, validation: nil, classNames: ["a", "b"], provenance: testProvenance, options: options())
        }
        #expect(error.description.contains("row 2 has label 2, expected 0..<2"), "\(error)")
        #expect(throws: TopModelError.self) { try OptimizerConfiguration.named("adagrad") }
        var early = options()
        early.earlyStoppingPatience = 2
        let earlyError = try #require(throws: TopModelError.self) {
            try TopModelTrainer.train(
                train: data, validation: nil, classNames: ["a", "b", "c"], provenance: testProvenance, options: early)
        }
        #expect(earlyError.description.contains("validation"))
    }
}
