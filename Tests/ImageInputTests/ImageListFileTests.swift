import Foundation
import Testing

@testable import ImageInput

/// `ImageListFile`: CSV lists as `flow_from_dataframe(pandas.read_csv(file), x_col="filename", y_col="class")`
/// reads them, and errors that name the line and column.
@Suite("Image list file (CSV)")
struct ImageListFileTests {
    func parse(_ text: String, directory: String? = nil) throws -> (classNames: [String], images: ImageList) {
        try ImageListFile.parse(Array(text.utf8), file: "list.csv", directory: directory)
    }

    func error(_ text: String) -> ImageListError? {
        do {
            _ = try parse(text)
            return nil
        } catch let error as ImageListError {
            return error
        } catch {
            return nil
        }
    }

    @Test("columns in any order, other columns ignored, rows in file order, classes sorted by code point")
    func columnOrderAndClasses() throws {
        let list = try parse(
            "id,class,size,filename\n1,dogs,3,d/1.jpg\n2,Zebra,4,z.png\n3,cats,5,c.jpg\n4,dogs,6,d2.jpg\n")
        #expect(list.classNames == ["Zebra", "cats", "dogs"])
        #expect(list.images.map(\.filename) == ["d/1.jpg", "z.png", "c.jpg", "d2.jpg"])
        #expect(list.images.labels == [2, 0, 1, 2])
        #expect(list.images.path(at: 1) == "z.png", "no directory: the filename is the path")
    }

    @Test("paths are relative to the directory when given; an absolute filename stands as it is")
    func directoryJoin() throws {
        let list = try parse("filename,class\na/x.jpg,a\n/abs/y.jpg,b\n", directory: "/data")
        #expect(list.images.path(at: 0) == "/data/a/x.jpg")
        #expect(list.images.path(at: 1) == "/abs/y.jpg")
        #expect(list.images.filename(at: 0) == "a/x.jpg")
    }

    @Test("RFC 4180 quoting: commas, doubled quotes and line breaks in quoted fields; CRLF; a byte-order mark")
    func quoting() throws {
        let text =
            "\u{FEFF}filename,class\r\n\"a,b.jpg\",x\r\n\"say \"\"hi\"\".png\",\"y z\"\r\n\"two\nlines.jpg\",x\r\n"
        let list = try parse(text)
        #expect(list.images.map(\.filename) == ["a,b.jpg", "say \"hi\".png", "two\nlines.jpg"])
        #expect(list.classNames == ["x", "y z"])
        #expect(list.images.labels == [0, 1, 0])
    }

    @Test("blank lines are skipped; the last row needs no line break; UTF-8 names survive")
    func blankLinesAndUTF8() throws {
        let list = try parse("filename,class\n\nä/ö.jpg,ünï\n\nb.jpg,a")
        #expect(list.images.map(\.filename) == ["ä/ö.jpg", "b.jpg"])
        #expect(list.classNames == ["a", "ünï"])
    }

    @Test("a header without a filename or class column is an error naming line 1")
    func missingHeaderColumn() {
        let missing = error("file,class\na.jpg,x\n")
        #expect(missing?.line == 1)
        #expect(missing?.reason.contains("no 'filename' column") == true)
        #expect(error("filename,label\na.jpg,x\n")?.reason.contains("no 'class' column") == true)
    }

    @Test("an empty class names its line and column")
    func emptyClass() {
        let failure = error("filename,class\na.jpg,x\nb.jpg,\n")
        #expect(failure?.line == 3)
        #expect(failure?.column == 2)
        #expect(failure?.reason == "empty class")
        #expect(failure?.description == "list.csv, line 3, column 2: empty class")
    }

    @Test("bad quoting names its line and column: a stray quote, text after a closing quote, an unclosed quote")
    func badQuoting() {
        let stray = error("filename,class\na.jpg,x\nb\"c.jpg,x\n")
        #expect(stray?.line == 3 && stray?.column == 1)
        let after = error("filename,class\n\"a.jpg\"z,x\n")
        #expect(after?.line == 2 && after?.column == 1)
        #expect(after?.reason.contains("after the closing quote") == true)
        let unclosed = error("filename,class\na.jpg,x\n\"b.jpg,x\n")
        #expect(unclosed?.line == 3)
        #expect(unclosed?.reason.contains("not closed") == true)
    }

