import Export
import Foundation
import Storage
import TestSupport
import Testing

@Suite("export: .npy and CSV files of a real feature file")
struct ExportCommandTests {
    @Test("npy: headers, shapes, dtypes and values match the feature file; NumPy reads them")
    func npyFiles() throws {
        let fixture = try PipelineFixture.shared.get()
        let out = fixture.directory + "/export-npy/nested"
        let result = try PipelineFixture.run([
            "export", "--features", fixture.features, "--format", "npy", "--output", out,
        ])
        #expect(result.stdout.contains("wrote \(out)/bottleneck_features_train.npy"))
        let file = try FeatureFile.open(fixture.features)
        #expect(try String(contentsOfFile: out + "/class_names.txt", encoding: .utf8) == "circle\nsquare\ntriangle\n")
        for name in ["train", "validation"] {
            let split = try file.split(name)
            let bytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out + "/bottleneck_features_\(name).npy")))
            let header = NpyFormat.header(type: .float32, shape: [split.count] + split.featureShape)
            #expect(Array(bytes.prefix(header.count)) == header)
            #expect(Array(bytes.prefix(8)) == [0x93] + Array("NUMPY".utf8) + [1, 0])
            let values = try split.readFeatures(rows: 0..<split.count)
            let body = Array(bytes[header.count...])
            #expect(body == values.withUnsafeBytes { Array($0) })

            let labelBytes = [UInt8](try Data(contentsOf: URL(fileURLWithPath: out + "/labels_\(name).npy")))
            let labelHeader = NpyFormat.header(type: .int32, shape: [split.count])
            #expect(Array(labelBytes.prefix(labelHeader.count)) == labelHeader)
            #expect(Array(labelBytes[labelHeader.count...]) == (try split.labels()).withUnsafeBytes { Array($0) })
            let names = try String(contentsOfFile: out + "/filenames_\(name).txt", encoding: .utf8)
            #expect(names == (try split.filenames()).map { $0 + "\n" }.joined())
        }
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: out).filter { $0.contains(".tmp") }
        #expect(leftovers.isEmpty)
    }

    @Test(
        "NumPy loads the exported arrays with the feature file's shapes, dtypes and values",
        .enabled(if: numpyUnavailable == nil, "skipped: \(numpyUnavailable ?? "")"))
    func numpyReadsThem() throws {
        let fixture = try PipelineFixture.shared.get()
        let out = fixture.directory + "/export-numpy"
        try PipelineFixture.run(["export", "--features", fixture.features, "--output", out])
        let oneHot = fixture.directory + "/export-onehot"
        try PipelineFixture.run(["export", "--features", fixture.features, "--output", oneHot, "--one-hot"])
        let file = try FeatureFile.open(fixture.features)
        for name in ["train", "validation"] {
            let split = try file.split(name)
            let raw = fixture.directory + "/\(name).raw"
            let script = """
                from io import BytesIO
                from sys import argv
                np = __import__("numpy")
                out, onehot, name, raw = argv[1:5]
                path = f"{out}/bottleneck_features_{name}.npy"
                with open(path, "rb") as f:
                    assert np.lib.format.read_magic(f) == (1, 0)
                x = np.load(path, allow_pickle=False)
                y = np.load(f"{out}/labels_{name}.npy", allow_pickle=False)
                z = np.load(f"{onehot}/labels_{name}.npy", allow_pickle=False)
                assert x.dtype == np.dtype("<f4") and y.dtype == np.dtype("<i4") and z.dtype == np.dtype("<f4")
                assert (z.argmax(axis=1) == y).all() and (z.sum(axis=1) == 1).all()
                if hasattr(np.lib.format, "GROWTH_AXIS_MAX_DIGITS"):  # NumPy versions that pad for growth
                    buffer = BytesIO(); np.save(buffer, x)
                    assert open(path, "rb").read() == buffer.getvalue(), "not numpy.save's bytes"
                    buffer = BytesIO(); np.save(buffer, y)
                    assert open(f"{out}/labels_{name}.npy", "rb").read() == buffer.getvalue()
                open(raw, "wb").write(x.tobytes() + y.tobytes())
                print(x.shape, y.shape, z.shape)
                """
            let result = try #require(runTool(pythonWithNumpy ?? "python3", ["-c", script, out, oneHot, name, raw]))
            #expect(result.status == 0, "\(result.stderr)")
            let shape = ([split.count] + split.featureShape).map(String.init).joined(separator: ", ")
            #expect(
                result.stdout.trimmingCharacters(in: .whitespacesAndNewlines)
                    == "(\(shape)) (\(split.count),) (\(split.count), 3)")
            let features = try split.readFeatures(rows: 0..<split.count).withUnsafeBytes { Array($0) }
            let labels = try split.labels().withUnsafeBytes { Array($0) }
            #expect([UInt8](try Data(contentsOf: URL(fileURLWithPath: raw))) == features + labels)
        }
    }

    @Test("csv: filename,class,label per split, RFC 4180 quoting; usage errors exit 2, bad input 1")
    func csvAndErrors() throws {
        let fixture = try PipelineFixture.shared.get()
        let out = fixture.directory + "/export-csv"
        try PipelineFixture.run(["export", "--features", fixture.features, "--format", "csv", "--output", out])
        let text = try String(contentsOfFile: out + "/validation.csv", encoding: .utf8)
        let lines = text.components(separatedBy: "\r\n")
        #expect(lines.first == "filename,class,label")
        #expect(lines.contains("\"circle/img 0,0.jpg\",circle,0"))
        #expect(lines.count == 1 + 9 + 1)  // header, 9 rows, the empty string after the last CRLF
        #expect(FileManager.default.fileExists(atPath: out + "/train.csv"))

        try PipelineFixture.run(
            ["export", "--features", fixture.features, "--format", "xls", "--output", out], expecting: 2)
        let missing = try PipelineFixture.run(
            ["export", "--features", fixture.directory + "/none.h5", "--output", out], expecting: 1)
        #expect(missing.stderr.contains("none.h5"))
    }
}
