import CHDF5
import CShims
import Foundation

/// An open HDF5 file.
///
/// Owns the file id and closes it on `close()` or deinit. The Debian libhdf5 is built thread-safe
/// (one global lock), so calls from several threads are serialised by the library; still, use one
/// file object from one thread at a time — that is what makes `@unchecked Sendable` safe here.
public final class HDF5File: @unchecked Sendable {
    public let path: String
    var id: hid_t

    private init(path: String, id: hid_t) {
        self.path = path
        self.id = id
    }

    deinit { close() }

    /// Opens an existing file, read-only unless `writable`.
    public static func open(_ path: String, writable: Bool = false) throws -> HDF5File {
        H5.silenceAutomaticErrors()
        guard FileManager.default.fileExists(atPath: path) else {
            throw HDF5Error(path: path, object: "", message: "no such file")
        }
        guard isHDF5(path) else {
            throw HDF5Error(path: path, object: "", message: "not an HDF5 file (no HDF5 signature)")
        }
        let id = H5Fopen(path, writable ? bn_h5f_acc_rdwr() : bn_h5f_acc_rdonly(), H5.defaultPropertyList)
        guard id >= 0 else {
            throw HDF5Error(
                path: path, object: "", message: "cannot open (truncated or damaged?): \(H5.currentErrorMessage())")
        }
        closeOnExec(id)
        return HDF5File(path: path, id: id)
    }

    /// Marks the file's descriptor close-on-exec. HDF5 opens files without it: a process started meanwhile (local
    /// workers, a tool) would keep the descriptor, and with it HDF5's lock on the file, until it exits, and this
    /// process could then not open the file again.
    private static func closeOnExec(_ id: hid_t) {
        var handle: UnsafeMutableRawPointer?
        guard H5Fget_vfd_handle(id, H5.defaultPropertyList, &handle) >= 0, let handle else { return }
        let descriptor = handle.load(as: Int32.self)
        let flags = fcntl(descriptor, F_GETFD)
        if flags >= 0 { _ = fcntl(descriptor, F_SETFD, flags | FD_CLOEXEC) }
    }

    /// Creates (or truncates) a file in the earliest format, readable by every HDF5 1.8+ reader.
    ///
    /// Objects record no creation or modification times, so the same content makes the same bytes.
    public static func create(_ path: String) throws -> HDF5File {
        H5.silenceAutomaticErrors()
        let properties = H5Pcreate(bn_h5p_file_create())
        defer { H5Pclose(properties) }
        H5Pset_obj_track_times(properties, false)
        let id = H5Fcreate(path, bn_h5f_acc_trunc(), properties, H5.defaultPropertyList)
        try H5.check(id, path, "", "cannot create file")
        closeOnExec(id)
        return HDF5File(path: path, id: id)
    }

    /// Whether the file starts with (or carries at a power-of-two offset) the HDF5 signature.
    public static func isHDF5(_ path: String) -> Bool {
        H5.silenceAutomaticErrors()
        return H5Fis_hdf5(path) > 0
    }

    public var root: HDF5Group { HDF5Group(file: self, path: "/") }

    public func flush() throws {
        try H5.check(H5Fflush(id, H5F_SCOPE_GLOBAL), path, "", "flush failed")
    }

    /// Closes the file, ignoring a failure (a read-only file, an error path whose first error is reported).
    public func close() {
        if id >= 0 {
            H5Fclose(id)
            id = -1
        }
    }

    /// Closes the file and throws when HDF5 could not write out what it still held (disk full, I/O error):
    /// call it before publishing a written file. The id is given up either way.
    public func closeChecked() throws {
        guard id >= 0 else { return }
        let status = H5Fclose(id)
        id = -1
        try H5.check(status, path, "", "cannot close (write out) the file")
    }
}
