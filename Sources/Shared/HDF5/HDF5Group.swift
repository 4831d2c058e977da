import CHDF5
import CShims

/// A group inside an open HDF5 file, addressed by its absolute path ("/" or "/train").
public struct HDF5Group: Sendable {
    public let file: HDF5File
    public let path: String

    /// Whether a link `name` (relative, may contain "/") exists below this group.
    public func exists(_ name: String) -> Bool { H5.exists(file.id, H5.join(path, name)) }

    public func isGroup(_ name: String) -> Bool { H5.objectType(file.id, H5.join(path, name)) == H5I_GROUP }

    public func isDataset(_ name: String) -> Bool { H5.objectType(file.id, H5.join(path, name)) == H5I_DATASET }

    /// The names of the group's direct members, in name order.
    public func memberNames() throws -> [String] {
        H5.silenceAutomaticErrors()
        let group = try H5.check(H5Gopen2(file.id, path, H5.defaultPropertyList), file.path, path, "cannot open group")
        defer { H5Gclose(group) }
        var names: [String] = []
        var index: hsize_t = 0
        let status = withUnsafeMutablePointer(to: &names) { pointer in
            H5Literate(
                group, H5_INDEX_NAME, H5_ITER_INC, &index,
                { _, name, _, clientData in
                    guard let name, let clientData else { return 0 }
                    clientData.assumingMemoryBound(to: [String].self).pointee.append(String(cString: name))
                    return 0
                }, pointer)
        }
        try H5.check(status, file.path, path, "cannot list members")
        return names
    }

    /// The member group `name`; throws naming the file and path when it is missing or not a group.
    public func group(_ name: String) throws -> HDF5Group {
        let full = H5.join(path, name)
        guard isGroup(name) else {
            throw HDF5Error(path: file.path, object: full, message: exists(name) ? "is not a group" : "no such group")
        }
        return HDF5Group(file: file, path: full)
    }

    /// Creates the group `name`, and any missing intermediate groups (none records times: see `HDF5File.create`).
    @discardableResult
    public func createGroup(_ name: String) throws -> HDF5Group {
        let full = H5.join(path, name)
        H5.silenceAutomaticErrors()
        try createParents(of: full)
        let properties = H5Pcreate(bn_h5p_link_create())
        defer { H5Pclose(properties) }
        H5Pset_create_intermediate_group(properties, 1)
        let groupProperties = H5Pcreate(bn_h5p_group_create())
        defer { H5Pclose(groupProperties) }
        H5Pset_obj_track_times(groupProperties, false)
        let id = H5Gcreate2(file.id, full, properties, groupProperties, H5.defaultPropertyList)
        try H5.check(id, file.path, full, "cannot create group")
        H5Gclose(id)
        return HDF5Group(file: file, path: full)
    }

    /// Creates the missing groups on the way to `full` (an absolute path), one by one, without times.
    private func createParents(of full: String) throws {
        let parts = full.split(separator: "/").dropLast()
        var prefix = ""
        for part in parts {
            prefix += "/" + part
            if H5.exists(file.id, prefix) { continue }
            let groupProperties = H5Pcreate(bn_h5p_group_create())
            defer { H5Pclose(groupProperties) }
            H5Pset_obj_track_times(groupProperties, false)
            let id = H5Gcreate2(file.id, prefix, H5.defaultPropertyList, groupProperties, H5.defaultPropertyList)
            try H5.check(id, file.path, prefix, "cannot create group")
            H5Gclose(id)
        }
    }

    /// The member dataset `name`; throws naming the file and path when it is missing or not a dataset.
    public func dataset(_ name: String) throws -> HDF5Dataset {
        let full = H5.join(path, name)
        guard isDataset(name) else {
            throw HDF5Error(
                path: file.path, object: full, message: exists(name) ? "is not a dataset" : "no such dataset")
        }
        return try HDF5Dataset(file: file, path: full)
    }

