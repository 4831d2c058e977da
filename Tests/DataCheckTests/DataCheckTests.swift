import DataCheck
import Foundation
import TestSupport
import Testing

@Suite("Data check (inspect)")
struct DataCheckTests {
    static let tree = fixturesDirectory() + "/keras/tree"

    @Test("the Keras fixture tree: every kind of bad file, leakage and split mismatch is found")
    func fixtureTree() throws {
        let report = try DataCheck().run(directories: [Self.tree + "/train", Self.tree + "/validation"])
        #expect(report.needsAttention)
        func files(_ kind: DataCheckReport.Finding.Kind) -> [String] {
            report.findings.filter { $0.kind == kind }.flatMap(\.files)
        }
        #expect(files(.zeroByte).map { $0.components(separatedBy: " — ")[0] } == ["train/cat/empty.jpg"])
        #expect(files(.unreadable).map { $0.components(separatedBy: " — ")[0] } == ["train/cat/gone.jpg"])
        #expect(files(.truncated).map { $0.components(separatedBy: " — ")[0] } == ["train/cat/truncated.jpg"])
        #expect(files(.unsupportedFormat).contains { $0.hasPrefix("train/cat/X.TIF") })
        let notImages = files(.notAnImage).map { $0.components(separatedBy: " — ")[0] }
        #expect(notImages.contains("train/dog/fake.png"))
        #expect(notImages.contains("train/cat/._b.jpg"))
        #expect(files(.leakage) == ["train/cat/a.jpg = train/dog/alias.jpg = validation/cat/a.jpg"])
        #expect(files(.duplicate).count == 1)
        #expect(
            files(.classInOneSplitOnly) == [
                "class '.hidden' is missing from validation", "class 'linked' is missing from validation",
            ])
        #expect(files(.tooSmall).contains("validation/cat/vc.png (26×36)"))
        let modes = report.findings.filter { $0.kind == .unusualMode }
        #expect(modes.allSatisfy { !$0.needsAttention })
        #expect(files(.unusualMode).contains("train/cat/d_cmyk.jpg"))
        #expect(files(.unusualMode).contains("train/dog/gray16.png"))
        #expect(files(.unusualMode).contains("train/dog/rgba.png"))
        #expect(files(.unusualMode).contains("train/dog/p_trns.png"))
        let train = try #require(report.splits.first { $0.name == "train" })
        #expect(train.classes.map(\.name) == [".hidden", "Zebra", "cat", "dog", "linked"])
        #expect(train.images == train.classes.reduce(0) { $0 + $1.images })
    }

    @Test("a clean tree needs no attention, and the JSON report says so")
    func cleanTree() throws {
        let directory = try TemporaryDirectory("datacheck-clean")
        defer { directory.remove() }
        for (split, name, seed) in [
            ("train", "a", 1), ("train", "b", 2), ("validation", "a", 3), ("validation", "b", 4),
        ] {
            try FileManager.default.createDirectory(
                atPath: directory.file("\(split)/\(name)"), withIntermediateDirectories: true)
            try writeTestPPM(directory.file("\(split)/\(name)/\(seed).ppm"), width: 40, height: 36, seed: seed)
        }
        let report = try DataCheck().run(directories: [directory.file("train"), directory.file("validation")])
        #expect(!report.needsAttention)
        #expect(report.findings.isEmpty)
        #expect(report.splits.map(\.images) == [2, 2])
        let json = String(decoding: try JSONEncoder().encode(report), as: UTF8.self)
        #expect(json.contains("\"needs_attention\":false"))
        #expect(report.text().contains("OK: nothing needs attention"))
    }

    @Test("lists: each list is a split named after its file; a listed file that is missing is unreadable")
    func lists() throws {
        let directory = try TemporaryDirectory("datacheck-lists")
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.file("img"), withIntermediateDirectories: true)
        for seed in 1...3 {
            try writeTestPPM(directory.file("img/\(seed).ppm"), width: 40, height: 40, seed: seed)
        }
        try Data("filename,class\nimg/1.ppm,b\nimg/2.ppm,a\nimg/gone.ppm,a\n".utf8).write(
            to: URL(fileURLWithPath: directory.file("train.csv")))
        try Data("class,filename\na,img/3.ppm\nb,img/1.ppm\n".utf8).write(
            to: URL(fileURLWithPath: directory.file("validation.csv")))
        let report = try DataCheck().run(
            lists: [directory.file("train.csv"), directory.file("validation.csv")], directory: directory.path)
        #expect(report.splits.map(\.name) == ["train", "validation"])
        #expect(report.splits.map(\.images) == [2, 2])
        #expect(report.splits[0].classes.map(\.name) == ["a", "b"])
        #expect(report.findings.first { $0.kind == .unreadable }?.files.first?.hasPrefix("train/img/gone.ppm") == true)
        #expect(report.findings.contains { $0.kind == .leakage }, "img/1.ppm is in both splits")
        #expect(throws: (any Error).self, "a list that cannot be read") {
            try DataCheck().run(lists: [directory.file("none.csv")], directory: nil)
        }
    }

    @Test("an empty class is a problem")
    func emptyClass() throws {
        let directory = try TemporaryDirectory("datacheck-empty")
        defer { directory.remove() }
        try FileManager.default.createDirectory(atPath: directory.file("train/a"), withIntermediateDirectories: true)
        try FileManager.default.createDirectory(atPath: directory.file("train/b"), withIntermediateDirectories: true)
        try writeTestPPM(directory.file("train/a/1.ppm"), width: 40, height: 40, seed: 1)
        let report = try DataCheck().run(directories: [directory.file("train")])
        #expect(report.needsAttention)
        #expect(report.findings.map(\.kind) == [.emptyClass])
        #expect(report.findings[0].files == ["train/b"])
    }
}

/// Writes a binary PPM (P6) of deterministic pixels.
func writeTestPPM(_ path: String, width: Int, height: Int, seed: Int) throws {
    var bytes = Array("P6\n\(width) \(height)\n255\n".utf8)
    var state = UInt32(truncatingIfNeeded: seed &* 2_654_435_761 &+ 1)
    for _ in 0..<(width * height * 3) {
        state = state &* 1_664_525 &+ 1_013_904_223
        bytes.append(UInt8(truncatingIfNeeded: state >> 24))
    }
    try Data(bytes).write(to: URL(fileURLWithPath: path))
}
