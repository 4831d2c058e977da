import Foundation
import TestSupport
import Testing

@testable import ImageInput

/// The tree that `tf_keras` 2.21 `ImageDataGenerator().flow_from_directory(shuffle=False)` was run on to
/// produce `kerasFilenames` below (file contents do not matter to the listing).
private func makeKerasTree(_ root: String) throws -> String {
    let train = root + "/train"
    let outside = root + "/outside"
    let catFiles = [
        "a.jpg", "B.JPG", "._a.jpg", "x.apng", "X.TIF", "c.tiff", "d.gif", ".DS_Store", "xjpg", "e.jpeg", "f.bmp",
        "g.ppm", "h.PnG", "x-y/1.png", "x/z/2.png", "x/3.png", "x/a/4.png", "x0/5.png", "\u{E9}.png", "e\u{301}.png",
        "Z.png", "_u.png", "~t.png",
    ]
    for f in catFiles { try ImageFiles.write([1], to: "\(train)/cats/\(f)") }
    try ImageFiles.write([1], to: "\(train)/dogs/d1.jpg")
    try ImageFiles.write([1], to: "\(train)/dogs/sub/deep/d2.png")
    try ImageFiles.write([1], to: "\(train)/.hidden/h.jpg")
    try ImageFiles.write([1], to: "\(train)/Zebra/z.png")
    try ImageFiles.write([1], to: "\(train)/\u{E9}clair/e.png")
    try ImageFiles.write([1], to: "\(train)/e\u{301}clair/e.png")
    try FileManager.default.createDirectory(atPath: "\(train)/empty", withIntermediateDirectories: true)
    try ImageFiles.write([1], to: "\(train)/notes.txt")
    try ImageFiles.write([1], to: "\(outside)/o1.jpg")
    try ImageFiles.write([1], to: "\(outside)/deeper/o2.jpg")
    let fm = FileManager.default
    try fm.createSymbolicLink(atPath: "\(train)/linked", withDestinationPath: outside)
    try fm.createSymbolicLink(atPath: "\(train)/cats/sub_link", withDestinationPath: outside)
    try fm.createSymbolicLink(atPath: "\(train)/cats/dangling.jpg", withDestinationPath: "\(root)/nowhere.jpg")
    try fm.createSymbolicLink(atPath: "\(train)/cats/filelink.png", withDestinationPath: "\(outside)/o1.jpg")
    try fm.createSymbolicLink(atPath: "\(train)/brokenclass", withDestinationPath: "\(root)/nowhere")
    return train
}

private let kerasClasses = [".hidden", "Zebra", "cats", "dogs", "empty", "e\u{301}clair", "linked", "\u{E9}clair"]

/// `(label, filename)` exactly as Keras listed them.
private let kerasFilenames: [(Int32, String)] = [
    (0, ".hidden/h.jpg"), (1, "Zebra/z.png"),
    (2, "cats/._a.jpg"), (2, "cats/B.JPG"), (2, "cats/X.TIF"), (2, "cats/Z.png"), (2, "cats/_u.png"), (2, "cats/a.jpg"),
    (2, "cats/c.tiff"), (2, "cats/dangling.jpg"), (2, "cats/e.jpeg"), (2, "cats/e\u{301}.png"), (2, "cats/f.bmp"),
    (2, "cats/filelink.png"), (2, "cats/g.ppm"), (2, "cats/h.PnG"), (2, "cats/x.apng"), (2, "cats/xjpg"),
    (2, "cats/~t.png"), (2, "cats/\u{E9}.png"), (2, "cats/x/3.png"), (2, "cats/x-y/1.png"), (2, "cats/x/a/4.png"),
    (2, "cats/x/z/2.png"), (2, "cats/x0/5.png"),
    (3, "dogs/d1.jpg"), (3, "dogs/sub/deep/d2.png"),
    (5, "e\u{301}clair/e.png"), (6, "linked/o1.jpg"), (6, "linked/deeper/o2.jpg"), (7, "\u{E9}clair/e.png"),
]

/// Compares by Unicode scalars: Swift `==` on String would equate "é" and "e\u{301}".
private func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }

@Suite("Directory scan lists what Keras flow_from_directory(shuffle=False) lists")
struct DirectoryScanTests {
    @Test("classes, order, labels and filenames equal Keras' on a tree with every corner case")
    func matchesKerasListing() throws {
        let root = try ImageFiles.temporaryDirectory("scan")
        defer { ImageFiles.removeTree(root) }
        let train = try makeKerasTree(root)
        let scan = try DirectoryScan.scan(directory: train)
        #expect(scan.classNames.map(scalars) == kerasClasses.map(scalars))
        #expect(scan.entries.map { scalars($0.filename) } == kerasFilenames.map { scalars($0.1) })
        #expect(scan.entries.map(\.label) == kerasFilenames.map(\.0))
        let first = try #require(scan.entries.first)
        #expect(first.path == train + "/.hidden/h.jpg")
    }

    @Test("an explicit class list sets order and labels, and a missing class is an error naming it")
    func explicitClasses() throws {
        let root = try ImageFiles.temporaryDirectory("scan")
        defer { ImageFiles.removeTree(root) }
        let train = try makeKerasTree(root)
        let scan = try DirectoryScan.scan(directory: train, classes: ["dogs", "Zebra"])
        #expect(scan.classNames == ["dogs", "Zebra"])
        #expect(scan.entries.map(\.filename) == ["dogs/d1.jpg", "dogs/sub/deep/d2.png", "Zebra/z.png"])
        #expect(scan.entries.map(\.label) == [0, 0, 1])
        #expect(throws: ImageInputError.self) { try DirectoryScan.scan(directory: train, classes: ["nope"]) }
    }

    @Test("a missing directory throws an error naming it")
    func missingDirectory() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("absent-\(UUID().uuidString)").path
        do {
            _ = try DirectoryScan.scan(directory: path)
            Issue.record("expected an error")
        } catch let error as ImageInputError {
            #expect(error.path == path)
            #expect(error.description.contains(path))
        }
    }

    @Test(
        "an unreadable subdirectory is an error, not silently skipped",
        .enabled(if: getuid() != 0, "root reads every directory"))
    func unreadableSubdirectory() throws {
        let root = try ImageFiles.temporaryDirectory("scan")
        defer {
            chmod(root + "/c/locked", 0o755)
            ImageFiles.removeTree(root)
        }
        try ImageFiles.write([1], to: root + "/c/locked/x.jpg")
        chmod(root + "/c/locked", 0)
        #expect(throws: ImageInputError.self) { try DirectoryScan.scan(directory: root) }
    }

    @Test("the suffix test is fname.lower().endswith(...) without a dot")
    func suffixRule() {
        for name in ["a.jpg", "A.JPEG", "x.apng", "._x.jpg", "X.TIF", "b.tiff", "xjpg", "c.Bmp", "d.ppm"] {
            #expect(DirectoryScan.hasAllowedSuffix(name), "\(name)")
        }
        for name in ["a.gif", ".DS_Store", "a.webp", "a.jpg.txt", "a.pgm", "jpg.x"] {
            #expect(!DirectoryScan.hasAllowedSuffix(name), "\(name)")
        }
    }
}
