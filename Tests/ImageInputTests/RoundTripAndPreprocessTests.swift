import Foundation
import TestSupport
import Testing

@testable import ImageInput

@Suite("Images written by the test helpers decode back exactly")
struct RoundTripTests {
    let width = 23
    let height = 17
    var rgb: [UInt8] { ImageFiles.syntheticRGB(width: width, height: height) }

    @Test("lossless formats: PNG (RGB, RGBA, gray, gray+alpha), BMP bottom-up and top-down, PPM")
    func lossless() throws {
        let rgb = self.rgb
        #expect(
            try ImageDecoder.decode(try ImageFiles.png(rgb, width: width, height: height, channels: 3), filename: "a")
                .rgb == rgb)
        var rgba = [UInt8]()
        for i in 0..<(width * height) { rgba += rgb[(3 * i)..<(3 * i + 3)] + [UInt8(i % 256)] }
        let fromRGBA = try ImageDecoder.decode(
            try ImageFiles.png(rgba, width: width, height: height, channels: 4), filename: "a")
        #expect(fromRGBA.rgb == rgb && fromRGBA.sourceMode == "RGBA")
        let gray = (0..<(width * height)).map { UInt8(($0 * 7) % 256) }
        let expectedGray = gray.flatMap { [$0, $0, $0] }
        let l = try ImageDecoder.decode(
            try ImageFiles.png(gray, width: width, height: height, channels: 1), filename: "a")
        #expect(l.rgb == expectedGray && l.sourceMode == "L")
        let la = try ImageDecoder.decode(
            try ImageFiles.png(gray.flatMap { [$0, 255 - $0] }, width: width, height: height, channels: 2),
            filename: "a")
        #expect(la.rgb == expectedGray && la.sourceMode == "LA")
        for topDown in [false, true] {
            let bmp = try ImageDecoder.decode(
                ImageFiles.bmp24(rgb, width: width, height: height, topDown: topDown), filename: "a")
            #expect(bmp.rgb == rgb && bmp.format == "BMP")
        }
        let ppm = try ImageDecoder.decode(ImageFiles.ppm(rgb, width: width, height: height), filename: "a")
        #expect(ppm.rgb == rgb && ppm.format == "PPM")
    }

    @Test("JPEG: RGB, gray, progressive, CMYK and YCCK decode with the right mode and close pixels")
    func jpegModes() throws {
        // A smooth image, so that lossy coding stays close.
        var rgb = [UInt8]()
        for y in 0..<height { for x in 0..<width { rgb += [UInt8(x * 8), UInt8(y * 10), 128] } }
        let plain = try ImageDecoder.decode(
            try ImageFiles.jpeg(rgb, width: width, height: height, channels: 3, quality: 100), filename: "a")
        let progressive = try ImageDecoder.decode(
            try ImageFiles.jpeg(rgb, width: width, height: height, channels: 3, quality: 100, progressive: true),
            filename: "a")
        for image in [plain, progressive] {
            #expect(image.sourceMode == "RGB" && image.width == width && image.height == height)
            let maxDiff = zip(image.rgb, rgb).map { abs(Int($0) - Int($1)) }.max() ?? 0
            #expect(maxDiff <= 8, "max diff \(maxDiff)")
        }
        let gray = try ImageDecoder.decode(
            try ImageFiles.jpeg(
                [UInt8](repeating: 128, count: width * height), width: width, height: height, channels: 1),
            filename: "a")
        #expect(gray.sourceMode == "L" && gray.rgb.allSatisfy { $0 == 128 })
        // Pillow reads every CMYK JPEG as Adobe-inverted ("CMYK;I"): stored 255s are no ink (white), stored 0s are
        // full ink (black).
        for ycck in [false, true] {
            for (stored, white) in [(UInt8(255), true), (UInt8(0), false)] {
                let image = try ImageDecoder.decode(
                    try ImageFiles.jpeg(
                        [UInt8](repeating: stored, count: width * height * 4), width: width, height: height,
                        channels: 4,
                        ycck: ycck),
                    filename: "a")
                #expect(image.sourceMode == "CMYK")
                #expect(image.rgb.allSatisfy { white ? $0 >= 253 : $0 <= 2 }, "ycck \(ycck) stored \(stored)")
            }
        }
    }

    @Test("header reads size, format and mode without decoding")
    func header() throws {
        let png = try ImageFiles.png(rgb, width: width, height: height, channels: 3)
        let h = try ImageDecoder.header(png, filename: "a")
        #expect(h.width == width && h.height == height && h.format == "PNG" && h.sourceMode == "RGB")
        let jpeg = try ImageFiles.jpeg(rgb, width: width, height: height, channels: 3)
        let j = try ImageDecoder.header(Array(jpeg.prefix(jpeg.count - 20)), filename: "a")
        #expect(j.width == width && j.height == height && j.format == "JPEG" && j.sourceMode == "RGB")
    }
}

