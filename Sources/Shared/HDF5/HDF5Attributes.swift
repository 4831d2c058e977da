import CHDF5
import CShims

/// The attributes of one group or dataset.
public struct HDF5Attributes: Sendable {
    public let file: HDF5File
    public let objectPath: String

    private func error(_ name: String, _ message: String) -> HDF5Error {
        HDF5Error(path: file.path, object: "\(objectPath) attribute '\(name)'", message: message)
    }

    /// The attribute names, in creation order where tracked, else name order.
    public func names() throws -> [String] {
        H5.silenceAutomaticErrors()
        let object = try H5.check(
            H5Oopen(file.id, objectPath, H5.defaultPropertyList), file.path, objectPath, "cannot open")
        defer { H5Oclose(object) }
        var names: [String] = []
        var index: hsize_t = 0
        _ = withUnsafeMutablePointer(to: &names) { pointer in
            H5Aiterate2(
                object, H5_INDEX_NAME, H5_ITER_INC, &index,
                { _, name, _, clientData in
                    guard let name, let clientData else { return 0 }
                    clientData.assumingMemoryBound(to: [String].self).pointee.append(String(cString: name))
                    return 0
                }, pointer)
        }
        return names
    }

    public func contains(_ name: String) -> Bool {
        H5.silenceAutomaticErrors()
        return H5Aexists_by_name(file.id, objectPath, name, H5.defaultPropertyList) > 0
    }

    /// Opens the attribute and passes (attribute, stored type, space, element count) to `body`.
    private func withAttribute<R>(_ name: String, _ body: (hid_t, hid_t, hid_t, Int) throws -> R) throws -> R {
        guard contains(name) else { throw error(name, "missing") }
        let attribute = H5Aopen_by_name(file.id, objectPath, name, H5.defaultPropertyList, H5.defaultPropertyList)
        try H5.check(attribute, file.path, objectPath, "cannot open attribute '\(name)'")
        defer { H5Aclose(attribute) }
        let type = H5Aget_type(attribute)
        defer { H5Tclose(type) }
        let space = H5Aget_space(attribute)
        defer { H5Sclose(space) }
        let count = Int(H5Sget_simple_extent_npoints(space))
        return try body(attribute, type, space, count)
    }

    /// A string array attribute (fixed or variable length; a scalar gives one element).
    public func strings(_ name: String) throws -> [String] {
        try withAttribute(name) { attribute, type, space, count in
            guard H5Tget_class(type) == H5T_STRING else {
                // An empty numeric array is what numpy writes for an empty list (e.g. a pooling layer's weight_names).
                if count == 0 { return [] }
                throw error(name, "is not a string attribute")
            }
            guard
                let strings = StringType.read(
                    count: count, storedType: type, space: space,
                    { memoryType, buffer in
                        H5Aread(attribute, memoryType, buffer)
                    })
            else { throw error(name, "cannot read: \(H5.currentErrorMessage())") }
            return strings
        }
    }

    /// A single string (scalar or one-element array).
    public func string(_ name: String) throws -> String {
        let values = try strings(name)
        guard values.count == 1 else { throw error(name, "holds \(values.count) strings, expected one") }
        return values[0]
    }

    private func numbers<T: HDF5Scalar>(_ name: String, as: T.Type) throws -> [T] {
        try withAttribute(name) { attribute, type, _, count in
            let kind = H5Tget_class(type)
            guard kind == H5T_INTEGER || kind == H5T_FLOAT else { throw error(name, "is not numeric") }
            var values = [T](repeating: .zero, count: count)
            if count > 0 {
                let status = values.withUnsafeMutableBytes { H5Aread(attribute, T.nativeType, $0.baseAddress) }
                try H5.check(status, file.path, objectPath, "cannot read attribute '\(name)'")
            }
            return values
        }
    }

    public func ints(_ name: String) throws -> [Int] { try numbers(name, as: Int64.self).map { Int($0) } }

    public func int(_ name: String) throws -> Int {
        let values = try ints(name)
        guard values.count == 1 else { throw error(name, "holds \(values.count) numbers, expected one") }
        return values[0]
    }

    public func double(_ name: String) throws -> Double {
        let values = try numbers(name, as: Double.self)
        guard values.count == 1 else { throw error(name, "holds \(values.count) numbers, expected one") }
        return values[0]
    }

    /// Replaces the attribute `name` with one of `type` over `space`, written from `buffer`.
    private func replace(_ name: String, type: hid_t, space: hid_t, _ buffer: UnsafeRawPointer?) throws {
        if contains(name) { H5Adelete_by_name(file.id, objectPath, name, H5.defaultPropertyList) }
        let attribute = H5Acreate_by_name(
            file.id, objectPath, name, type, space, H5.defaultPropertyList, H5.defaultPropertyList,
            H5.defaultPropertyList)
        try H5.check(attribute, file.path, objectPath, "cannot create attribute '\(name)'")
        defer { H5Aclose(attribute) }
        if let buffer {
            try H5.check(H5Awrite(attribute, type, buffer), file.path, objectPath, "cannot write '\(name)'")
        }
    }

    /// A scalar variable-length UTF-8 string, as h5py writes a Python `str`.
    public func set(_ name: String, string: String) throws {
        let type = StringType.variableUTF8()
        defer { H5Tclose(type) }
        let space = H5Screate(H5S_SCALAR)
        defer { H5Sclose(space) }
        try StringType.withCStringArray([string]) { try replace(name, type: type, space: space, $0) }
    }

    /// A 1-D array of fixed-length NUL-padded byte strings, as numpy's 'S' dtype (Keras' `layer_names`).
    public func set(_ name: String, strings: [String]) throws {
        let size = max(1, strings.map { $0.utf8.count }.max() ?? 1)
        let type = StringType.fixed(size: size)
        defer { H5Tclose(type) }
        var dims = [hsize_t(strings.count)]
        let space = H5Screate_simple(1, &dims, nil)
        defer { H5Sclose(space) }
        var bytes = [UInt8](repeating: 0, count: size * strings.count)
        for (index, string) in strings.enumerated() {
            for (offset, byte) in string.utf8.enumerated() { bytes[index * size + offset] = byte }
        }
        try bytes.withUnsafeBytes {
            try replace(name, type: type, space: space, strings.isEmpty ? nil : $0.baseAddress)
        }
    }

    private func setNumbers<T: HDF5Scalar>(_ name: String, _ values: [T], scalar: Bool) throws {
        let space: hid_t
        if scalar {
            space = H5Screate(H5S_SCALAR)
        } else {
            var dims = [hsize_t(values.count)]
            space = H5Screate_simple(1, &dims, nil)
        }
        defer { H5Sclose(space) }
        try values.withUnsafeBytes { try replace(name, type: T.nativeType, space: space, $0.baseAddress) }
    }

    public func set(_ name: String, int: Int) throws { try setNumbers(name, [Int64(int)], scalar: true) }
    public func set(_ name: String, ints: [Int]) throws { try setNumbers(name, ints.map { Int64($0) }, scalar: false) }
    public func set(_ name: String, double: Double) throws { try setNumbers(name, [double], scalar: true) }
}
