import Reporting

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// One image of a scanned tree, in Keras `flow_from_directory(shuffle=False)` order.
public struct ImageEntry: Sendable, Hashable, Codable {
    /// Path relative to the scanned directory, `"<class>/<sub>/<file>"`, exactly Keras' `generator.filenames`.
    public let filename: String
    /// The path to read: the scanned directory joined with `filename` (Keras' `generator.filepaths`).
    public let path: String
    /// Index of the class in `DirectoryScan.classNames` (Keras' `generator.classes`, int32).
    public let label: Int32

    public init(filename: String, path: String, label: Int32) {
        self.filename = filename
        self.path = path
        self.label = label
    }
}

/// A failure to list the image tree itself (as opposed to a failure of one image).
public struct ImageInputError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The directory or path concerned.
    public let path: String
    public let reason: String

    public init(path: String, reason: String) {
        self.path = path
        self.reason = reason
    }

    public var description: String { "\(path): \(reason)" }
}

/// The labelled file list of a Keras-style image tree, identical to what
/// `ImageDataGenerator().flow_from_directory(directory, shuffle=False)` lists.
///
/// Rules (keras-preprocessing ≥ 1.1, Keras 2.6–2.15, Keras 3 legacy iterator):
/// - classes are the entries of `directory` that are directories after following symlinks, hidden ones
///   included, sorted by Unicode code point (Python `sorted` on `str`), unless `classes` is given;
/// - each class is walked recursively like `os.walk(followlinks=False)`: a symlinked subdirectory is not
///   descended, symlinked files and dangling symlinks are listed; directories are visited in order of
///   their full path string (so `x-y` before `x/z`), files sorted within a directory;
/// - a file is kept when its lower-cased name ends with one of `allowedSuffixes` (no dot is required, so
///   `x.apng` and `._x.jpg` are in).
///
/// One deliberate difference: Python's `os.walk` silently skips a subdirectory it cannot read; this scan
/// throws `ImageInputError` naming it instead, so images are never dropped unnoticed.
public struct DirectoryScan: Sendable {
    public let directory: String
    public let classNames: [String]
    /// The images in Keras order, their paths under `directory`.
    public let entries: ImageList

    /// Keras' `white_list_formats`, matched with `fname.lower().endswith(...)`.
    public static let allowedSuffixes = ["png", "jpg", "jpeg", "bmp", "ppm", "tif", "tiff"]

    public init(directory: String, classNames: [String], entries: ImageList) {
        self.directory = directory
        self.classNames = classNames
        self.entries = entries
    }

    /// Lists `directory`. With `classes` given, those names set the class order and labels (as Keras'
    /// `classes=` argument); a listed class that does not exist throws.
    public static func scan(directory: String, classes: [String]? = nil) throws -> DirectoryScan {
        let top = try FileSystemListing.list(directory)
        let classNames: [String]
        if let classes {
            classNames = classes
        } else {
            classNames = top.filter(\.isDirectory).map(\.name).sorted(by: CodePointOrder.less)
        }
        var entries = ImageList(directory: directory)
        for (index, className) in classNames.enumerated() {
            let classPath = PathJoin.join(directory, className)
            var info = stat()
            guard stat(classPath, &info) == 0, (info.st_mode & S_IFMT) == S_IFDIR else {
                throw ImageInputError(path: classPath, reason: "class directory does not exist or is not a directory")
            }
            for relative in try walkClass(classPath) {
                entries.append(filename: PathJoin.join(className, relative), label: Int32(index))
            }
        }
        return DirectoryScan(directory: directory, classNames: classNames, entries: entries)
    }

    /// Relative paths (to `classPath`) of the accepted files, in Keras order.
    static func walkClass(_ classPath: String) throws -> [String] {
        // os.walk top-down; each root is (relative path, its listing). Roots are then ordered by the full
        // path string, which for a common prefix is the code-point order of the relative part ("" first).
        var roots: [(relative: String, files: [String])] = []
        var pending: [String] = [""]
        while let relative = pending.popLast() {
            let absolute = relative.isEmpty ? classPath : PathJoin.join(classPath, relative)
            let listing = try FileSystemListing.list(absolute)
            var files: [String] = []
            for item in listing {
                if item.isDirectory {
                    if !item.isSymlink {
                        pending.append(relative.isEmpty ? item.name : PathJoin.join(relative, item.name))
                    }
                } else {
                    files.append(item.name)
                }
            }
            roots.append((relative, files))
        }
        roots.sort { CodePointOrder.less($0.relative, $1.relative) }
        var result: [String] = []
        for root in roots {
            for name in root.files.sorted(by: CodePointOrder.less) where hasAllowedSuffix(name) {
                result.append(root.relative.isEmpty ? name : PathJoin.join(root.relative, name))
            }
        }
        return result
    }

    /// `fname.lower().endswith(white_list_formats)`. ASCII lower-casing is enough: no non-ASCII character
    /// lower-cases to one of the ASCII letters of the suffixes.
    public static func hasAllowedSuffix(_ name: String) -> Bool {
        let lower = String(decoding: name.utf8.map { ($0 >= 65 && $0 <= 90) ? $0 + 32 : $0 }, as: UTF8.self)
        return allowedSuffixes.contains { lower.hasSuffix($0) }
    }
}

extension ImageInputError: ReportedError {
    public var subject: String? { path }
    public var message: String { reason }
}
