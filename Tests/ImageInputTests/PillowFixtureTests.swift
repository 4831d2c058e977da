import Foundation
import ImageInput
import TestSupport
import Testing

/// Expected values written by `Fixtures/make_fixtures.py` from Pillow.
struct PillowExpectations: Decodable {
    struct Decode: Decodable {
        let file: String
        let format: String
        let mode: String
        let width: Int
        let height: Int
    }
    struct ResizeCase: Decodable {
        let source: [Int]
        let target: [Int]
        let interpolation: String
        let fnv1a64: String
    }
    struct Refused: Decodable {
        let file: String
        let pillow: String
    }
    let pillow: String
    let decode: [Decode]
    let errors: [Refused]
    let resize: [ResizeCase]
    let rescale_bits: [UInt32]
    let caffe_bits_bgr: [[UInt32]]

    static let fixtures = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("Fixtures")

    static func load() throws -> PillowExpectations {
        let data = try Data(contentsOf: fixtures.appendingPathComponent("expected.json"))
        return try JSONDecoder().decode(PillowExpectations.self, from: data)
    }

    static func bytes(_ name: String) throws -> [UInt8] {
        [UInt8](try Data(contentsOf: fixtures.appendingPathComponent("decode").appendingPathComponent(name)))
    }
}

@Suite("Decoding matches Pillow's open + convert('RGB')")
struct PillowDecodeTests {
    static let cases: [String] = (try? PillowExpectations.load().decode.map(\.file)) ?? []

    @Test("each fixture decodes to Pillow's RGB pixels, size, format and mode", arguments: cases)
    func decodesLikePillow(file: String) throws {
        let expectations = try PillowExpectations.load()
        let expected = try #require(expectations.decode.first { $0.file == file })
        let bytes = try PillowExpectations.bytes(file)
        let image = try ImageDecoder.decode(bytes, filename: file)
        #expect(image.format == expected.format)
        #expect(image.sourceMode == expected.mode)
        #expect(image.width == expected.width && image.height == expected.height)
        let reference = try PillowExpectations.bytes(file + ".rgb")
        #expect(image.rgb.count == reference.count)
        if image.rgb.count == reference.count {
            let diffs = zip(image.rgb, reference).map { abs(Int($0) - Int($1)) }
            let mismatches = diffs.filter { $0 != 0 }.count
            #expect(mismatches == 0, "\(file): \(mismatches) bytes differ, max abs diff \(diffs.max() ?? 0)")
        }
        let header = try ImageDecoder.header(bytes, filename: file)
        #expect(header.width == expected.width && header.height == expected.height)
        #expect(header.format == expected.format && header.sourceMode == expected.mode)
    }
}

@Suite("Files Pillow refuses are refused")
struct PillowRefusalTests {
    static let cases: [String] = (try? PillowExpectations.load().errors.map(\.file)) ?? []

    @Test("each damaged fixture Pillow cannot load throws ImageDecodeError naming it", arguments: cases)
    func refusesLikePillow(file: String) throws {
        let bytes = try PillowExpectations.bytes(file)
        do {
            let image = try ImageDecoder.decode(bytes, filename: "class/\(file)")
            Issue.record("\(file) decoded to \(image.width)x\(image.height) but Pillow refuses it")
        } catch {
            #expect(error.filename == "class/\(file)")
            #expect(!error.reason.isEmpty)
        }
    }
}

@Suite("Resizing matches Pillow's Image.resize")
struct PillowResizeTests {
    @Test("NEAREST and BILINEAR resizes of synthetic images hash to Pillow's results")
    func resizesLikePillow() throws {
        let expectations = try PillowExpectations.load()
        #expect(expectations.resize.count > 50)
        var failures: [String] = []
        for c in expectations.resize {
            let source = ImageFiles.syntheticImage(width: c.source[0], height: c.source[1])
            let interpolation = try #require(Interpolation(rawValue: c.interpolation))
            let out = Resize.apply(source, width: c.target[0], height: c.target[1], interpolation: interpolation)
            let hash = ImageFiles.fnv1a64Hex(out.rgb)
            if hash != c.fnv1a64 {
                failures.append("\(c.interpolation) \(c.source) -> \(c.target)")
            }
        }
        #expect(failures.isEmpty, "resizes differing from Pillow: \(failures)")
    }
}

@Suite("Damaged files get Pillow's verdict")
struct PillowMutationTests {
    struct Mutation: Decodable {
        let file: String
        let cut: Int?
        let edits: [[Int]]
        let ok: Bool
        let format: String?
        let mode: String?
        let width: Int?
        let height: Int?
        let fnv1a64: String?
        let error: String?
    }

    @Test("each damaged variant (mutations.json) is refused when Pillow refuses it, else decodes to the same pixels")
    func sameVerdictAsPillow() throws {
        let data = try Data(contentsOf: PillowExpectations.fixtures.appendingPathComponent("mutations.json"))
        let mutations = try JSONDecoder().decode([Mutation].self, from: data)
        #expect(mutations.count > 1000)
        var originals: [String: [UInt8]] = [:]
        var disagreements: [String] = []
        for (index, m) in mutations.enumerated() {
            if originals[m.file] == nil { originals[m.file] = try PillowExpectations.bytes(m.file) }
            var bytes = originals[m.file]!
            if let cut = m.cut { bytes = Array(bytes.prefix(cut)) }
            for edit in m.edits { bytes[edit[0]] = UInt8(edit[1]) }
            let label = "#\(index) \(m.file) cut \(m.cut.map(String.init) ?? "-") edits \(m.edits)"
            do {
                let image = try ImageDecoder.decode(bytes, filename: m.file)
                if !m.ok {
                    disagreements.append("\(label): decoded, Pillow raised \(m.error ?? "?")")
                } else if image.format != m.format || image.sourceMode != m.mode || image.width != m.width
                    || image.height != m.height || ImageFiles.fnv1a64Hex(image.rgb) != m.fnv1a64
                {
                    disagreements.append("\(label): pixels or mode differ from Pillow")
                }
            } catch {
                if m.ok { disagreements.append("\(label): refused (\(error.reason)), Pillow loads it") }
            }
        }
        #expect(disagreements.isEmpty, "\(disagreements.count) disagreements: \(disagreements.prefix(20))")
    }
}
