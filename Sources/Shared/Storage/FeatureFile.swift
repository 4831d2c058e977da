import FileIntegrity
import Foundation
import HDF5
import Synchronization

#if canImport(Glibc)
    import Glibc
#endif

/// A feature file opened for reading (layout in the README, "Files").
///
/// `open` checks the format and reads the class names and root attributes; the splits' data are read
/// on demand, features by row ranges so that files larger than memory can be streamed.
public final class FeatureFile {
    public let path: String
    public let classNames: [String]
    public let attributes: FeatureFileAttributes
    /// The splits present ("train", "validation"), in name order.
    public let splitNames: [String]
    let file: HDF5File

    private init(
        path: String, file: HDF5File, classNames: [String], attributes: FeatureFileAttributes, splits: [String]
    ) {
        self.path = path
        self.file = file
        self.classNames = classNames
        self.attributes = attributes
        self.splitNames = splits
    }

    /// Whether `path` is a feature file (an HDF5 file whose root attribute `format` is "bottleneck-features"),
    /// the check a command makes before writing over an existing file. Reads only the attribute.
    public static func isFeatureFile(_ path: String) -> Bool {
        guard HDF5File.isHDF5(path), let file = try? HDF5File.open(path) else { return false }
        defer { file.close() }
        let attributes = file.root.attributes
        return attributes.contains("format") && (try? attributes.string("format")) == "bottleneck-features"
    }

    public static func open(_ path: String) throws -> FeatureFile {
        let file: HDF5File
        do { file = try HDF5File.open(path) } catch let error as HDF5Error {
            throw StorageError(path: path, message: "cannot open the feature file: \(error.message)")
        }
        let root = file.root
        do {
            guard root.attributes.contains("format"), try root.attributes.string("format") == "bottleneck-features"
            else {
                throw StorageError(
                    path: path,
                    message: "not a bottleneck feature file (root attribute format=\"bottleneck-features\" missing)")
            }
            let version = try root.attributes.int("format_version")
            guard version == 1 else {
                throw StorageError(path: path, message: "feature file format_version \(version), expected 1")
            }
            let a = root.attributes
            let attributes = FeatureFileAttributes(
                imageHeight: try a.int("image_height"), imageWidth: try a.int("image_width"),
                preprocess: try a.string("preprocess"), interpolation: try a.string("interpolation"),
                layer: try a.string("layer"), weightsSHA256: try a.string("weights_sha256"),
                model: try a.string("model"), dataFormat: try a.string("data_format"),
                precision: a.contains("precision") ? try a.string("precision") : "fp32")
            let classNames = try root.dataset("class_names").readStrings()
            let splits = try root.memberNames().filter { root.isGroup($0) && root.exists("\($0)/features") }
            return FeatureFile(path: path, file: file, classNames: classNames, attributes: attributes, splits: splits)
        } catch let error as HDF5Error {
            throw StorageError(path: path, message: "damaged feature file: \(error.object) \(error.message)")
        }
    }

    /// The split `name`; throws naming the splits that exist when it is missing.
    public func split(_ name: String) throws -> FeatureSplit {
        guard splitNames.contains(name) else {
            let has = splitNames.isEmpty ? "none" : splitNames.joined(separator: ", ")
            throw StorageError(path: path, message: "no split '\(name)' (has: \(has))")
        }
        do {
            let features = try file.root.dataset("\(name)/features")
            guard features.shape.count == 4, features.isFloat else {
                throw StorageError(
                    path: path, message: "/\(name)/features has shape \(features.shape), expected [N, h, w, c] float32")
            }
            return FeatureSplit(file: self, name: name, features: features)
        } catch let error as HDF5Error {
            throw StorageError(path: path, message: "split '\(name)': \(error.message)")
        }
    }
}

/// One split of a feature file: N rows of features (h, w, c) with their labels and file names.
public final class FeatureSplit {
    public let name: String
    public let count: Int
    /// (h, w, c), channels last.
    public let featureShape: [Int]
    public var featureSize: Int { featureShape.reduce(1, *) }
    private let file: FeatureFile
    private let features: HDF5Dataset
    /// A virtual split's segments (read on the first read of features), and which were checked.
    private let checks = Mutex<(segments: [VirtualSegment]?, checked: Set<Int>)>((nil, []))

    init(file: FeatureFile, name: String, features: HDF5Dataset) {
        self.file = file
        self.name = name
        self.features = features
        count = features.shape[0]
        featureShape = Array(features.shape.dropFirst())
    }

    /// The byte ranges a virtual split's rows come from (`segments/` of the split, written by a virtual
    /// assembly), in row order; empty for a split that holds its features.
    public func segments() throws -> [VirtualSegment] {
        let group = try file.file.root.group(name)
        guard group.exists("segments/sha256") else { return [] }
        return try read("segments") { group in
            let files = try group.dataset("segments/file").readStrings()
            let offsets = try group.dataset("segments/offset").read(Int64.self)
            let sizes = try group.dataset("segments/size").read(Int64.self)
            let hashes = try group.dataset("segments/sha256").readStrings()
            let firstRows = try group.dataset("segments/first_row").read(Int64.self)
            let rows = try group.dataset("segments/rows").read(Int64.self)
            guard
                [offsets.count, sizes.count, hashes.count, firstRows.count, rows.count].allSatisfy({ $0 == files.count }
                )
            else { throw StorageError(path: file.path, message: "split '\(name)': segments of unequal lengths") }
            return files.indices.map {
                VirtualSegment(
                    file: files[$0], offset: Int(offsets[$0]), size: Int(sizes[$0]), sha256: hashes[$0],
                    rows: Int(firstRows[$0])..<Int(firstRows[$0] + rows[$0]))
            }
        }
    }

