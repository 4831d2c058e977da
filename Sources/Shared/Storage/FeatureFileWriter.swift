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
        /// The features dataset, nil for a virtual split (made when the split ends).
        let features: HDF5Dataset?
        let featureShape: [Int]
        let featureSize: Int
        /// Runs of rows of other files, for a virtual split.
        var mappings: [HDF5Group.VirtualMapping] = []
        /// The byte ranges a virtual split's rows come from, with their hashes.
        var segments: [VirtualSegment] = []
        var rows = 0
        /// Rows appended but not yet written (`storedRows` of the dataset are), written in whole blocks of chunks.
        var pending: [Float] = []
        var storedRows = 0
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
    ///
    /// With `virtual`, the split's features are an HDF5 virtual dataset over rows of other files, given with
    /// `appendMapped`; otherwise they are stored here, given with `append`.
    public func beginSplit(_ name: String, featureShape: [Int], virtual: Bool = false) throws {
        try endSplit()
        let size = featureShape.reduce(1, *)
        let features =
            virtual
            ? nil
            : try file.root.createDataset(
                "\(name)/features", of: Float.self, shape: [0] + featureShape, maxRows: Int.max,
                chunkRows: Self.chunkRows(featureSize: size))
        current = OpenSplit(name: name, features: features, featureShape: featureShape, featureSize: size)
    }

    /// Appends rows of the current (virtual) split, in index order: rows `sourceRows` of the float32 dataset
    /// `sourceDataset` of the file `sourceFile` (a name relative to this file's directory, where readers look
    /// for it), with their labels and file names. Consecutive calls for later rows of one source make one mapping
    /// (its source selection the union of the runs), so a source file maps once whatever rows are left out.
    public func appendMapped(
        sourceFile: String, sourceDataset: String, sourceRows: Range<Int>, labels: [Int32], filenames: [String]
    ) throws {
        // Taken out of `current` while it changes, so that its arrays are not copied on every append.
        guard var split = current.take() else {
            throw StorageError(path: path, message: "appendMapped outside a virtual split")
        }
        defer { current = split }
        guard split.features == nil else {
            throw StorageError(path: path, message: "appendMapped outside a virtual split")
        }
        guard labels.count == filenames.count, sourceRows.count == labels.count else {
            throw StorageError(
                path: path,
                message: "split \(split.name): \(sourceRows.count) mapped rows, \(labels.count) labels and "
                    + "\(filenames.count) file names do not describe the same rows")
        }
        guard !sourceRows.isEmpty else { return }
        if let last = split.mappings.last, last.sourceFile == sourceFile, last.sourceDataset == sourceDataset,
            let lastRun = last.sourceRuns.last, lastRun.upperBound <= sourceRows.lowerBound,
            last.row + last.rowCount == split.rows
        {
            // The same source file, later rows: the same mapping (a run more, or a longer last run).
            let index = split.mappings.count - 1
            if lastRun.upperBound == sourceRows.lowerBound {
                split.mappings[index].sourceRuns[last.sourceRuns.count - 1] =
                    lastRun.lowerBound..<sourceRows.upperBound
            } else {
                split.mappings[index].sourceRuns.append(sourceRows)
            }
        } else {
            split.mappings.append(
                HDF5Group.VirtualMapping(
                    sourceFile: sourceFile, sourceDataset: sourceDataset, sourceRows: sourceRows, row: split.rows))
        }
        split.rows += labels.count
        split.labels += labels
        split.filenames += filenames
    }

    /// Appends rows of the current split, in index order: `labels.count` rows of `featureShape` floats.
    ///
    /// Rows are gathered and written in blocks of whole chunks (`writeBlockRows`): a write of a few rows into a
    /// chunk would read and write the whole chunk each time.
    public func append(features: UnsafeBufferPointer<Float>, labels: [Int32], filenames: [String]) throws {
        guard var split = current.take() else {
            throw StorageError(path: path, message: "append outside a stored split")
        }
        defer { current = split }
        guard let dataset = split.features else {
            throw StorageError(path: path, message: "append outside a stored split")
        }
        guard labels.count == filenames.count, features.count == labels.count * split.featureSize else {
            throw StorageError(
                path: path,
                message: "split \(split.name): \(features.count) feature values, \(labels.count) labels and "
                    + "\(filenames.count) file names do not describe the same rows of \(split.featureSize) values")
        }
        let blockRows = Self.writeBlockRows(featureSize: split.featureSize)
        if split.pending.isEmpty && labels.count >= blockRows {
            try dataset.writeRows(features, at: split.storedRows)
            split.storedRows += labels.count
        } else {
            if split.pending.capacity == 0 { split.pending.reserveCapacity(blockRows * split.featureSize) }
            split.pending.append(contentsOf: features)
            if split.pending.count >= blockRows * split.featureSize { try Self.writePending(&split, to: dataset) }
        }
        split.rows += labels.count
        split.labels += labels
        split.filenames += filenames
    }

    /// Rows gathered before a write: whole chunks, about 8 MiB.
    public static func writeBlockRows(featureSize: Int) -> Int {
        let chunk = chunkRows(featureSize: featureSize)
        return chunk * max(1, (8 << 20) / max(1, chunk * featureSize * 4))
    }

    private static func writePending(_ split: inout OpenSplit, to dataset: HDF5Dataset) throws {
        guard !split.pending.isEmpty else { return }
        try dataset.writeRows(split.pending, at: split.storedRows)
        split.storedRows += split.pending.count / split.featureSize
        split.pending.removeAll(keepingCapacity: true)
    }

    /// Records, for a virtual split, the byte range of a source file that holds the split's rows `rows` (and
    /// perhaps rows left out, e.g. skipped images') with its SHA-256, so that readers can check the bytes.
    public func recordSegment(_ segment: VirtualSegment) throws {
        guard current != nil, current?.features == nil else {
            throw StorageError(path: path, message: "recordSegment outside a virtual split")
        }
        current?.segments.append(segment)
    }

    /// Records a file of the current split that has no features, with the reason.
    public func recordSkipped(filename: String, reason: String) throws {
        guard current != nil else { throw StorageError(path: path, message: "recordSkipped before beginSplit") }
        current?.skippedFilenames.append(filename)
        current?.skippedReasons.append(reason)
    }

    private func endSplit() throws {
        guard var split = current.take() else { return }
        if let features = split.features { try Self.writePending(&split, to: features) }
        if split.features == nil {
            try file.root.createVirtualFloatDataset(
                "\(split.name)/features", shape: [split.rows] + split.featureShape, mappings: split.mappings)
            let segments = split.segments
            let group = try file.root.group(split.name)
            try group.writeStrings("segments/file", segments.map(\.file))
            try group.write("segments/offset", segments.map { Int64($0.offset) }, shape: [segments.count])
            try group.write("segments/size", segments.map { Int64($0.size) }, shape: [segments.count])
            try group.writeStrings("segments/sha256", segments.map(\.sha256))
            try group.write("segments/first_row", segments.map { Int64($0.rows.lowerBound) }, shape: [segments.count])
            try group.write("segments/rows", segments.map { Int64($0.rows.count) }, shape: [segments.count])
        }
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

/// A byte range of another file that a virtual split's rows come from: `file` (relative to the feature file's
/// directory), `offset` and `size` in bytes, the SHA-256 (hex) of those bytes, and the split's rows it holds.
public struct VirtualSegment: Sendable, Equatable {
    public var file: String
    public var offset: Int
    public var size: Int
    public var sha256: String
    public var rows: Range<Int>
    public init(file: String, offset: Int, size: Int, sha256: String, rows: Range<Int>) {
        self.file = file
        self.offset = offset
        self.size = size
        self.sha256 = sha256
        self.rows = rows
    }
}
