import Foundation
import HDF5
import Storage
import TestSupport
import Testing

@Suite("Feature file")
struct FeatureFileTests {
    static let attributes = FeatureFileAttributes(
        imageHeight: 150, imageWidth: 150, preprocess: "caffe", interpolation: "nearest", layer: "block5_pool",
        weightsSHA256: String(repeating: "ab", count: 32))

    @Test("rows, labels, names and skipped files written in order are read back in the same order")
    func roundTrip() throws {
        let directory = try TemporaryDirectory("features")
        defer { directory.remove() }
        let path = directory.file("features.h5")
        let writer = try FeatureFileWriter(path: path, attributes: Self.attributes, classNames: ["cat", "dog"])
        try writer.beginSplit("train", featureShape: [1, 2, 3])
        let rows = (0..<(5 * 6)).map { Float($0) }
        try rows.withUnsafeBufferPointer { buffer in
            try writer.append(
                features: UnsafeBufferPointer(rebasing: buffer[0..<12]), labels: [0, 0],
                filenames: ["cat/a.jpg", "cat/b.jpg"])
            try writer.append(
                features: UnsafeBufferPointer(rebasing: buffer[12..<30]), labels: [1, 1, 1],
                filenames: ["dog/a.jpg", "dog/b.jpg", "dog/c.jpg"])
        }
        try writer.recordSkipped(filename: "dog/bad.jpg", reason: "dog/bad.jpg: empty file")
        try writer.beginSplit("validation", featureShape: [1, 2, 3])
        #expect(!FileManager.default.fileExists(atPath: path), "the output path stays empty until finish()")
        try writer.finish()
        #expect(!FileManager.default.fileExists(atPath: writer.temporaryPath))

        let file = try FeatureFile.open(path)
        #expect(file.classNames == ["cat", "dog"])
        #expect(file.attributes == Self.attributes)
        #expect(file.splitNames == ["train", "validation"])
        let train = try file.split("train")
        #expect(train.count == 5)
        #expect(train.featureShape == [1, 2, 3])
        #expect(try train.labels() == [0, 0, 1, 1, 1])
        #expect(try train.filenames() == ["cat/a.jpg", "cat/b.jpg", "dog/a.jpg", "dog/b.jpg", "dog/c.jpg"])
        #expect(try train.readFeatures(rows: 0..<5) == rows)
        #expect(try train.readFeatures(rows: 3..<4) == Array(rows[18..<24]))
        #expect(try train.skipped().map(\.filename) == ["dog/bad.jpg"])
        #expect(try file.split("validation").count == 0)
    }