    @Test("too many or too few fields, an empty list, and bytes that are not UTF-8 are errors")
    func shapeErrors() {
        #expect(error("filename,class\na.jpg,x,extra\n")?.line == 2)
        #expect(error("class,filename\nx\n")?.reason.contains("1 field(s)") == true)
        #expect(error("filename,class\n")?.reason == "no rows after the header")
        #expect(error("")?.reason == "empty: no header row")
        let bad = try? ImageListFile.parse(
            Array("filename,class\n".utf8) + [0x61, 0xFF, 0x2C, 0x78, 0x0A], file: "l.csv", directory: nil)
        #expect(bad == nil)
    }

    @Test("a list file is read in chunks from disk, the same as parsed from memory")
    func readFromDisk() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("list-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        var text = "filename,class\n"
        for index in 0..<200_000 { text += "\"img,\(index).jpg\",c\(index % 7)\n" }
        let path = directory.appendingPathComponent("big.csv").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let list = try ImageListFile.read(path, directory: "/d")
        #expect(list.images.count == 200_000)
        #expect(list.classNames == (0..<7).map { "c\($0)" })
        #expect(list.images.filename(at: 123_456) == "img,123456.jpg")
        #expect(list.images.labels[123_456] == Int32(123_456 % 7))
        #expect(list.images.path(at: 5) == "/d/img,5.jpg")
        #expect(throws: ImageListError.self) { try ImageListFile.read(path + ".none", directory: nil) }
    }

    @Test("plain rows split at once read the same as quoted, CRLF and non-ASCII rows, and faults name their lines")
    func plainAndOtherRowsAcrossChunks() throws {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("list-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        // 40 classes (more than are compared byte by byte), extra columns, every kind of row, over 4 MiB chunks.
        var text = "id,filename,class,note\n"
        var names: [String] = []
        var classes: [String] = []
        for index in 0..<220_000 {
            let name = index % 1000 == 7 ? "bild-\(index)-ä.jpg" : "img-\(index).jpg"
            let label = "k\(index % 40)"
            switch index % 9 {
            case 3: text += "\(index),\"\(name)\",\(label),x\r\n"
            case 5: text += "\(index),\(name),\(label),\n\n"
            case 6: text += "\(index),\(name),\(label),windows\r\n"
            default: text += "\(index),\(name),\(label),note \(index)\n"
            }
            names.append(name)
            classes.append(label)
        }
        let path = directory.appendingPathComponent("mixed.csv").path
        try Data(text.utf8).write(to: URL(fileURLWithPath: path))
        let list = try ImageListFile.read(path, directory: nil)
        let sortedClasses = Set(classes).sorted()
        #expect(list.classNames == sortedClasses)
        #expect(list.images.count == names.count)
        for index in [0, 1, 3, 5, 7, 131_071, 150_007, 219_999] {
            #expect(list.images.filename(at: index) == names[index])
            #expect(list.images.labels[index] == Int32(sortedClasses.firstIndex(of: classes[index])!))
        }
        #expect(list.images.labels.map { sortedClasses[Int($0)] } == classes)

        // Faults after many plain rows: the line (blank lines counted) and column are those of the fault.
        var plain = "filename,class\n"
        for index in 0..<180_000 { plain += "a\(index).jpg,c\(index % 3)\n" }
        for (row, column, bad) in [
            (2, 2, "a.jpg,c\"x\"\n"), (2, 3, "a.jpg,c,extra\n"), (2, 2, "a.jpg,\n"), (2, 0, "a.jpg\n"),
            (3, 2, "a.jpg,c0\r\nb.jpg,\r\n"), (3, 2, "a.jpg,c0\rb.jpg,\n"),
        ] {
            let broken = directory.appendingPathComponent("broken.csv").path
            try Data((plain + bad + "z.jpg,c0\n").utf8).write(to: URL(fileURLWithPath: broken))
            do {
                _ = try ImageListFile.read(broken, directory: nil)
                Issue.record("read a list with \(bad.debugDescription)")
            } catch let error as ImageListError {
                #expect(error.line == 180_000 + row, "\(bad.debugDescription): \(error)")
                #expect(error.column == column, "\(bad.debugDescription): \(error)")
            }
        }
    }
}
