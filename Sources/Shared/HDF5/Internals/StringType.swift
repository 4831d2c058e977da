import CHDF5
import CShims
import Foundation

/// HDF5 string types and conversions between HDF5 string buffers and Swift strings.
enum StringType {
    /// Variable-length UTF-8 (h5py's `str`).
    static func variableUTF8() -> hid_t {
        let type = H5Tcopy(bn_h5t_c_s1())
        H5Tset_size(type, bn_h5t_variable())
        H5Tset_cset(type, H5T_CSET_UTF8)
        return type
    }

    /// Fixed-length, NUL-padded byte strings of `size` bytes (numpy's 'S' dtype).
    static func fixed(size: Int) -> hid_t {
        let type = H5Tcopy(bn_h5t_c_s1())
        H5Tset_size(type, max(1, size))
        H5Tset_strpad(type, H5T_STR_NULLPAD)
        return type
    }

    /// Calls `body` with an array of C string pointers that stay valid during the call.
    static func withCStringArray<R>(_ strings: [String], _ body: (UnsafeRawPointer) throws -> R) rethrows -> R {
        let pointers: [UnsafeMutablePointer<CChar>?] = strings.map { strdup($0) }
        defer { pointers.forEach { free($0) } }
        return try pointers.withUnsafeBufferPointer { try body(UnsafeRawPointer($0.baseAddress!)) }
    }

    /// Reads `count` strings with the reader `read(memoryType, buffer)`, whatever the stored string kind.
    ///
    /// `storedType` is the file's datatype (owned by the caller). Fixed strings are split and their
    /// NUL/space padding removed; variable-length ones are copied and reclaimed.
    static func read(
        count: Int, storedType: hid_t, space: hid_t, _ read: (hid_t, UnsafeMutableRawPointer) -> herr_t
    ) -> [String]? {
        guard H5Tget_class(storedType) == H5T_STRING else { return nil }
        if count == 0 { return [] }
        if H5Tis_variable_str(storedType) > 0 {
            let memoryType = H5Tcopy(bn_h5t_c_s1())
            H5Tset_size(memoryType, bn_h5t_variable())
            H5Tset_cset(memoryType, H5Tget_cset(storedType))
            defer { H5Tclose(memoryType) }
            var pointers = [UnsafeMutablePointer<CChar>?](repeating: nil, count: count)
            let status = pointers.withUnsafeMutableBufferPointer {
                read(memoryType, UnsafeMutableRawPointer($0.baseAddress!))
            }
            guard status >= 0 else { return nil }
            let strings = pointers.map { $0.map { String(cString: $0) } ?? "" }
            pointers.withUnsafeMutableBufferPointer {
                _ = H5Dvlen_reclaim(memoryType, space, hid_t(H5P_DEFAULT), $0.baseAddress)
            }
            return strings
        }
        let size = H5Tget_size(storedType)
        let memoryType = H5Tcopy(bn_h5t_c_s1())
        H5Tset_size(memoryType, size)
        H5Tset_strpad(memoryType, H5T_STR_NULLPAD)
        defer { H5Tclose(memoryType) }
        var bytes = [UInt8](repeating: 0, count: size * count)
        let status = bytes.withUnsafeMutableBytes { read(memoryType, $0.baseAddress!) }
        guard status >= 0 else { return nil }
        return (0..<count).map { index in
            var slice = bytes[(index * size)..<((index + 1) * size)]
            if let end = slice.firstIndex(of: 0) { slice = slice[..<end] }
            while let last = slice.last, last == 0x20, H5Tget_strpad(storedType) == H5T_STR_SPACEPAD {
                slice = slice.dropLast()
            }
            return String(decoding: slice, as: UTF8.self)
        }
    }
}
