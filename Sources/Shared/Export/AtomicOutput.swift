import FileIntegrity
import Reporting

/// An output file of an export: `FileIntegrity.AtomicFileWriter` with its failures as `ExportError`s.
final class AtomicOutput {
    private let writer: AtomicFileWriter
    var path: String { writer.path }

    init(_ path: String) throws(ExportError) {
        do { writer = try AtomicFileWriter(path) } catch { throw ExportError(writing: path, error) }
    }

    func write(_ bytes: [UInt8]) throws(ExportError) {
        do { try writer.write(bytes) } catch { throw ExportError(writing: path, error) }
    }

    func write(_ text: String) throws(ExportError) {
        do { try writer.write(text) } catch { throw ExportError(writing: path, error) }
    }

    func write<T: FixedWidthInteger>(littleEndian values: [T]) throws(ExportError) {
        do { try writer.write(littleEndian: values) } catch { throw ExportError(writing: path, error) }
    }

    func write(littleEndian values: [Float]) throws(ExportError) {
        do { try writer.write(littleEndian: values) } catch { throw ExportError(writing: path, error) }
    }

    func publish() throws(ExportError) {
        do { try writer.publish() } catch { throw ExportError(writing: path, error) }
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

extension ExportError {
    /// An output that could not be written: the system's words, the export's shape.
    init(writing path: String, _ error: FileIOError) {
        self.init(path: path, message: error.description, category: .failedRun)
    }
}
