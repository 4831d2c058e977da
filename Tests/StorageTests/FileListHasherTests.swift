import Testing

@testable import Storage

@Suite("File-list hash from bytes")
struct FileListHasherTests {
    @Test("the byte-fed hasher gives ShardJournal.fileListHash's digest (resumes of older journals still match)")
    func sameDigest() {
        let filenames = ["cats/a.jpg", "dogs/ü.png", "x", ""] + (0..<5000).map { "n/\($0).jpg" }
        let labels: [Int32] = [0, 1, 12345, -3] + (0..<5000).map { Int32($0 % 11) }
        var hasher = FileListHasher()
        for (filename, label) in zip(filenames, labels) {
            Array(filename.utf8).withUnsafeBufferPointer { hasher.add(filename: $0, label: label) }
        }
        #expect(hasher.finish() == ShardJournal.fileListHash(filenames: filenames, labels: labels))
    }
}