    @Test("an abandoned writer leaves no file behind, and a half-described row is refused")
    func abandonedAndMismatched() throws {
        let directory = try TemporaryDirectory("features-abandoned")
        defer { directory.remove() }
        let path = directory.file("features.h5")
        var temporary = ""
        do {
            let writer = try FeatureFileWriter(path: path, attributes: Self.attributes, classNames: ["a"])
            temporary = writer.temporaryPath
            try writer.beginSplit("train", featureShape: [1, 1, 2])
            let error = #expect(throws: StorageError.self) {
                try [Float](repeating: 0, count: 4).withUnsafeBufferPointer {
                    try writer.append(features: $0, labels: [0], filenames: ["a/x.jpg"])
                }
            }
            #expect(error?.description.contains("do not describe the same rows") == true)
            #expect(FileManager.default.fileExists(atPath: temporary))
        }
        #expect(!FileManager.default.fileExists(atPath: temporary))
        #expect(!FileManager.default.fileExists(atPath: path))
    }

    @Test("a missing split, a foreign HDF5 file and missing labels get messages naming them")
    func badFiles() throws {
        let directory = try TemporaryDirectory("features-bad")
        defer { directory.remove() }
        let path = directory.file("features.h5")
        let writer = try FeatureFileWriter(path: path, attributes: Self.attributes, classNames: ["a"])
        try writer.beginSplit("train", featureShape: [1, 1, 1])
        try writer.finish()
        let file = try FeatureFile.open(path)
        let missing = #expect(throws: StorageError.self) { try file.split("validation") }
        #expect(missing?.description == "\(path): no split 'validation' (has: train)")

        let foreign = directory.file("foreign.h5")
        let other = try HDF5File.create(foreign)
        try other.root.write("x", [1] as [Float], shape: [1])
        other.close()
        let notOurs = #expect(throws: StorageError.self) { try FeatureFile.open(foreign) }
        #expect(notOurs?.description.contains("not a bottleneck feature file") == true)

        let unlabelled = directory.file("unlabelled.h5")
        let bare = try HDF5File.create(unlabelled)
        try bare.root.attributes.set("format", string: "bottleneck-features")
        try bare.root.attributes.set("format_version", int: 1)
        for (key, value) in [
            ("model", "vgg16"), ("layer", "block5_pool"), ("preprocess", "caffe"),
            ("interpolation", "nearest"), ("data_format", "channels_last"), ("weights_sha256", "00"),
        ] {
            try bare.root.attributes.set(key, string: value)
        }
        try bare.root.attributes.set("image_height", int: 32)
        try bare.root.attributes.set("image_width", int: 32)
        try bare.root.writeStrings("class_names", ["a"])
        try bare.root.write("train/features", [Float](repeating: 1, count: 2), shape: [2, 1, 1, 1])
        bare.close()
        let noLabels = #expect(throws: StorageError.self) { try FeatureFile.open(unlabelled).split("train").labels() }
        #expect(noLabels?.description == "\(unlabelled): split 'train' has no labels dataset")
    }

    @Test("rows appended a few at a time are gathered into blocks of chunks and read back in order")
    func rowsGatheredIntoBlocks() throws {
        let directory = try TemporaryDirectory("features-blocks")
        defer { directory.remove() }
        let path = directory.file("features.h5")
        // Rows of 256 KiB: 4 per chunk, 32 per 8 MiB write block, so 70 rows in threes span three blocks.
        let shape = [1, 256, 256]
        let rowSize = 65_536
        #expect(FeatureFileWriter.writeBlockRows(featureSize: rowSize) == 32)
        let writer = try FeatureFileWriter(path: path, attributes: Self.attributes, classNames: ["a"])
        try writer.beginSplit("train", featureShape: shape)
        var row = 0
        while row < 70 {
            let count = min(3, 70 - row)
            let values = (row..<(row + count)).flatMap { r in (0..<rowSize).map { Float(r * 7 + $0 % 5) } }
            try values.withUnsafeBufferPointer {
                try writer.append(
                    features: $0, labels: (row..<(row + count)).map { Int32($0 % 2) },
                    filenames: (row..<(row + count)).map { "a/\($0).jpg" })
            }
            row += count
        }
        // A batch larger than a block is written at once.
        try writer.beginSplit("validation", featureShape: shape)
        let large = (0..<40).flatMap { r in (0..<rowSize).map { Float(r + $0 % 3) } }
        try large.withUnsafeBufferPointer {
            try writer.append(
                features: $0, labels: [Int32](repeating: 0, count: 40), filenames: (0..<40).map { "a/\($0).jpg" })
        }
        try writer.finish()

        let file = try FeatureFile.open(path)
        let train = try file.split("train")
        #expect(train.count == 70)
        #expect(try train.filenames() == (0..<70).map { "a/\($0).jpg" })
        for r in [0, 2, 3, 31, 32, 33, 63, 64, 69] {
            let values = try train.readFeatures(rows: r..<(r + 1))
            #expect(values == (0..<rowSize).map { Float(r * 7 + $0 % 5) }, "row \(r)")
        }
        let validation = try file.split("validation")
        #expect(validation.count == 40)
        #expect(try validation.readFeatures(rows: 39..<40) == (0..<rowSize).map { Float(39 + $0 % 3) })
    }

    @Test("a virtual split maps each source file once, whatever rows of it are left out, and reads in order")
    func virtualSplitMapsEachSourceOnce() throws {
        let directory = try TemporaryDirectory("features-virtual")
        defer { directory.remove() }
        // Two source files of 10 rows of 2 values: row r of file f holds (f * 100 + r, -1).
        for file in 0..<2 {
            let source = try HDF5File.create(directory.file("source-\(file).h5"))
            let values: [Float] = (0..<10).flatMap { [Float(file * 100 + $0), -1] }
            try source.root.write("features", values, shape: [10, 1, 1, 2])
            source.close()
        }
        let path = directory.file("virtual.h5")
        let writer = try FeatureFileWriter(path: path, attributes: Self.attributes, classNames: ["a"])
        try writer.beginSplit("train", featureShape: [1, 1, 2], virtual: true)
        // Rows 3, 7 and 8 of file 0 and row 0 of file 1 are left out (skipped images).
        let runs: [(Int, Range<Int>)] = [(0, 0..<3), (0, 4..<7), (0, 9..<10), (1, 1..<5), (1, 5..<10)]
        var expected: [Float] = []
        for (file, rows) in runs {
            try writer.appendMapped(
                sourceFile: "source-\(file).h5", sourceDataset: "features", sourceRows: rows,
                labels: rows.map { _ in 0 }, filenames: rows.map { "a/\(file)-\($0).jpg" })
            expected += rows.flatMap { [Float(file * 100 + $0), Float(-1)] }
        }
        try writer.finish()
        let split = try FeatureFile.open(path).split("train")
        #expect(split.count == 16)
        #expect(try split.readFeatures(rows: 0..<16) == expected)
        #expect(try split.readFeatures(rows: 6..<8) == [9, -1, 101, -1])
        let mappings = try HDF5File.open(path).root.dataset("train/features").virtualMappingCount()
        #expect(mappings == 2, "one mapping per source file")
    }
}