    /// Checks the SHA-256 of every segment holding one of `rows` not checked before (virtual splits only):
    /// reads its bytes from the source file next to the feature file. A mismatch or a missing source throws,
    /// naming the source file, the offset and the hash expected.
    private func checkSegments(covering rows: Range<Int>) throws {
        let pending: [(Int, VirtualSegment)] = try checks.withLock { state in
            if state.segments == nil { state.segments = try segments() }
            let segments = state.segments!
            guard !segments.isEmpty, !rows.isEmpty else { return [] }
            // The first segment ending after rows.lowerBound, then on while they start before rows.upperBound.
            var low = 0
            var high = segments.count
            while low < high {
                let middle = (low + high) / 2
                if segments[middle].rows.upperBound <= rows.lowerBound { low = middle + 1 } else { high = middle }
            }
            var pending: [(Int, VirtualSegment)] = []
            var index = low
            while index < segments.count, segments[index].rows.lowerBound < rows.upperBound {
                if !segments[index].rows.isEmpty && !state.checked.contains(index) {
                    pending.append((index, segments[index]))
                }
                index += 1
            }
            return pending
        }
        let directory = (file.path as NSString).deletingLastPathComponent
        for (index, segment) in pending {
            let path = (directory.isEmpty ? "." : directory) + "/" + segment.file
            let bytes = try Self.readRange(path, offset: segment.offset, size: segment.size, featureFile: file.path)
            let actual = Checksum.sha256Hex(bytes)
            guard actual == segment.sha256 else {
                throw StorageError(
                    path: file.path,
                    message: "split '\(name)': \(segment.size) bytes at offset \(segment.offset) of \(path) have "
                        + "SHA-256 \(actual.prefix(16))…, this file expects \(segment.sha256.prefix(16))… "
                        + "(the part "
                        + "files it maps onto changed; extract again)")
            }
            checks.withLock { _ = $0.checked.insert(index) }
        }
    }

    private static func readRange(_ path: String, offset: Int, size: Int, featureFile: String) throws -> [UInt8] {
        let fd = Glibc.open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw StorageError(
                path: featureFile,
                message: "cannot read \(path), which it maps onto: \(String(cString: strerror(errno)))")
        }
        defer { Glibc.close(fd) }
        var bytes = [UInt8](repeating: 0, count: size)
        var done = 0
        while done < size {
            let result = bytes.withUnsafeMutableBytes {
                pread(fd, $0.baseAddress! + done, size - done, off_t(offset + done))
            }
            if result < 0 && errno == EINTR { continue }
            guard result > 0 else {
                throw StorageError(
                    path: featureFile, message: "\(path), which it maps onto, ends before offset \(offset + size)")
            }
            done += result
        }
        return bytes
    }

    private func read<T>(_ what: String, _ body: (HDF5Group) throws -> T) throws -> T {
        let group = try file.file.root.group(name)
        guard group.exists(what) else {
            throw StorageError(path: file.path, message: "split '\(name)' has no \(what) dataset")
        }
        do { return try body(group) } catch let error as HDF5Error {
            throw StorageError(path: file.path, message: "split '\(name)': \(what): \(error.message)")
        }
    }

    /// The class index of each row, in row order.
    public func labels() throws -> [Int32] {
        let labels = try read("labels") { try $0.dataset("labels").read(Int32.self) }
        guard labels.count == count else {
            throw StorageError(
                path: file.path, message: "split '\(name)' has \(labels.count) labels for \(count) feature rows")
        }
        return labels
    }

    /// The file name ("class/sub/file.jpg") of each row, in row order.
    public func filenames() throws -> [String] {
        try read("filenames") { try $0.dataset("filenames").readStrings() }
    }

    /// Files of this split that have no features, with the reason.
    public func skipped() throws -> [(filename: String, reason: String)] {
        guard try file.file.root.group(name).exists("skipped/filenames") else { return [] }
        let names = try read("skipped/filenames") { try $0.dataset("skipped/filenames").readStrings() }
        let reasons = try read("skipped/reasons") { try $0.dataset("skipped/reasons").readStrings() }
        return Array(zip(names, reasons)).map { (filename: $0.0, reason: $0.1) }
    }

    /// Rows `rows` of the features, row-major `[rows.count, h*w*c]` (the order of Keras' `Flatten`).
    ///
    /// In a virtual split (features mapped onto the extraction's part files), the bytes of each part range the
    /// rows come from are checked against their SHA-256 the first time they are read.
    public func readFeatures(rows: Range<Int>) throws -> [Float] {
        try checkSegments(covering: rows)
        do { return try features.readRows(rows, as: Float.self) } catch let error as HDF5Error {
            throw StorageError(path: file.path, message: "split '\(name)' features rows \(rows): \(error.message)")
        }
    }
}