    /// Creates a numeric dataset.
    ///
    /// - Parameters:
    ///   - maxRows: nil for a fixed shape; `Int.max` for an unlimited first dimension (then `chunkRows` is needed).
    ///   - chunkRows: rows per chunk along the first dimension (the other dimensions are whole).
    ///   - deflate: gzip level 1–9 with the shuffle filter, or nil for none.
    @discardableResult
    public func createDataset<T: HDF5Scalar>(
        _ name: String, of type: T.Type, shape: [Int], maxRows: Int? = nil, chunkRows: Int? = nil,
        deflate: Int? = nil
    ) throws -> HDF5Dataset {
        let full = H5.join(path, name)
        H5.silenceAutomaticErrors()
        var dims = shape.map { hsize_t($0) }
        var maxDims = dims
        if let maxRows, !maxDims.isEmpty { maxDims[0] = maxRows == Int.max ? bn_h5s_unlimited() : hsize_t(maxRows) }
        let space = H5Screate_simple(Int32(dims.count), &dims, &maxDims)
        try H5.check(space, file.path, full, "cannot create dataspace \(shape)")
        defer { H5Sclose(space) }
        try createParents(of: full)
        let properties = H5Pcreate(bn_h5p_dataset_create())
        defer { H5Pclose(properties) }
        H5Pset_obj_track_times(properties, false)
        if let chunkRows, !shape.isEmpty {
            var chunk = dims
            chunk[0] = hsize_t(max(1, chunkRows))
            for i in chunk.indices where chunk[i] == 0 { chunk[i] = 1 }
            try H5.check(H5Pset_chunk(properties, Int32(chunk.count), &chunk), file.path, full, "cannot set chunking")
            if let deflate {
                H5Pset_shuffle(properties)
                H5Pset_deflate(properties, UInt32(deflate))
            }
        }
        let linkProperties = H5Pcreate(bn_h5p_link_create())
        defer { H5Pclose(linkProperties) }
        H5Pset_create_intermediate_group(linkProperties, 1)
        let id = H5Dcreate2(file.id, full, T.nativeType, space, linkProperties, properties, H5.defaultPropertyList)
        try H5.check(id, file.path, full, "cannot create dataset")
        H5Dclose(id)
        return try HDF5Dataset(file: file, path: full)
    }

    /// Creates a fixed-shape numeric dataset and writes `values` (row-major) into it.
    @discardableResult
    public func write<T: HDF5Scalar>(_ name: String, _ values: [T], shape: [Int]) throws -> HDF5Dataset {
        precondition(values.count == shape.reduce(1, *), "values do not fill shape \(shape)")
        let dataset = try createDataset(name, of: T.self, shape: shape)
        if !values.isEmpty { try dataset.writeRows(values, at: 0) }
        return dataset
    }

    /// Creates a 1-D dataset of variable-length UTF-8 strings (what h5py writes for `str` arrays).
    @discardableResult
    public func writeStrings(_ name: String, _ strings: [String]) throws -> HDF5Dataset {
        let full = H5.join(path, name)
        H5.silenceAutomaticErrors()
        var dims = [hsize_t(strings.count)]
        let space = H5Screate_simple(1, &dims, nil)
        defer { H5Sclose(space) }
        let type = StringType.variableUTF8()
        defer { H5Tclose(type) }
        try createParents(of: full)
        let linkProperties = H5Pcreate(bn_h5p_link_create())
        defer { H5Pclose(linkProperties) }
        H5Pset_create_intermediate_group(linkProperties, 1)
        let properties = H5Pcreate(bn_h5p_dataset_create())
        defer { H5Pclose(properties) }
        H5Pset_obj_track_times(properties, false)
        let id = H5Dcreate2(file.id, full, type, space, linkProperties, properties, H5.defaultPropertyList)
        try H5.check(id, file.path, full, "cannot create string dataset")
        defer { H5Dclose(id) }
        if !strings.isEmpty {
            try StringType.withCStringArray(strings) { pointers in
                try H5.check(
                    H5Dwrite(id, type, hid_t(H5S_ALL), hid_t(H5S_ALL), H5.defaultPropertyList, pointers),
                    file.path, full, "cannot write strings")
            }
        }
        return try HDF5Dataset(file: file, path: full)
    }

    public var attributes: HDF5Attributes { HDF5Attributes(file: file, objectPath: path) }
}
