import Foundation

#if canImport(Glibc)
    import Glibc
#endif

/// A file streamed to `AtomicFile`'s temporary name next to its final path and made the file at that path by
/// `publish()` (fsync, rename, directory fsync), so that a file at the final path is always whole.
///
/// Writes are buffered (flushed in blocks of 1 MiB). Dropped without `publish()`, the temporary file is removed.
/// Failures are `FileIOError`s naming the temporary file and the system's reason. Not thread-safe: one owner.
public final class AtomicFileWriter {
    public let path: String
    public let temporaryPath: String
    private let handle: FileHandle
    private var published = false
    private var buffer: [UInt8] = []

    public init(_ path: String) throws(FileIOError) {
        self.path = path
        temporaryPath = AtomicFile.temporaryPath(for: path)
        guard FileManager.default.createFile(atPath: temporaryPath, contents: nil) else {
            throw FileIOError(path: temporaryPath, operation: "create", errno: errno)
        }
        do { handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporaryPath)) } catch {
            unlink(temporaryPath)
            throw FileIOError(path: temporaryPath, operation: "open", error: error)
        }
    }

    deinit {
        if !published {
            try? handle.close()
            unlink(temporaryPath)
        }
    }

    /// Appends bytes.
    public func write(_ bytes: [UInt8]) throws(FileIOError) {
        buffer += bytes
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Appends the UTF-8 bytes of `text`.
    public func write(_ text: String) throws(FileIOError) { try write(Array(text.utf8)) }

    /// Appends the little-endian bytes of `values`.
    public func write<T: FixedWidthInteger>(littleEndian values: [T]) throws(FileIOError) {
        try flush()
        let converted = values.map { $0.littleEndian }
        try writeRaw(converted.withUnsafeBytes { Data($0) })
    }

    /// Appends the little-endian IEEE 754 bytes of `values`.
    public func write(littleEndian values: [Float]) throws(FileIOError) {
        try write(littleEndian: values.map(\.bitPattern))
    }

    /// Flushes, closes, fsyncs and renames the file into place.
    public func publish() throws(FileIOError) {
        try flush()
        do { try handle.close() } catch { throw FileIOError(path: temporaryPath, operation: "close", error: error) }
        do { try AtomicFile.publish(temporaryPath, as: path) } catch let error as FileIOError {
            throw error
        } catch {
            throw FileIOError(path: path, operation: "publish", error: error)
        }
        published = true
    }

    private func flush() throws(FileIOError) {
        guard !buffer.isEmpty else { return }
        let data = Data(buffer)
        buffer.removeAll(keepingCapacity: true)
        try writeRaw(data)
    }

    private func writeRaw(_ data: Data) throws(FileIOError) {
        do { try handle.write(contentsOf: data) } catch {
            throw FileIOError(path: temporaryPath, operation: "write", error: error)
        }
    }
}
