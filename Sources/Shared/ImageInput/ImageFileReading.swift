#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

extension ImageDecoder {
    /// Reads a whole file (as Keras' `load_img` does before handing the bytes to Pillow). A missing file,
    /// a dangling symlink, a directory or an I/O error becomes an `ImageDecodeError` naming `filename`.
    public static func readFile(_ path: String, filename: String) throws(ImageDecodeError) -> [UInt8] {
        func failure(_ what: String) -> ImageDecodeError {
            let code = errno
            return ImageDecodeError(filename: filename, reason: "\(what): \(String(cString: strerror(code)))")
        }
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { throw failure("cannot open file") }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0 else { throw failure("cannot stat file") }
        guard (info.st_mode & S_IFMT) == S_IFREG else {
            throw ImageDecodeError(filename: filename, reason: "not a regular file")
        }
        var bytes = [UInt8](repeating: 0, count: Int(info.st_size))
        var filled = 0
        while true {
            if filled == bytes.count { bytes.append(contentsOf: [UInt8](repeating: 0, count: max(4096, bytes.count))) }
            let n = bytes.withUnsafeMutableBytes { read(fd, $0.baseAddress! + filled, $0.count - filled) }
            if n < 0 {
                if errno == EINTR { continue }
                throw failure("cannot read file")
            }
            if n == 0 { break }
            filled += n
        }
        bytes.removeSubrange(filled...)
        return bytes
    }
}
