import Foundation
import Reporting

#if canImport(Glibc)
    import Glibc
#endif

/// The checks every command runs on a path it will write, before it does any work.
///
/// In order: the path is not empty and not a directory; it does not resolve (symlinks, `..`, hard links) to one
/// of the command's inputs; an existing file there is one of the kind the command writes (`recognises`), unless
/// overwriting is allowed; and a file can be created in its directory (a temporary file is created and
/// removed). A refusal of the path itself is a usage error (exit status 2); a directory that cannot be written is
/// a failed run ("cannot write OUTPUT: reason").
public enum OutputCheck {
    /// A path a command reads, with the words that name it ("weights", "feature file").
    public struct Input: Sendable {
        public var path: String
        public var role: String
        public init(_ path: String, role: String) {
            self.path = path
            self.role = role
        }
    }

    /// Checks `path` (see the type's comment).
    ///
    /// - Parameters:
    ///   - role: what the output is, for messages ("output", "plot").
    ///   - kind: what the command writes there, for messages ("feature file", "top model file").
    ///   - inputs: the paths the command reads; nonexistent ones are compared by their resolved names.
    ///   - overwrite: whether an existing file of another kind may be replaced.
    ///   - recognises: whether an existing regular file at `path` is one this command writes (it is read only).
    public static func check(
        _ path: String, role: String = "output", kind: String, inputs: [Input], overwrite: Bool,
        recognises: (String) -> Bool
    ) throws {
        guard !path.isEmpty else { throw OutputRefusal(path: path, message: "the \(role) path is empty") }
        var isDirectory: ObjCBool = false
        let exists = FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory)
        if path.hasSuffix("/") || (exists && isDirectory.boolValue) {
            throw OutputRefusal(path: path, message: "\(path) is a directory; the \(role) must name a file")
        }
        let resolved = resolve(path)
        for input in inputs where !input.path.isEmpty {
            if resolve(input.path) == resolved || sameFile(path, input.path) {
                throw OutputRefusal(
                    path: path,
                    message: "the \(role) \(path) is the \(input.role) \(input.path); writing it would destroy it")
            }
        }
        if exists, !overwrite, !recognises(path) {
            throw OutputRefusal(
                path: path, message: "\(path) exists and is not a \(kind); refusing to overwrite it",
                remedy: .overwrite)
        }
        try probeWritable(path)
    }

    /// Creates and removes a temporary file next to `path`; throws `FileIOError` ("cannot write PATH: reason").
    public static func probeWritable(_ path: String) throws {
        let directory = (path as NSString).deletingLastPathComponent
        let probe = (directory.isEmpty ? "." : directory) + "/.bottleneck-probe-\(getpid())"
        let fd = Glibc.open(probe, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o600)
        guard fd >= 0 else { throw FileIOError(path: path, operation: "write", errno: errno) }
        Glibc.close(fd)
        unlink(probe)
    }

    /// The absolute path `path` stands for: the real path of its longest existing prefix (symlinks and `..`
    /// resolved), followed by the rest with `.` and `..` applied.
    public static func resolve(_ path: String) -> String {
        let absolute =
            path.hasPrefix("/") ? path : FileManager.default.currentDirectoryPath + "/" + path
        var existing = absolute
        var rest: [String] = []
        while true {
            if let real = realpath(existing, nil) {
                defer { free(real) }
                var components = String(cString: real).split(separator: "/").map(String.init)
                for component in rest.reversed() {
                    switch component {
                    case "", ".": continue
                    case "..": if !components.isEmpty { components.removeLast() }
                    default: components.append(component)
                    }
                }
                return "/" + components.joined(separator: "/")
            }
            let parent = (existing as NSString).deletingLastPathComponent
            if parent == existing || parent.isEmpty { return absolute }
            rest.append((existing as NSString).lastPathComponent)
            existing = parent
        }
    }

    /// Whether both paths exist and are the same file (one inode: a hard link or a symlink).
    static func sameFile(_ a: String, _ b: String) -> Bool {
        var first = stat()
        var second = stat()
        guard stat(a, &first) == 0, stat(b, &second) == 0 else { return false }
        return first.st_dev == second.st_dev && first.st_ino == second.st_ino
    }
}

/// An output path a command refuses before it starts: exit status 2.
public struct OutputRefusal: ReportedError, Equatable {
    public let path: String
    public let message: String
    public let remedy: Remedy?

    public init(path: String, message: String, remedy: Remedy? = nil) {
        self.path = path
        self.message = message
        self.remedy = remedy
    }

    public var subject: String? { path }
    public var category: FailureCategory { .usage }
    public var description: String { message }
}
