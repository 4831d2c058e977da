import Foundation
import ImageInput
import TestSupport
import Testing

private func decodeFailure(_ bytes: [UInt8], _ name: String) -> ImageDecodeError? {
    do {
        _ = try ImageDecoder.decode(bytes, filename: name)
        return nil
    } catch {
        return error
    }
}

@Suite("Unreadable images fail with an error naming the file, as Pillow refuses them")
struct DecodeErrorTests {
    @Test("a zero-byte file is 'empty file'")
    func emptyFile() throws {
        let error = try #require(decodeFailure([], "cats/empty.jpg"))
        #expect(error.filename == "cats/empty.jpg")
        #expect(error.reason == "empty file")
        #expect(error.description == "cats/empty.jpg: empty file")
        #expect(throws: ImageDecodeError.self) { try ImageDecoder.header([], filename: "cats/empty.jpg") }
    }

    @Test(
        "JPEGs cut short are truncated (Pillow: 'image file is truncated')",
        arguments: ["rgb420.jpg", "progressive.jpg", "gray.jpg", "cmyk.jpg"])
    func truncatedJPEG(file: String) throws {
        let bytes = try PillowExpectations.bytes(file)
        // (Only the EOI marker missing is also truncated for some files and not others: it depends on
        // whether the decoder reads ahead; the damaged-file corpus covers it.)
        for cut in [bytes.count - 10, bytes.count / 2] {
            let error = try #require(decodeFailure(Array(bytes.prefix(cut)), "x/\(file)"), "cut at \(cut)")
            #expect(error.reason.hasPrefix("truncated JPEG"), "cut at \(cut): \(error.reason)")
            #expect(error.description.hasPrefix("x/\(file): "))
        }
        let tiny = try #require(decodeFailure(Array(bytes.prefix(40)), file))
        #expect(tiny.reason.contains("JPEG"))
    }

    @Test("bytes after a JPEG's EOI are ignored, as Pillow ignores them")
    func trailingBytesAfterJPEG() throws {
        let bytes = try PillowExpectations.bytes("rgb420.jpg")
        let image = try ImageDecoder.decode(bytes + Array("garbage".utf8), filename: "t.jpg")
        #expect(image.rgb == (try PillowExpectations.bytes("rgb420.jpg.rgb")))
    }

    @Test("a PNG cut short is truncated; a damaged header checksum is corrupt")
    func brokenPNG() throws {
        let bytes = try PillowExpectations.bytes("rgb.png")
        let error = try #require(decodeFailure(Array(bytes.prefix(bytes.count / 2)), "p.png"))
        #expect(error.reason.hasPrefix("truncated PNG"), "\(error.reason)")
        var damaged = bytes
        damaged[20] ^= 0xFF  // inside IHDR's data: its CRC no longer matches
        let crc = try #require(decodeFailure(damaged, "p.png"))
        #expect(crc.reason.hasPrefix("corrupt PNG"), "\(crc.reason)")
    }

    @Test("BMP and PPM files with too little pixel data are errors")
    func truncatedBMPAndPPM() throws {
        for file in ["rgb24.bmp", "p8.bmp", "rgb.ppm", "gray.pgm"] {
            let bytes = try PillowExpectations.bytes(file)
            let error = try #require(decodeFailure(Array(bytes.prefix(bytes.count - 5)), file))
            #expect(error.reason.hasPrefix("truncated"), "\(file): \(error.reason)")
        }
    }

    @Test("other formats and non-image bytes are refused by content, whatever the extension")
    func unsupportedContent() throws {
        let tiff: [UInt8] = [0x49, 0x49, 0x2A, 0x00, 8, 0, 0, 0] + [UInt8](repeating: 0, count: 32)
        #expect(decodeFailure(tiff, "a.tif")?.reason.hasPrefix("unsupported format TIFF") == true)
        #expect(
            decodeFailure([0x4D, 0x4D, 0x00, 0x2A, 0, 0, 0, 8], "a.tiff")?.reason.hasPrefix("unsupported format TIFF")
                == true)
        #expect(
            decodeFailure(Array("GIF89a".utf8) + [1, 0, 1, 0, 0, 0, 0], "a.jpg")?.reason.hasPrefix(
                "unsupported format GIF") == true)
        let webp = Array("RIFF".utf8) + [0, 0, 0, 0] + Array("WEBPVP8 ".utf8)
        #expect(decodeFailure(webp, "a.png")?.reason.hasPrefix("unsupported format WEBP") == true)
        let garbage = Array("this is a text file, not an image".utf8)
        #expect(decodeFailure(garbage, "notes.jpg")?.reason == "not a supported image (cannot identify image file)")
        // A PNG named .jpg is a PNG: content decides, never the name.
        let png = try PillowExpectations.bytes("rgb.png")
        #expect(try ImageDecoder.decode(png, filename: "looks.jpg").format == "PNG")
    }

    @Test("a JPEG signature followed by garbage is a corrupt JPEG")
    func corruptJPEG() throws {
        let bytes: [UInt8] = [0xFF, 0xD8, 0xFF, 0xE0] + [UInt8](repeating: 0x41, count: 100)
        let error = try #require(decodeFailure(bytes, "bad.jpg"))
        #expect(error.reason.contains("JPEG"), "\(error.reason)")
    }
}

@Suite("Damaged bytes never crash the decoders")
struct DecoderRobustnessTests {
    @Test("every fixture with random byte damage and cuts either decodes or throws ImageDecodeError")
    func mutatedFixtures() throws {
        let expectations = try PillowExpectations.load()
        var generator = SplitMix64(seed: 20_261_129)
        var outcomes = (decoded: 0, refused: 0)
        for file in expectations.decode.map(\.file) + expectations.errors.map(\.file) {
            let original = try PillowExpectations.bytes(file)
            for round in 0..<40 {
                var bytes = original
                if round % 4 == 3 {
                    bytes = Array(bytes.prefix(Int(generator.next() % UInt64(bytes.count + 1))))
                } else {
                    for _ in 0...(round % 6) where !bytes.isEmpty {
                        let at = Int(generator.next() % UInt64(bytes.count))
                        // Damage headers more often than pixel data: they hold sizes and offsets.
                        let index = round % 2 == 0 ? min(at, 80 % bytes.count) : at
                        bytes[index] = UInt8(truncatingIfNeeded: generator.next())
                    }
                }
                do {
                    let image = try ImageDecoder.decode(bytes, filename: file)
                    #expect(image.rgb.count == image.width * image.height * 3)
                    _ = try? ImageDecoder.header(bytes, filename: file)
                    outcomes.decoded += 1
                } catch {
                    #expect(error.filename == file)
                    outcomes.refused += 1
                }
            }
        }
        #expect(outcomes.decoded > 0 && outcomes.refused > 0)
    }
}

/// Small deterministic generator for the damage positions.
struct SplitMix64 {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}
