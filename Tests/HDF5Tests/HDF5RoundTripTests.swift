import Foundation
import HDF5
import TestSupport
import Testing

@Suite("HDF5 wrapper")
struct HDF5RoundTripTests {
    @Test("numbers, extendible rows, strings and attributes survive a write and a re-open")
    func roundTrip() throws {
        let directory = try TemporaryDirectory("hdf5")
        defer { directory.remove() }
        let path = directory.file("round.h5")
        do {
            let file = try HDF5File.create(path)
            let group = try file.root.createGroup("train/inner")
            try group.write("matrix", [1, 2, 3, 4, 5, 6] as [Float], shape: [2, 3])
            let rows = try file.root.createDataset(
                "train/features", of: Float.self, shape: [0, 2, 2], maxRows: Int.max, chunkRows: 4, deflate: 4)
            try rows.writeRows((0..<8).map { Float($0) }, at: 0)
            try rows.writeRows((8..<16).map { Float($0) }, at: 2)
            try file.root.writeStrings("names", ["cat/a.jpg", "dög/ü.png", ""])
            try file.root.attributes.set("layer_names", strings: ["block1_conv1", "block1_pool"])
            try file.root.attributes.set("format", string: "bottleneck-features")
            try file.root.attributes.set("image_height", int: 150)
            try file.root.attributes.set("shape", ints: [4, 4, 512])
            try file.root.attributes.set("learning_rate", double: 0.01)
            try group.attributes.set("weight_names", strings: [])
            file.close()
        }
        let file = try HDF5File.open(path)
        #expect(try file.root.memberNames() == ["names", "train"])
        #expect(file.root.isGroup("train/inner"))
        #expect(file.root.isDataset("train/features"))
        #expect(!file.root.exists("train/missing/deeper"))
        #expect(try file.root.dataset("train/inner/matrix").read(Float.self) == [1, 2, 3, 4, 5, 6])
        let features = try file.root.dataset("train/features")
        #expect(features.shape == [4, 2, 2])
        #expect(try features.readRows(1..<3, as: Float.self) == (4..<12).map { Float($0) })
        #expect(try features.read(Double.self) == (0..<16).map { Double($0) })
        #expect(try file.root.dataset("names").readStrings() == ["cat/a.jpg", "dög/ü.png", ""])
        let attributes = file.root.attributes
        #expect(try attributes.strings("layer_names") == ["block1_conv1", "block1_pool"])
        #expect(try attributes.string("format") == "bottleneck-features")
        #expect(try attributes.int("image_height") == 150)
        #expect(try attributes.ints("shape") == [4, 4, 512])
        #expect(try attributes.double("learning_rate") == 0.01)
        #expect(try file.root.group("train/inner").attributes.strings("weight_names") == [])
        #expect(Set(try attributes.names()) == ["layer_names", "format", "image_height", "shape", "learning_rate"])
    }

    @Test("errors name the file and the object that is missing or wrong")
    func errors() throws {
        let directory = try TemporaryDirectory("hdf5-errors")
        defer { directory.remove() }
        let text = directory.file("not.h5")
        try "hello".write(toFile: text, atomically: true, encoding: .utf8)
        #expect(!HDF5File.isHDF5(text))
        let notHDF5 = #expect(throws: HDF5Error.self) { try HDF5File.open(text) }
        #expect(notHDF5?.description.contains("not an HDF5 file") == true)
        #expect(notHDF5?.description.contains("not.h5") == true)

        let path = directory.file("ok.h5")
        let file = try HDF5File.create(path)
        try file.root.write("labels", [1, 2] as [Int32], shape: [2])
        let missing = #expect(throws: HDF5Error.self) { try file.root.dataset("features") }
        #expect(missing?.description == "\(path): /features: no such dataset")
        let wrongKind = #expect(throws: HDF5Error.self) { try file.root.group("labels") }
        #expect(wrongKind?.description.contains("is not a group") == true)
        let attribute = #expect(throws: HDF5Error.self) { try file.root.attributes.int("nope") }
        #expect(attribute?.description.contains("attribute 'nope'") == true)
        let strings = #expect(throws: HDF5Error.self) {
            try file.root.dataset("labels").readRows(1..<5, as: Int32.self)
        }
        #expect(strings?.description.contains("outside shape") == true)
        file.close()

        let data = try Data(contentsOf: URL(fileURLWithPath: path))
        let truncated = directory.file("truncated.h5")
        try data.prefix(data.count / 2).write(to: URL(fileURLWithPath: truncated))
        let damaged = #expect(throws: HDF5Error.self) {
            let file = try HDF5File.open(truncated)
            _ = try file.root.dataset("labels").read(Int32.self)
        }
        #expect(damaged?.description.contains("truncated.h5") == true)
    }

    @Test("an open file's descriptor is close-on-exec: processes started meanwhile do not keep it, nor its lock")
    func descriptorsCloseOnExec() throws {
        let directory = try TemporaryDirectory("hdf5-cloexec")
        defer { directory.remove() }
        let path = directory.file("cloexec.h5")
        /// The flags of this process's descriptors open on `path` (from /proc/self/fd).
        func descriptorFlags() throws -> [Int32] {
            let target = URL(fileURLWithPath: path).resolvingSymlinksInPath().path
            return try FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd").compactMap { name in
                guard let fd = Int32(name),
                    (try? FileManager.default.destinationOfSymbolicLink(atPath: "/proc/self/fd/" + name)) == target
                else { return nil }
                return fcntl(fd, F_GETFD)
            }
        }
        let created = try HDF5File.create(path)
        try created.root.write("x", [1] as [Float], shape: [1])
        #expect(try descriptorFlags().allSatisfy { $0 >= 0 && $0 & FD_CLOEXEC != 0 })
        #expect(try !descriptorFlags().isEmpty)
        created.close()
        let opened = try HDF5File.open(path)
        #expect(try !descriptorFlags().isEmpty)
        #expect(try descriptorFlags().allSatisfy { $0 >= 0 && $0 & FD_CLOEXEC != 0 })
        opened.close()
    }
}
