import Export
import Foundation
import Testing

@Suite("NumPy .npy headers")
struct NpyFormatTests {
    /// The exact preamble `numpy.save` writes for `np.zeros((3, 4, 4, 512), np.float32)`.
    @Test("the header of a float32 (3, 4, 4, 512) array is numpy.save's, byte for byte")
    func fourDimensionalHeader() {
        let dict = "{'descr': '<f4', 'fortran_order': False, 'shape': (3, 4, 4, 512), }"
        let expected: [UInt8] =
            [0x93] + Array("NUMPY".utf8) + [1, 0, 118, 0] + Array(dict.utf8)
            + [UInt8](repeating: 0x20, count: 118 - dict.utf8.count - 1) + [0x0A]
        let header = NpyFormat.header(type: .float32, shape: [3, 4, 4, 512])
        #expect(header == expected)
        #expect(header.count == 128)
    }

    @Test("one-element shapes are written as (N,), and every preamble is a multiple of 64 ending in a newline")
    func alignmentAndTuples() {
        #expect(NpyFormat.shapeLiteral([7]) == "(7,)")
        #expect(NpyFormat.shapeLiteral([]) == "()")
        #expect(NpyFormat.shapeLiteral([2, 3]) == "(2, 3)")
        for shape in [[0], [1], [12345], [3, 2], [0, 1, 1, 8], [123_456_789_012, 7, 7, 512], [1, 2, 3, 4, 5, 6, 7]] {
            for type in [NpyFormat.ElementType.float32, .int32] {
                let header = NpyFormat.header(type: type, shape: shape)
                #expect(header.count % 64 == 0, "shape \(shape)")
                #expect(header.last == 0x0A)
                let length = Int(header[8]) | Int(header[9]) << 8
                #expect(length + 10 == header.count)
                let text = String(decoding: header[10...], as: UTF8.self)
                #expect(text.hasPrefix("{'descr': '\(type.rawValue)', 'fortran_order': False, 'shape': "))
                #expect(text.contains("'shape': \(NpyFormat.shapeLiteral(shape)), }"))
            }
        }
        let labels = String(decoding: NpyFormat.header(type: .int32, shape: [5])[10...], as: UTF8.self)
        #expect(labels.contains("'shape': (5,), }"))
    }

    @Test("CSV fields are quoted as RFC 4180 says")
    func csvQuoting() {
        #expect(FeatureExport.csvRow(["cat/a.jpg", "cat", "0"]) == "cat/a.jpg,cat,0\r\n")
        #expect(FeatureExport.csvRow(["a,b.jpg", "say \"hi\"", "1"]) == "\"a,b.jpg\",\"say \"\"hi\"\"\",1\r\n")
        #expect(FeatureExport.csvRow(["line\nbreak", "x"]) == "\"line\nbreak\",x\r\n")
    }
}
