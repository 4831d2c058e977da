import CHDF5
import CShims

/// A dataset inside an open HDF5 file. Its shape is read when the value is made.
public struct HDF5Dataset: Sendable {
    public let file: HDF5File
    public let path: String
    /// The current dimensions, outermost first.
    public let shape: [Int]
    private let typeClass: H5T_class_t

    init(file: HDF5File, path: String) throws {
        self.file = file
        self.path = path
        H5.silenceAutomaticErrors()
        let id = try H5.check(H5Dopen2(file.id, path, H5.defaultPropertyList), file.path, path, "cannot open dataset")
        defer { H5Dclose(id) }
        let space = H5Dget_space(id)
        defer { H5Sclose(space) }
        let rank = Int(H5Sget_simple_extent_ndims(space))
        var dims = [hsize_t](repeating: 0, count: max(rank, 0))
        if rank > 0 { H5Sget_simple_extent_dims(space, &dims, nil) }
        shape = dims.map { Int($0) }
        let type = H5Dget_type(id)
        defer { H5Tclose(type) }
        typeClass = H5Tget_class(type)
    }

    public var elementCount: Int { shape.reduce(1, *) }
    public var isFloat: Bool { typeClass == H5T_FLOAT }
    public var isInteger: Bool { typeClass == H5T_INTEGER }

    private func withOpen<R>(_ body: (hid_t) throws -> R) throws -> R {
        H5.silenceAutomaticErrors()
        let id = try H5.check(H5Dopen2(file.id, path, H5.defaultPropertyList), file.path, path, "cannot open dataset")
        defer { H5Dclose(id) }
        return try body(id)
    }

    private func requireNumeric() throws {
        guard isFloat || isInteger else {
            throw HDF5Error(
                path: file.path, object: path, message: "holds strings or another non-numeric type, expected numbers")
        }
    }

    /// Reads the whole dataset, converted by HDF5 to `T` (row-major).
    public func read<T: HDF5Scalar>(_ type: T.Type) throws -> [T] {
        try requireNumeric()
        return try withOpen { id in
            var values = [T](repeating: T.zero, count: elementCount)
            if values.isEmpty { return values }
            let status = values.withUnsafeMutableBytes {
                H5Dread(id, T.nativeType, hid_t(H5S_ALL), hid_t(H5S_ALL), H5.defaultPropertyList, $0.baseAddress)
            }
            try H5.check(status, file.path, path, "cannot read \(shape) values (truncated or damaged file?)")
            return values
        }
    }

    /// Reads the rows `rows` of the first dimension (a hyperslab), row-major.
    public func readRows<T: HDF5Scalar>(_ rows: Range<Int>, as type: T.Type) throws -> [T] {
        try requireNumeric()
        guard let first = shape.first, rows.lowerBound >= 0, rows.upperBound <= first else {
            throw HDF5Error(path: file.path, object: path, message: "rows \(rows) outside shape \(shape)")
        }
        let rowSize = shape.dropFirst().reduce(1, *)
        var values = [T](repeating: T.zero, count: rows.count * rowSize)
        if values.isEmpty { return values }
        try values.withUnsafeMutableBytes { buffer in
            try withRowSelection(rows) { id, memorySpace, fileSpace in
                H5Dread(id, T.nativeType, memorySpace, fileSpace, H5.defaultPropertyList, buffer.baseAddress)
            }
        }
        return values
    }

    /// Reads a 1-D string dataset (fixed-length or variable-length strings).
    public func readStrings() throws -> [String] {
        try withOpen { id in
            let type = H5Dget_type(id)
            defer { H5Tclose(type) }
            let space = H5Dget_space(id)
            defer { H5Sclose(space) }
            guard
                let strings = StringType.read(
                    count: elementCount, storedType: type, space: space,
                    { memoryType, buffer in
                        H5Dread(id, memoryType, hid_t(H5S_ALL), hid_t(H5S_ALL), H5.defaultPropertyList, buffer)
                    })
            else {
                throw HDF5Error(
                    path: file.path, object: path, message: "cannot read strings: \(H5.currentErrorMessage())")
            }
            return strings
        }
    }

    /// Writes whole rows starting at `row`, growing the first dimension when the dataset is extendible.
    public func writeRows<T: HDF5Scalar>(_ values: UnsafeBufferPointer<T>, at row: Int) throws {
        let rowSize = shape.dropFirst().reduce(1, *)
        guard rowSize > 0, values.count % rowSize == 0 else {
            throw HDF5Error(
                path: file.path, object: path, message: "\(values.count) values are not whole rows of \(shape)")
        }
        let count = values.count / rowSize
        if count == 0 { return }
        try withOpen { id in
            if let first = shape.first, row + count > first {
                var newShape = shape.map { hsize_t($0) }
                newShape[0] = hsize_t(row + count)
                try H5.check(H5Dset_extent(id, &newShape), file.path, path, "cannot grow to \(row + count) rows")
            }
        }
        try withRowSelection(row..<(row + count)) { id, memorySpace, fileSpace in
            H5Dwrite(id, T.nativeType, memorySpace, fileSpace, H5.defaultPropertyList, values.baseAddress)
        }
    }

    public func writeRows<T: HDF5Scalar>(_ values: [T], at row: Int) throws {
        try values.withUnsafeBufferPointer { try writeRows($0, at: row) }
    }

    /// Runs `body(dataset, memorySpace, fileSpace)` with the file space restricted to `rows`.
    private func withRowSelection(_ rows: Range<Int>, _ body: (hid_t, hid_t, hid_t) -> herr_t) throws {
        try withOpen { id in
            let fileSpace = H5Dget_space(id)
            defer { H5Sclose(fileSpace) }
            let rank = Int(H5Sget_simple_extent_ndims(fileSpace))
            var dims = [hsize_t](repeating: 0, count: rank)
            H5Sget_simple_extent_dims(fileSpace, &dims, nil)
            var start = [hsize_t](repeating: 0, count: rank)
            var count = dims
            start[0] = hsize_t(rows.lowerBound)
            count[0] = hsize_t(rows.count)
            try H5.check(
                H5Sselect_hyperslab(fileSpace, H5S_SELECT_SET, &start, nil, &count, nil), file.path, path,
                "cannot select rows \(rows)")
            let memorySpace = H5Screate_simple(Int32(rank), &count, nil)
            defer { H5Sclose(memorySpace) }
            try H5.check(body(id, memorySpace, fileSpace), file.path, path, "cannot transfer rows \(rows)")
        }
    }

    public var attributes: HDF5Attributes { HDF5Attributes(file: file, objectPath: path) }
}
