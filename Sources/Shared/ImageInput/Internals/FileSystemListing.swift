#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One directory entry as Python's `os.scandir` sees it.
struct ListedEntry {
    let name: String
    /// `entry.is_dir()`: true for a directory or a symlink to one.
    let isDirectory: Bool
    /// `os.path.islink`.
    let isSymlink: Bool
}

enum FileSystemListing {
    /// Lists `path` (without "." and ".."), in readdir order.
    static func list(_ path: String) throws -> [ListedEntry] {
        guard let dir = opendir(path) else {
            let code = errno
            throw ImageInputError(path: path, reason: "cannot list directory: \(String(cString: strerror(code)))")
        }
        defer { closedir(dir) }
        var result: [ListedEntry] = []
        while true {
            errno = 0
            guard let entry = readdir(dir) else {
                if errno != 0 {
                    let code = errno
                    throw ImageInputError(
                        path: path, reason: "cannot list directory: \(String(cString: strerror(code)))")
                }
                break
            }
            let decoded = withUnsafePointer(to: entry.pointee.d_name) { tuple in
                tuple.withMemoryRebound(to: CChar.self, capacity: Int(NAME_MAX) + 1) {
                    (String(validatingCString: $0), String(cString: $0))
                }
            }
            guard let name = decoded.0 else {
                throw ImageInputError(
                    path: PathJoin.join(path, decoded.1),
                    reason: "file name is not valid UTF-8; rename it (Python would list it with surrogate escapes)")
            }
            if name == "." || name == ".." { continue }
            // d_type answers without a system call for plain files and directories, as os.scandir does.
            let type = Int32(entry.pointee.d_type)
            if type == Int32(DT_REG) {
                result.append(ListedEntry(name: name, isDirectory: false, isSymlink: false))
                continue
            }
            if type == Int32(DT_DIR) {
                result.append(ListedEntry(name: name, isDirectory: true, isSymlink: false))
                continue
            }
            let full = PathJoin.join(path, name)
            var linkInfo = stat()
            var isSymlink = false
            if lstat(full, &linkInfo) == 0 {
                isSymlink = (linkInfo.st_mode & S_IFMT) == S_IFLNK
            }
            var isDirectory = false
            if isSymlink {
                var target = stat()
                isDirectory = stat(full, &target) == 0 && (target.st_mode & S_IFMT) == S_IFDIR
            } else {
                isDirectory = (linkInfo.st_mode & S_IFMT) == S_IFDIR
            }
            result.append(ListedEntry(name: name, isDirectory: isDirectory, isSymlink: isSymlink))
        }
        return result
    }
}

enum PathJoin {
    /// `os.path.join(a, b)` for a relative `b`.
    static func join(_ a: String, _ b: String) -> String {
        if a.isEmpty { return b }
        return a.hasSuffix("/") ? a + b : a + "/" + b
    }
}
