/// The labelled images of one split, compactly: every filename in one UTF-8 byte buffer with end offsets, and the
/// labels as `Int32`; no `String` per image (10 million images take their filenames' bytes plus 12 bytes each).
///
/// A collection of `ImageEntry` values made on access (the filename and path `String`s are built then); the hot
/// paths read `filenameBytes(at:)`, `filename(at:)` or `path(at:)` instead. Indices are the images' positions
/// in Keras order, from 0.
public struct ImageList: Sendable, RandomAccessCollection {
    /// The directory filenames are relative to (Keras' `directory`); nil: the filenames are the paths. An
    /// absolute filename is its own path either way (`os.path.join`).
    public let directory: String?
    private var bytes: [UInt8] = []
    /// `ends[i]`: the end of filename `i` in `bytes`; it starts where filename `i - 1` ends.
    private var ends: [Int] = []
    /// Per image, the index of its class (Keras' `classes`, int32).
    public private(set) var labels: [Int32] = []

    public init(directory: String?) {
        self.directory = directory
    }

    /// A list of `entries` (their `path` must be `directory` joined with `filename`).
    public init(directory: String?, entries: some Sequence<ImageEntry>) {
        self.directory = directory
        for entry in entries { append(filename: entry.filename, label: entry.label) }
    }

    public var startIndex: Int { 0 }
    public var endIndex: Int { ends.count }

    public subscript(position: Int) -> ImageEntry {
        ImageEntry(filename: filename(at: position), path: path(at: position), label: labels[position])
    }

    /// Adds an image at the end.
    public mutating func append(filename: String, label: Int32) {
        bytes.append(contentsOf: filename.utf8)
        ends.append(bytes.count)
        labels.append(label)
    }

    /// Adds an image whose filename is `filename`'s bytes (UTF-8, already checked).
    public mutating func append(filename: UnsafeBufferPointer<UInt8>, label: Int32) {
        bytes.append(contentsOf: filename)
        ends.append(bytes.count)
        labels.append(label)
    }

    /// Sets every label `l` to `mapping[l]` (used once the class order is known).
    public mutating func relabel(_ mapping: [Int32]) {
        for index in labels.indices { labels[index] = mapping[Int(labels[index])] }
    }

    /// Reserves room for `images` more images of about `bytesPerName` bytes each.
    public mutating func reserve(images: Int, bytesPerName: Int) {
        bytes.reserveCapacity(bytes.count + images * bytesPerName)
        ends.reserveCapacity(ends.count + images)
        labels.reserveCapacity(labels.count + images)
    }

    /// Calls `body` with the UTF-8 bytes of the filename of image `index` (valid during the call only).
    public func withFilenameBytes<R>(at index: Int, _ body: (UnsafeBufferPointer<UInt8>) throws -> R) rethrows -> R {
        let start = index == 0 ? 0 : ends[index - 1]
        return try bytes.withUnsafeBufferPointer { try body(UnsafeBufferPointer(rebasing: $0[start..<ends[index]])) }
    }

    /// The filename of image `index` as listed (Keras' `filenames`).
    public func filename(at index: Int) -> String {
        withFilenameBytes(at: index) { String(decoding: $0, as: UTF8.self) }
    }

    /// The path to read for image `index` (Keras' `filepaths`).
    public func path(at index: Int) -> String {
        let name = filename(at: index)
        guard let directory, !name.hasPrefix("/") else { return name }
        return PathJoin.join(directory, name)
    }

    /// Bytes held for the filenames, offsets and labels (not counting the arrays' spare capacity).
    public var storageBytes: Int { bytes.count + ends.count * MemoryLayout<Int>.size + labels.count * 4 }
}
