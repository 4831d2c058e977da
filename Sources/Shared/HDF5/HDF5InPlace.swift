import CHDF5
import CShims

extension HDF5Group {
    /// Creates a fixed-shape float32 dataset stored contiguously, its storage allocated at once and never filled,
    /// and returns where its raw values start in the file (bytes from the file's start).
    ///
    /// The values can then be written in place, without HDF5, at `offset + index × 4` (row-major, native little
    /// endian); the file's metadata does not change again. Unwritten values read as zero where the filesystem
    /// keeps the file sparse.
    public func createInPlaceFloatDataset(_ name: String, shape: [Int]) throws -> Int {
        let full = H5.join(path, name)
        H5.silenceAutomaticErrors()
        var dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), &dims, nil)
        try H5.check(space, file.path, full, "cannot create dataspace \(shape)")
        defer { H5Sclose(space) }
        let properties = H5Pcreate(bn_h5p_dataset_create())
        defer { H5Pclose(properties) }
        H5Pset_obj_track_times(properties, false)
        try H5.check(H5Pset_layout(properties, H5D_CONTIGUOUS), file.path, full, "cannot set a contiguous layout")
        try H5.check(
            H5Pset_alloc_time(properties, H5D_ALLOC_TIME_EARLY), file.path, full, "cannot allocate storage early")
        try H5.check(H5Pset_fill_time(properties, H5D_FILL_TIME_NEVER), file.path, full, "cannot turn off fill")
        let id = H5Dcreate2(
            file.id, full, bn_h5t_native_float(), space, H5.defaultPropertyList, properties, H5.defaultPropertyList)
        try H5.check(id, file.path, full, "cannot create dataset")
        defer { H5Dclose(id) }
        let offset = H5Dget_offset(id)
        guard offset != haddr_t.max else {
            throw HDF5Error(path: file.path, object: full, message: "storage was not allocated")
        }
        return Int(offset)
    }

    /// Rows of one source dataset in a virtual dataset: the rows `sourceRuns` (ascending, not overlapping) of
    /// dataset `sourceDataset` in the file `sourceFile` appear, in order, as the contiguous rows starting at `row`
    /// of the virtual dataset.
    ///
    /// Several runs make one mapping (the source selection is their union), so a source file with rows left out
    /// here and there still maps once: readers decode every mapping when they open the virtual dataset, and a
    /// mapping costs them far more than a run within one.
    public struct VirtualMapping: Sendable, Equatable {
        /// The source file's name as HDF5 resolves it: relative names are looked up next to the virtual file.
        public var sourceFile: String
        public var sourceDataset: String
        public var sourceRuns: [Range<Int>]
        public var row: Int
        /// Rows mapped: the runs' lengths added up.
        public var rowCount: Int { sourceRuns.reduce(0) { $0 + $1.count } }

        public init(sourceFile: String, sourceDataset: String, sourceRuns: [Range<Int>], row: Int) {
            self.sourceFile = sourceFile
            self.sourceDataset = sourceDataset
            self.sourceRuns = sourceRuns
            self.row = row
        }

        public init(sourceFile: String, sourceDataset: String, sourceRows: Range<Int>, row: Int) {
            self.init(sourceFile: sourceFile, sourceDataset: sourceDataset, sourceRuns: [sourceRows], row: row)
        }
    }

    /// Creates a float32 virtual dataset of `shape` whose rows come from other files' datasets (`mappings`; each
    /// source dataset has the same row shape, `shape` without its first dimension). Rows no mapping covers read
    /// as zero.
    public func createVirtualFloatDataset(_ name: String, shape: [Int], mappings: [VirtualMapping]) throws {
        let full = H5.join(path, name)
        H5.silenceAutomaticErrors()
        var dims = shape.map { hsize_t($0) }
        let space = H5Screate_simple(Int32(dims.count), &dims, nil)
        try H5.check(space, file.path, full, "cannot create dataspace \(shape)")
        defer { H5Sclose(space) }
        let properties = H5Pcreate(bn_h5p_dataset_create())
        defer { H5Pclose(properties) }
        H5Pset_obj_track_times(properties, false)
        var fill: Float = 0
        try H5.check(
            H5Pset_fill_value(properties, bn_h5t_native_float(), &fill), file.path, full, "cannot set the fill value")
        for mapping in mappings where mapping.rowCount > 0 {
            var sourceDims = dims
            sourceDims[0] = hsize_t(mapping.sourceRuns.map(\.upperBound).max() ?? 0)
            let sourceSpace = H5Screate_simple(Int32(sourceDims.count), &sourceDims, nil)
            try H5.check(sourceSpace, file.path, full, "cannot create a source dataspace")
            defer { H5Sclose(sourceSpace) }
            try H5.check(H5Sselect_none(sourceSpace), file.path, full, "cannot clear the source selection")
            for run in mapping.sourceRuns where !run.isEmpty {
                var count = dims
                count[0] = hsize_t(run.count)
                var sourceStart = [hsize_t](repeating: 0, count: dims.count)
                sourceStart[0] = hsize_t(run.lowerBound)
                try H5.check(
                    H5Sselect_hyperslab(sourceSpace, H5S_SELECT_OR, &sourceStart, nil, &count, nil), file.path, full,
                    "cannot select source rows")
            }
            var count = dims
            count[0] = hsize_t(mapping.rowCount)
            var start = [hsize_t](repeating: 0, count: dims.count)
            start[0] = hsize_t(mapping.row)
            try H5.check(
                H5Sselect_hyperslab(space, H5S_SELECT_SET, &start, nil, &count, nil), file.path, full,
                "cannot select virtual rows")
            try H5.check(
                H5Pset_virtual(properties, space, mapping.sourceFile, mapping.sourceDataset, sourceSpace),
                file.path, full, "cannot map \(mapping.sourceFile)")
        }
        H5Sselect_all(space)
        let linkProperties = H5Pcreate(bn_h5p_link_create())
        defer { H5Pclose(linkProperties) }
        H5Pset_create_intermediate_group(linkProperties, 1)
        let id = H5Dcreate2(
            file.id, full, bn_h5t_native_float(), space, linkProperties, properties, H5.defaultPropertyList)
        try H5.check(id, file.path, full, "cannot create virtual dataset")
        H5Dclose(id)
    }
}

extension HDF5Dataset {
    /// The mappings of a virtual dataset (what a reader decodes when it opens it); 0 for any other dataset.
    public func virtualMappingCount() throws -> Int {
        H5.silenceAutomaticErrors()
        let id = try H5.check(H5Dopen2(file.id, path, H5.defaultPropertyList), file.path, path, "cannot open dataset")
        defer { H5Dclose(id) }
        let properties = try H5.check(H5Dget_create_plist(id), file.path, path, "cannot read its creation properties")
        defer { H5Pclose(properties) }
        guard H5Pget_layout(properties) == H5D_VIRTUAL else { return 0 }
        var count = 0
        try H5.check(H5Pget_virtual_count(properties, &count), file.path, path, "cannot count its mappings")
        return count
    }

    /// Where the dataset's raw values start in the file (bytes), for a contiguous dataset with allocated
    /// storage; nil otherwise (chunked, virtual, or not yet allocated).
    public func rawDataOffset() throws -> Int? {
        H5.silenceAutomaticErrors()
        let id = try H5.check(H5Dopen2(file.id, path, H5.defaultPropertyList), file.path, path, "cannot open dataset")
        defer { H5Dclose(id) }
        let offset = H5Dget_offset(id)
        return offset == haddr_t.max ? nil : Int(offset)
    }
}
