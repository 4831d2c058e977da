/// An image file's size and modification time as it was read; a file whose stamp differs later has changed.
///
/// Whoever reads an image records it (the coordinator in plain mode, the worker with a shared filesystem); it
/// travels in results and is kept in the journal, so one type serves the reader, the wire and the journal.
public struct InputStamp: Codable, Sendable, Hashable {
    public var size: Int
    /// Modification time, nanoseconds since the epoch.
    public var modifiedNanoseconds: Int64
    public init(size: Int, modifiedNanoseconds: Int64) {
        self.size = size
        self.modifiedNanoseconds = modifiedNanoseconds
    }
}
