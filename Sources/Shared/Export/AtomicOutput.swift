import FileIntegrity
import Foundation
import Reporting

#if canImport(Glibc)
    import Glibc
#endif

/// One output file streamed to `AtomicFile`'s temporary name next to its final path and published by
/// `publish()` (fsync, rename, directory fsync), so that a file at the final path is always whole.
/// Dropped without `publish()`, the temporary file is removed. Not thread-safe.
final class AtomicOutput {
    let path: String
    let temporaryPath: String
    private let handle: FileHandle
    private var published = false
    private var buffer: [UInt8] = []

    init(_ path: String) throws(ExportError) {
        self.path = path
        temporaryPath = AtomicFile.temporaryPath(for: path)
        guard FileManager.default.createFile(atPath: temporaryPath, contents: nil) else {
            throw ExportError(
                path: path, message: "cannot create \(temporaryPath): \(String(cString: strerror(errno)))",
                category: .failedRun)
        }
        do { handle = try FileHandle(forWritingTo: URL(fileURLWithPath: temporaryPath)) } catch {
            throw ExportError(
                path: path, message: "cannot open \(temporaryPath) for writing: \(error)", category: .failedRun)
        }
    }

    deinit {
        if !published {
            try? handle.close()
            unlink(temporaryPath)
        }
    }

    /// Appends bytes (buffered; flushed in blocks of 1 MiB and by `publish()`).
    func write(_ bytes: [UInt8]) throws(ExportError) {
        buffer += bytes
        if buffer.count >= 1 << 20 { try flush() }
    }

    /// Appends the raw little-endian bytes of `values` (floats or 32-bit integers).
    func write<T: FixedWidthInteger>(littleEndian values: [T]) throws(ExportError) {
        try flush()
        let converted = values.map { $0.littleEndian }
        try writeRaw(converted.withUnsafeBytes { Data($0) })
    }

    func write(littleEndian values: [Float]) throws(ExportError) {
        try write(littleEndian: values.map(\.bitPattern))
    }

    func write(_ text: String) throws(ExportError) { try write(Array(text.utf8)) }

    private func flush() throws(ExportError) {
        guard !buffer.isEmpty else { return }
        let data = Data(buffer)
        buffer.removeAll(keepingCapacity: true)
        try writeRaw(data)
    }

    private func writeRaw(_ data: Data) throws(ExportError) {
        do { try handle.write(contentsOf: data) } catch {
            throw ExportError(path: path, message: "cannot write \(temporaryPath): \(error)", category: .failedRun)
        }
    }

    /// Flushes, syncs and renames the file into place.
    func publish() throws(ExportError) {
        try flush()
        do { try handle.close() } catch {
            throw ExportError(path: path, message: "cannot finish \(temporaryPath): \(error)", category: .failedRun)
        }
        do { try AtomicFile.publish(temporaryPath, as: path) } catch {
            throw ExportError(path: path, message: "cannot publish the file: \(error)", category: .failedRun)
        }
        published = true
    }
}

/// An export that could not be written or read; names the file and what was expected.
public struct ExportError: ReportedError {
    public let path: String
    public let message: String
    /// `.badInput` for a feature file that does not fit, `.failedRun` for an output that cannot be written.
    public let category: FailureCategory

    public init(path: String, message: String, category: FailureCategory = .badInput) {
        self.path = path
        self.message = message
        self.category = category
    }

    public var subject: String? { path }
    public var description: String { "\(path): \(message)" }
}
