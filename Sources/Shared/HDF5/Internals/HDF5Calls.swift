import CHDF5
import CShims
import Foundation

/// Thin helpers over the HDF5 C API: error capture, checked ids, and the macro getters of CShims.
enum H5 {
    static let defaultPropertyList = hid_t(H5P_DEFAULT)

    /// Turns off HDF5's automatic error printing for the calling thread (the setting is per thread in
    /// a thread-safe build); errors are read from the stack instead. Called at every entry point.
    static func silenceAutomaticErrors() {
        _ = libraryPrepared
        H5Eset_auto2(hid_t(H5E_DEFAULT), nil, nil)
    }

    /// Keeps libhdf5 from installing its exit-time cleanup, which flushes files still open at exit: after a
    /// failed write (disk full) it retries the write of a file whose close already failed, and crashes inside
    /// the library. Every file this package publishes is closed (checked) before it is renamed into place, so
    /// nothing is lost by not flushing at exit; a half-written temporary file is removed by its writer.
    private static let libraryPrepared: Void = { H5dont_atexit() }()

    /// The innermost message of HDF5's current error stack (the root cause), or a generic text.
    static func currentErrorMessage() -> String {
        let stack = H5Eget_current_stack()
        guard stack >= 0 else { return "unknown HDF5 error" }
        defer { H5Eclose_stack(stack) }
        var messages: [String] = []
        withUnsafeMutablePointer(to: &messages) { pointer in
            _ = H5Ewalk2(
                stack, H5E_WALK_UPWARD,
                { _, error, clientData in
                    guard let error, let clientData else { return 0 }
                    let list = clientData.assumingMemoryBound(to: [String].self)
                    if let description = error.pointee.desc {
                        let function = error.pointee.func_name.map { String(cString: $0) } ?? "?"
                        list.pointee.append("\(function): \(String(cString: description))")
                    }
                    return 0
                }, pointer)
        }
        guard let first = messages.first else { return "unknown HDF5 error" }
        return plainSystemError(first)
    }

    /// A failed system call in HDF5's words ("…: file write failed: time = …, filename = '…', errno = 28, error
    /// message = 'No space left on device', buf = 0x…") as "file write failed: No space left on device".
    static func plainSystemError(_ message: String) -> String {
        guard let start = message.range(of: "error message = '"),
            let end = message[start.upperBound...].firstIndex(of: "'")
        else { return message }
        let reason = message[start.upperBound..<end]
        let what = message.components(separatedBy: ": time = ").first ?? message
        let action = what.split(separator: ":").last.map { $0.trimmingCharacters(in: .whitespaces) } ?? what
        return "\(action): \(reason)"
    }

    /// Checks an id returned by HDF5 (negative = failure) and throws with `path`, `object` and the cause.
    @discardableResult
    static func check(_ id: hid_t, _ path: String, _ object: String, _ what: String) throws -> hid_t {
        if id < 0 { throw HDF5Error(path: path, object: object, message: "\(what): \(currentErrorMessage())") }
        return id
    }

    static func check(_ status: herr_t, _ path: String, _ object: String, _ what: String) throws {
        if status < 0 { throw HDF5Error(path: path, object: object, message: "\(what): \(currentErrorMessage())") }
    }

    /// A link name exists relative to `location` (checks each component of a path like "a/b/c").
    static func exists(_ location: hid_t, _ name: String) -> Bool {
        silenceAutomaticErrors()
        var prefix = ""
        for component in name.split(separator: "/", omittingEmptySubsequences: true) {
            prefix = prefix.isEmpty ? String(component) : prefix + "/" + component
            if H5Lexists(location, prefix, H5.defaultPropertyList) <= 0 { return false }
            if H5Oexists_by_name(location, prefix, H5.defaultPropertyList) <= 0 { return false }
        }
        return !prefix.isEmpty
    }

    /// The kind of object at `name` (H5I_GROUP, H5I_DATASET, ...), or nil when there is none.
    static func objectType(_ location: hid_t, _ name: String) -> H5I_type_t? {
        guard exists(location, name) else { return nil }
        let object = H5Oopen(location, name, H5.defaultPropertyList)
        guard object >= 0 else { return nil }
        defer { H5Oclose(object) }
        return H5Iget_type(object)
    }

    static func join(_ base: String, _ name: String) -> String {
        base == "/" ? "/" + name : base + "/" + name
    }
}