@Suite("Reading files names the file on failure")
struct ReadFileTests {
    @Test("a file is read whole; missing files, dangling links and directories are ImageDecodeErrors")
    func readFile() throws {
        let dir = try ImageFiles.temporaryDirectory("read")
        defer { ImageFiles.removeTree(dir) }
        let bytes = (0..<10_000).map { UInt8($0 % 251) }
        try ImageFiles.write(bytes, to: dir + "/a.jpg")
        #expect(try ImageDecoder.readFile(dir + "/a.jpg", filename: "c/a.jpg") == bytes)
        try ImageFiles.write([], to: dir + "/empty.jpg")
        #expect(try ImageDecoder.readFile(dir + "/empty.jpg", filename: "c/empty.jpg").isEmpty)
        try FileManager.default.createSymbolicLink(atPath: dir + "/gone.jpg", withDestinationPath: dir + "/missing.jpg")
        for (path, name) in [
            (dir + "/missing.jpg", "c/missing.jpg"), (dir + "/gone.jpg", "c/gone.jpg"), (dir, "c/dir.jpg"),
        ] {
            do {
                _ = try ImageDecoder.readFile(path, filename: name)
                Issue.record("\(name) should not be readable")
            } catch {
                #expect(error.filename == name)
            }
        }
    }
}

@Suite("Preprocessing is bit-identical to Keras' float32 arithmetic")
struct PreprocessTests {
    @Test("rescale = x * float32(1/255) and caffe = BGR minus ImageNet means, for every byte value")
    func knownAnswers() throws {
        let expectations = try PillowExpectations.load()
        let values = (0..<256).map { UInt8($0) }
        let image = DecodedImage(
            width: 256, height: 1, rgb: values.flatMap { [$0, $0, $0] }, format: "PNG", sourceMode: "L")
        var out = [Float](repeating: .nan, count: 256 * 3)
        out.withUnsafeMutableBufferPointer { Preprocess.apply(image, mode: .rescale, into: $0.baseAddress!) }
        for v in 0..<256 {
            #expect(out[3 * v].bitPattern == expectations.rescale_bits[v], "rescale \(v)")
        }
        out.withUnsafeMutableBufferPointer { Preprocess.apply(image, mode: .caffe, into: $0.baseAddress!) }
        for v in 0..<256 {
            for c in 0..<3 {
                #expect(out[3 * v + c].bitPattern == expectations.caffe_bits_bgr[c][v], "caffe \(v) channel \(c)")
            }
        }
    }

    @Test("caffe swaps channels to BGR; rescale keeps RGB")
    func channelOrder() {
        let image = DecodedImage(width: 1, height: 1, rgb: [10, 20, 30], format: "PNG", sourceMode: "RGB")
        var out = [Float](repeating: 0, count: 3)
        out.withUnsafeMutableBufferPointer { Preprocess.apply(image, mode: .caffe, into: $0.baseAddress!) }
        #expect(out == [Float(30) - Float(103.939), Float(20) - Float(116.779), Float(10) - Float(123.68)])
        out.withUnsafeMutableBufferPointer { Preprocess.apply(image, mode: .rescale, into: $0.baseAddress!) }
        #expect(
            out == [Float(10) * Float(1.0 / 255.0), Float(20) * Float(1.0 / 255.0), Float(30) * Float(1.0 / 255.0)])
    }

    @Test(
        "the pipeline equals decode, then Resize, then Preprocess, for every mode and interpolation",
        arguments: Interpolation.allCases, Preprocessing.allCases)
    func pipeline(interpolation: Interpolation, preprocessing: Preprocessing) throws {
        let bytes = try PillowExpectations.bytes("rgb.png")
        let decoded = try ImageDecoder.decode(bytes, filename: "rgb.png")
        for (height, width) in [(150, 150), (53, 37), (20, 61)] {
            let settings = ImageSettings(
                height: height, width: width, interpolation: interpolation, preprocessing: preprocessing)
            var out = [Float](repeating: .nan, count: settings.floatsPerImage)
            try out.withUnsafeMutableBufferPointer {
                try ImagePipeline.prepare(bytes, filename: "rgb.png", settings: settings, into: $0.baseAddress!)
            }
            let resized = Resize.apply(decoded, width: width, height: height, interpolation: interpolation)
            var expected = [Float](repeating: 0, count: settings.floatsPerImage)
            expected.withUnsafeMutableBufferPointer {
                Preprocess.apply(resized, mode: preprocessing, into: $0.baseAddress!)
            }
            #expect(out.map(\.bitPattern) == expected.map(\.bitPattern), "\(height)x\(width)")
        }
        let settings = ImageSettings(
            height: 150, width: 150, interpolation: interpolation, preprocessing: preprocessing)
        var out = [Float](repeating: .nan, count: settings.floatsPerImage)
        #expect(throws: ImageDecodeError.self) {
            try out.withUnsafeMutableBufferPointer {
                try ImagePipeline.prepare([], filename: "e.jpg", settings: settings, into: $0.baseAddress!)
            }
        }
    }

    @Test("resizing to the current size returns the image unchanged")
    func resizeNoOp() {
        let image = ImageFiles.syntheticImage(width: 9, height: 4)
        for interpolation in Interpolation.allCases {
            #expect(Resize.apply(image, width: 9, height: 4, interpolation: interpolation).rgb == image.rgb)
        }
    }

    @Test("NEAREST source indices follow Pillow's accumulated double coordinate")
    func nearestIndices() {
        // 5 -> 3: scale 5/3; coordinates 0.833, 2.5, 4.167 -> 0, 2, 4.
        #expect(Resize.nearestIndices(inSize: 5, outSize: 3) == [0, 2, 4])
        // Upscale 2 -> 5: scale 0.4; coordinates 0.2, 0.6, 1.0, 1.4, 1.8 -> 0, 0, 1, 1, 1.
        #expect(Resize.nearestIndices(inSize: 2, outSize: 5) == [0, 0, 1, 1, 1])
    }
}
