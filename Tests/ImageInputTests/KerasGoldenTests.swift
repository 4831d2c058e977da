import Foundation
import HDF5
import ImageInput
import TestSupport
import Testing

/// Checks against `Tests/Fixtures/keras/golden.h5`, written by the real Keras + Pillow pipeline
/// (see `Tests/Fixtures/README.md`): listing, labels, formats, modes, full-size decodes and 48×48 resizes.
@Suite("Scan, decode and resize equal Keras' golden outputs")
struct KerasGoldenTests {
    static let keras = fixturesDirectory() + "/keras"
    /// The one intended difference: Keras (through Pillow) loads TIFF; Bottleneck reports it unsupported.
    static let expectedRefusals: Set<String> = ["cat/X.TIF"]

    static func scalars(_ s: String) -> [UInt32] { s.unicodeScalars.map(\.value) }

    @Test(
        "filenames, labels and class names of both splits equal generator.filenames/classes",
        arguments: ["train", "validation"])
    func listing(split: String) throws {
        let golden = try HDF5File.open(Self.keras + "/golden.h5")
        defer { golden.close() }
        let group = try golden.root.group(split)
        let scan = try DirectoryScan.scan(directory: Self.keras + "/tree/" + split)
        #expect(scan.classNames.map(Self.scalars) == (try group.dataset("class_names").readStrings()).map(Self.scalars))
        #expect(
            scan.entries.map { Self.scalars($0.filename) }
                == (try group.dataset("filenames").readStrings()).map(Self.scalars))
        #expect(scan.entries.map(\.label) == (try group.dataset("labels").read(Int32.self)))
    }

    @Test(
        "every file loads or fails as in Keras, with Pillow's format, mode, size and 48×48 pixels",
        arguments: ["train", "validation"])
    func pixels(split: String) throws {
        let golden = try HDF5File.open(Self.keras + "/golden.h5")
        defer { golden.close() }
        let group = try golden.root.group(split)
        let scan = try DirectoryScan.scan(directory: Self.keras + "/tree/" + split)
        let loadable = try group.dataset("loadable").read(UInt8.self)
        let formats = try group.dataset("formats").readStrings()
        let modes = try group.dataset("modes").readStrings()
        let sizes = try group.dataset("original_hw").read(Int32.self)
        let nearest = try group.dataset("pixels_nearest")
        let bilinear = try group.dataset("pixels_bilinear")
        #expect(scan.entries.count == loadable.count)
        var mismatches: [String] = []
        for (i, entry) in scan.entries.enumerated() where i < loadable.count {
            let decoded = try? ImageDecoder.decode(
                try ImageDecoder.readFile(entry.path, filename: entry.filename), filename: entry.filename)
            if Self.expectedRefusals.contains(entry.filename) {
                if decoded != nil { mismatches.append("\(entry.filename): expected to be refused as unsupported") }
                continue
            }
            guard loadable[i] == 1 else {
                if let decoded {
                    mismatches.append("\(entry.filename): Keras fails, decoded \(decoded.width)x\(decoded.height)")
                }
                continue
            }
            guard let decoded else {
                mismatches.append("\(entry.filename): Keras loads it, decode failed")
                continue
            }
            if decoded.format != formats[i] || decoded.sourceMode != modes[i] {
                mismatches.append(
                    "\(entry.filename): \(decoded.format)/\(decoded.sourceMode), Keras \(formats[i])/\(modes[i])")
            }
            if decoded.height != Int(sizes[2 * i]) || decoded.width != Int(sizes[2 * i + 1]) {
                mismatches.append("\(entry.filename): size \(decoded.height)x\(decoded.width)")
            }
            for (interpolation, dataset) in [(Interpolation.nearest, nearest), (.bilinear, bilinear)] {
                let expected = try dataset.readRows(i..<(i + 1), as: UInt8.self)
                let resized = Resize.apply(decoded, width: 48, height: 48, interpolation: interpolation)
                if resized.rgb != expected {
                    let diff = zip(resized.rgb, expected).map { abs(Int($0) - Int($1)) }
                    mismatches.append(
                        "\(entry.filename) \(interpolation): \(diff.filter { $0 != 0 }.count) bytes differ, max \(diff.max() ?? 0)"
                    )
                }
            }
        }
        #expect(mismatches.isEmpty, "\(mismatches)")
    }

    @Test("full-size decodes equal Pillow's convert('RGB') for every stored format and mode")
    func fullSizeDecodes() throws {
        let golden = try HDF5File.open(Self.keras + "/golden.h5")
        defer { golden.close() }
        let decodedGroup = try golden.root.group("decoded")
        let names = try decodedGroup.dataset("filenames").readStrings()
        #expect(names.count >= 20)
        for name in names where !Self.expectedRefusals.contains(name) {
            let dataset = try decodedGroup.dataset(name.replacingOccurrences(of: "/", with: "__"))
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: Self.keras + "/tree/train/" + name)))
            let image = try ImageDecoder.decode(bytes, filename: name)
            #expect(dataset.shape == [image.height, image.width, 3], "\(name)")
            #expect(image.rgb == (try dataset.read(UInt8.self)), "\(name)")
        }
    }

    @Test("non-square 64×80 nearest resizes equal load_img(target_size=(64, 80))")
    func nonSquare() throws {
        let golden = try HDF5File.open(Self.keras + "/golden.h5")
        defer { golden.close() }
        let train = try golden.root.group("train")
        let indices = try train.dataset("indices_64x80").read(Int32.self)
        let pixels = try train.dataset("pixels_nearest_64x80")
        let scan = try DirectoryScan.scan(directory: Self.keras + "/tree/train")
        for (row, index) in indices.enumerated() {
            let entry = scan.entries[Int(index)]
            let image = try ImageDecoder.decode(
                [UInt8](try Data(contentsOf: URL(fileURLWithPath: entry.path))), filename: entry.filename)
            let resized = Resize.apply(image, width: 80, height: 64, interpolation: .nearest)
            #expect(resized.rgb == (try pixels.readRows(row..<(row + 1), as: UInt8.self)), "\(entry.filename)")
        }
    }
}
