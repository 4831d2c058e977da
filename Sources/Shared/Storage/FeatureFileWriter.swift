import FileIntegrity
import Foundation
import HDF5

/// Writes a feature file (layout in the README, "Files") under a temporary name and renames it to
/// its final path in `finish()`, so that a file at the output path is always whole.
///
/// Splits are written one after another: `beginSplit`, any number of `append` and `recordSkipped`,
/// then the next `beginSplit` or `finish`. Features stream to disk as they are appended; labels and
/// file names are held until the split ends (they are a small fraction of the features).
/// Not thread-safe: one writer, one thread.
public final class FeatureFileWriter {
    public let path: String
    public let temporaryPath: String
    private let file: HDF5File
    private var current: OpenSplit?
    private var finished = false

    private struct OpenSplit {
        let name: String
        let features: HDF5Dataset
        let featureSize: Int
        var rows = 0
        var labels: [Int32] = []
        var filenames: [String] = []
        var skippedFilenames: [String] = []
        var skippedReasons: [String] = []
    }

    /// Feature rows per HDF5 chunk: about 1 MiB, the size of HDF5's default chunk cache.
    static func chunkRows(featureSize: Int) -> Int { max(1, (1 << 18) / max(1, featureSize)) }

    public init(path: String, attributes: FeatureFileAttributes, classNames: [String]) throws {
        self.path = path
        temporaryPath = path + ".tmp-\(getpid())"
        do {
            file = try HDF5File.create(temporaryPath)
            let root = file.root.attributes
            try root.set("format", string: "bottleneck-features")
            try root.set("format_version", int: 1)
            try root.set("model", string: attributes.model)
            try root.set("layer", string: attributes.layer)
            try root.set("image_height", int: attributes.imageHeight)
            try root.set("image_width", int: attributes.imageWidth)
            try root.set("preprocess", string: attributes.preprocess)
            try root.set("interpolation", string: attributes.interpolation)
            try root.set("data_format", string: attributes.dataFormat)
            try root.set("weights_sha256", string: attributes.weightsSHA256)
            try root.set("precision", string: attributes.precision)
            for (name, value) in attributes.provenance?.attributes ?? [] { try root.set(name, string: value) }
            try file.root.writeStrings("class_names", classNames)
        } catch let error as HDF5Error {
            throw StorageError(path: path, message: "cannot start the feature file: \(error)")
        }
    }

    deinit {
        if !finished {
            file.close()
            try? FileManager.default.removeItem(atPath: temporaryPath)
        }
    }

    /// Starts the split `name` ("train", "validation") with features of shape `featureShape` (h, w, c).
    public func beginSplit(_ name: String, featureShape: [Int]) throws {
        try endSplit()
        let size = featureShape.reduce(1, *)
        let features = try file.root.createDataset(
            "\(name)/features", of: Float.self, shape: [0] + featureShape, maxRows: Int.max,
            chunkRows: Self.chunkRows(featureSize: size))
        current = OpenSplit(name: name, features: features, featureSize: size)
    }

    /// Appends rows of the current split, in index order: `labels.count` rows of `featureShape` floats.
    public func append(features: UnsafeBufferPointer<Float>, labels: [Int32], filenames: [String]) throws {
        guard var split = current else { throw StorageError(path: path, message: "append before beginSplit") }
        guard labels.count == filenames.count, features.count == labels.count * split.featureSize else {
            throw StorageError(
                path: path,
                message: "split \(split.name): \(features.count) feature values, \(labels.count) labels and "
                    + "\(filenames.count) file names do not describe the same rows of \(split.featureSize) values")
        }
        try split.features.writeRows(features, at: split.rows)
        split.rows += labels.count
        split.labels += labels
        split.filenames += filenames
        current = split
    }

    /// Records a file of the current split that has no features, with the reason.
    public func recordSkipped(filename: String, reason: String) throws {
        guard current != nil else { throw StorageError(path: path, message: "recordSkipped before beginSplit") }
        current?.skippedFilenames.append(filename)
        current?.skippedReasons.append(reason)
    }

    private func endSplit() throws {
        guard let split = current else { return }
        current = nil
        let group = try file.root.group(split.name)
        try group.write("labels", split.labels, shape: [split.labels.count])
        try group.writeStrings("filenames", split.filenames)
        try group.writeStrings("skipped/filenames", split.skippedFilenames)
        try group.writeStrings("skipped/reasons", split.skippedReasons)
    }

    /// Ends the last split, flushes, and renames the file to its final path.
    public func finish() throws {
        do {
            try endSplit()
            try file.flush()
            try file.closeChecked()
        } catch let error as HDF5Error {
            throw StorageError(path: path, message: "cannot write \(temporaryPath): \(error.message)")
        }
        do { try AtomicFile.publish(temporaryPath, as: path) } catch let error as FileIOError {
            throw StorageError(path: path, message: error.description)
        }
        finished = true
    }
}
