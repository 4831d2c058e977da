import Reporting

#if canImport(Glibc)
    import Glibc
#elseif canImport(Darwin)
    import Darwin
#endif

/// A fault in an image list file, with the place it was found.
public struct ImageListError: Error, CustomStringConvertible, Sendable, Equatable {
    /// The list file.
    public let file: String
    /// 1-based line of the file (physical lines; a quoted field may span several); 0: the file as a whole.
    public let line: Int
    /// 1-based column (CSV field) of that line; 0: the line as a whole.
    public let column: Int
    public let reason: String

    public init(file: String, line: Int, column: Int, reason: String) {
        self.file = file
        self.line = line
        self.column = column
        self.reason = reason
    }

    public var place: String {
        guard line > 0 else { return file }
        return column > 0 ? "\(file), line \(line), column \(column)" : "\(file), line \(line)"
    }

    public var description: String { "\(place): \(reason)" }
}

extension ImageListError: ReportedError {
    public var subject: String? { place }
    public var message: String { reason }
}

/// A CSV image list, as Keras' `ImageDataGenerator().flow_from_dataframe(pandas.read_csv(file), directory,
/// x_col="filename", y_col="class", shuffle=False)` reads it.
///
/// - The first row is a header; it must name a `filename` and a `class` column, in any order; other columns are
///   ignored. A UTF-8 byte-order mark before it is skipped.
/// - RFC 4180: fields separated by commas, rows by LF, CRLF or CR; a field in double quotes may hold commas, line
///   breaks and doubled quotes (`""`). A quote in an unquoted field, or text after a closing quote, is an error.
///   Empty lines are skipped (pandas' `skip_blank_lines`).
/// - Classes are the distinct values of `class`, sorted by code point (Keras sorts them, as the tree scan does);
///   rows keep the file's order. An empty filename or class is an error, as is a row with more fields than the
///   header or without the two columns.
/// - Files are not looked at here: a row naming a missing file becomes a skipped image (reason "missing") when it
///   is read, where Keras' `validate_filenames` would have dropped the row; the rows written are the same.
///
/// Parsed from bytes in chunks: no `String` per field (10 million rows parse in seconds). Errors name the file,
/// line and column.
public enum ImageListFile {
    /// Reads the list at `path`; filenames are relative to `directory` (nil: they are paths as they stand).
    public static func read(_ path: String, directory: String?) throws -> (classNames: [String], images: ImageList) {
        let descriptor = open(path, O_RDONLY | O_CLOEXEC)
        guard descriptor >= 0 else {
            throw ImageListError(file: path, line: 0, column: 0, reason: "cannot open: \(errorText())")
        }
        defer { close(descriptor) }
        var parser = Parser(file: path, directory: directory)
        var chunk = [UInt8](repeating: 0, count: 1 << 22)
        var info = stat()
        let fileSize = fstat(descriptor, &info) == 0 ? Int(info.st_size) : 0
        var consumed = 0
        while true {
            let count = chunk.withUnsafeMutableBytes { readBytes(descriptor, $0.baseAddress, $0.count) }
            if count < 0 {
                if errno == EINTR { continue }
                throw ImageListError(file: path, line: parser.line, column: 0, reason: "cannot read: \(errorText())")
            }
            if count == 0 { break }
            try chunk.withUnsafeBufferPointer { try parser.feed(UnsafeBufferPointer(rebasing: $0[0..<count])) }
            if consumed == 0 && count < fileSize && parser.images.count > 0 {
                // The rest is likely alike: room for it at once, rather than arrays grown (and copied) step by step.
                let rows = parser.images.count
                let expected = Int(Double(rows) * Double(fileSize) / Double(count) * 1.02)
                parser.images.reserve(
                    images: expected - rows, bytesPerName: parser.images.storageBytes / rows - 12 + 1)
            }
            consumed += count
        }
        return try parser.finish()
    }

    /// Parses `text` as the contents of a list file named `file` (for tests and small lists).
    public static func parse(_ text: [UInt8], file: String, directory: String?) throws -> (
        classNames: [String], images: ImageList
    ) {
        var parser = Parser(file: file, directory: directory)
        try text.withUnsafeBufferPointer { try parser.feed($0) }
        return try parser.finish()
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }

    /// The CSV state machine; fed chunks of bytes, keeps only the current row's two fields of interest.
    struct Parser {
        enum State {
            case fieldStart, unquoted, quoted, quoteInQuoted, afterCR
        }

        let file: String
        var images: ImageList
        var state = State.fieldStart
        /// Physical line being read, 1-based.
        var line = 1
        /// Line on which the current row began.
        var rowLine = 1
        /// Field of the current row being read, 0-based.
        var field = 0
        var rowIsBlank = true
        var inHeader = true
        var headerCurrent: [UInt8] = []
        var headerFields: [[UInt8]] = []
        var filenameColumn = -1
        var classColumn = -1
        var columnCount = 0
        var filename: [UInt8] = []
        var className: [UInt8] = []
        var lastClass: [UInt8] = []
        var lastClassID: Int32 = -1
        var classIDs: [[UInt8]: Int32] = [:]
        var classOrder: [[UInt8]] = []
        var sawBOMCheck = false
        var bomBytes: [UInt8] = []

        init(file: String, directory: String?) {
            self.file = file
            images = ImageList(directory: directory)
        }

        func fail(_ column: Int, _ reason: String) -> ImageListError {
            ImageListError(file: file, line: line, column: column, reason: reason)
        }

        mutating func feed(_ input: UnsafeBufferPointer<UInt8>) throws {
            var start = 0
            if !sawBOMCheck {
                // The byte-order mark may be split across chunks in theory; gather the first three bytes.
                while bomBytes.count < 3, start < input.count {
                    bomBytes.append(input[start])
                    start += 1
                }
                if bomBytes.count < 3 { return }
                sawBOMCheck = true
                let pending = bomBytes == [0xEF, 0xBB, 0xBF] ? [] : bomBytes
                for byte in pending { try consume(byte) }
            }
            var index = start
            // A local copy: a static read in the loop costs a `swift_once` check per byte.
            let endsUnquoted = Self.endsUnquoted
            while index < input.count {
                // A plain row whole in this chunk is split at once (`plainRow`); others go byte by byte.
                if state == .fieldStart && field == 0 && !inHeader,
                    let next = try plainRow(input, from: index, endsUnquoted: endsUnquoted)
                {
                    index = next
                    continue
                }
                // Runs of ordinary bytes inside a field are copied at once; the state machine sees the rest.
                if state == .unquoted || state == .quoted {
                    var end = index
                    if state == .unquoted {
                        while end < input.count, !endsUnquoted[Int(input[end])] { end += 1 }
                    } else {
                        while end < input.count, input[end] != 0x22, input[end] != 0x0A { end += 1 }
                    }
                    if end > index {
                        keep(UnsafeBufferPointer(rebasing: input[index..<end]))
                        index = end
                        continue
                    }
                }
                try consume(input[index])
                index += 1
            }
        }

        /// Reads the row that starts at `start` when it is plain: whole in `input` up to its line feed (or CRLF),
        /// not blank, without double quotes or other carriage returns, with no more fields than the header. Its two
        /// fields of interest are taken at once and the row ends as the byte-by-byte reading would end it
        /// (`endRow`, with the same checks and errors). Returns the index after the line break, or nil, having
        /// changed nothing, for any other row: the state machine then reads it, and reports any fault in it.
        @inline(__always)
        mutating func plainRow(_ input: UnsafeBufferPointer<UInt8>, from start: Int, endsUnquoted: [Bool]) throws
            -> Int?
        {
            var index = start
            var fieldIndex = 0
            var fieldStart = start
            var filenameRange = start..<start
            var classRange = start..<start
            var bits: UInt8 = 0
            var lineBreak = 1
            while true {
                guard index < input.count else { return nil }
                let byte = input[index]
                bits |= byte
                if endsUnquoted[Int(byte)] {
                    // CRLF ends the row as LF does; a quote, or a CR without its LF in this chunk, does not.
                    let crlf = byte == 0x0D && index + 1 < input.count && input[index + 1] == 0x0A
                    guard byte == 0x2C || byte == 0x0A || crlf else { return nil }
                    if fieldIndex == filenameColumn { filenameRange = fieldStart..<index }
                    if fieldIndex == classColumn { classRange = fieldStart..<index }
                    if byte != 0x2C {
                        if crlf { lineBreak = 2 }
                        break
                    }
                    fieldIndex += 1
                    guard fieldIndex < columnCount else { return nil }
                    fieldStart = index + 1
                }
                index += 1
            }
            guard index > start else { return nil }  // a blank line
            if bits < 0x80, fieldIndex + 1 > max(filenameColumn, classColumn), !filenameRange.isEmpty,
                !classRange.isEmpty, let label = knownClass(UnsafeBufferPointer(rebasing: input[classRange]))
            {
                // ASCII, both fields there, a class seen before: what `endRow` would do, without its copies.
                images.append(filename: UnsafeBufferPointer(rebasing: input[filenameRange]), label: label)
                rowLine = line + 1
                line += 1
                return index + lineBreak
            }
            filename.removeAll(keepingCapacity: true)
            filename.append(contentsOf: UnsafeBufferPointer(rebasing: input[filenameRange]))
            className.removeAll(keepingCapacity: true)
            className.append(contentsOf: UnsafeBufferPointer(rebasing: input[classRange]))
            field = fieldIndex
            rowIsBlank = false
            try endRow()
            line += 1
            return index + lineBreak
        }

        /// The label of a class seen before, by comparing bytes when there are few classes; nil otherwise.
        @inline(__always)
        func knownClass(_ name: UnsafeBufferPointer<UInt8>) -> Int32? {
            guard classOrder.count <= 32 else { return nil }
            for (label, known) in classOrder.enumerated() where known.count == name.count {
                let same = known.withUnsafeBufferPointer { memcmp($0.baseAddress!, name.baseAddress!, name.count) == 0 }
                if same { return Int32(label) }
            }
            return nil
        }

        /// Bytes that end a run inside an unquoted field: comma, LF, CR, double quote.
        static let endsUnquoted: [Bool] = (0..<256).map { [0x2C, 0x0A, 0x0D, 0x22].contains($0) }

        /// A run of the current field's bytes (see `keep(_:)` for a byte).
        mutating func keep(_ run: UnsafeBufferPointer<UInt8>) {
            if inHeader {
                headerCurrent.append(contentsOf: run)
            } else if field == filenameColumn {
                filename.append(contentsOf: run)
            } else if field == classColumn {
                className.append(contentsOf: run)
            }
        }

        /// The current field's bytes go to the filename, the class, or the header (others are dropped).
        @inline(__always)
        mutating func keep(_ byte: UInt8) {
            if inHeader {
                headerCurrent.append(byte)
            } else if field == filenameColumn {
                filename.append(byte)
            } else if field == classColumn {
                className.append(byte)
            }
        }

        @inline(__always)
        mutating func consume(_ byte: UInt8) throws {
            let quote: UInt8 = 0x22
            let comma: UInt8 = 0x2C
            let lf: UInt8 = 0x0A
            let cr: UInt8 = 0x0D
            switch state {
            case .afterCR:
                state = .fieldStart
                if byte == lf { return }  // CRLF: one line break
                try consume(byte)
            case .fieldStart:
                switch byte {
                case quote:
                    state = .quoted
                    rowIsBlank = false
                case comma:
                    rowIsBlank = false
                    try endField()
                case lf, cr:
                    try endRow()
                    line += 1
                    if byte == cr { state = .afterCR }
                default:
                    rowIsBlank = false
                    keep(byte)
                    state = .unquoted
                }
            case .unquoted:
                switch byte {
                case comma:
                    try endField()
                    state = .fieldStart
                case lf, cr:
                    try endRow()
                    line += 1
                    state = byte == cr ? .afterCR : .fieldStart
                case quote:
                    throw fail(
                        field + 1,
                        "a double quote inside an unquoted field (quote the whole field, doubling "
                            + "the quotes inside)")
                default:
                    keep(byte)
                }
            case .quoted:
                if byte == quote {
                    state = .quoteInQuoted
                } else {
                    if byte == lf { line += 1 }
                    keep(byte)
                }
            case .quoteInQuoted:
                switch byte {
                case quote:
                    keep(quote)
                    state = .quoted
                case comma:
                    try endField()
                    state = .fieldStart
                case lf, cr:
                    try endRow()
                    line += 1
                    state = byte == cr ? .afterCR : .fieldStart
                default:
                    throw fail(field + 1, "text after the closing quote of a quoted field")
                }
            }
        }

        mutating func endField() throws {
            if inHeader {
                headerFields.append(headerCurrent)
                headerCurrent = []
            }
            field += 1
            if !inHeader, field >= columnCount {
                throw fail(field + 1, "more fields than the header's \(columnCount)")
            }
        }

        mutating func endRow() throws {
            defer {
                field = 0
                rowIsBlank = true
                filename.removeAll(keepingCapacity: true)
                className.removeAll(keepingCapacity: true)
                rowLine = line + 1
            }
            if rowIsBlank && field == 0 { return }
            guard !inHeader else { return try endHeader() }
            guard field + 1 > max(filenameColumn, classColumn) else {
                throw fail(
                    0,
                    "\(field + 1) field(s); the header has \(columnCount) (filename is column "
                        + "\(filenameColumn + 1), class column \(classColumn + 1))")
            }
            guard !filename.isEmpty else { throw fail(filenameColumn + 1, "empty filename") }
            guard !className.isEmpty else { throw fail(classColumn + 1, "empty class") }
            try checkUTF8(filename, column: filenameColumn + 1)
            let label: Int32
            if className == lastClass {
                label = lastClassID
            } else {
                try checkUTF8(className, column: classColumn + 1)
                // A few classes: comparing bytes beats hashing them.
                let known =
                    classOrder.count <= 32
                    ? classOrder.firstIndex(of: className).map { Int32($0) } : classIDs[className]
                if let known {
                    label = known
                } else {
                    label = Int32(classOrder.count)
                    classIDs[className] = label
                    classOrder.append(className)
                }
                lastClass = className
                lastClassID = label
            }
            filename.withUnsafeBufferPointer { images.append(filename: $0, label: label) }
        }

        func checkUTF8(_ bytes: [UInt8], column: Int) throws {
            guard bytes.contains(where: { $0 >= 0x80 }) else { return }
            guard String(validating: bytes, as: UTF8.self) != nil else {
                throw fail(column, "not UTF-8")
            }
        }

        mutating func endHeader() throws {
            headerFields.append(headerCurrent)
            headerCurrent = []
            let names = headerFields.map { String(decoding: $0, as: UTF8.self) }
            inHeader = false
            columnCount = names.count
            let filenames = names.indices.filter { names[$0] == "filename" }
            let classes = names.indices.filter { names[$0] == "class" }
            let shown = names.map { "'\($0)'" }.joined(separator: ", ")
            guard filenames.count == 1 else {
                throw fail(
                    0,
                    filenames.isEmpty
                        ? "the header [\(shown)] has no 'filename' column"
                        : "the header has \(filenames.count) 'filename' columns")
            }
            guard classes.count == 1 else {
                throw fail(
                    0,
                    classes.isEmpty
                        ? "the header [\(shown)] has no 'class' column"
                        : "the header has \(classes.count) 'class' columns")
            }
            filenameColumn = filenames[0]
            classColumn = classes[0]
        }

        mutating func finish() throws -> (classNames: [String], images: ImageList) {
            if !sawBOMCheck {
                sawBOMCheck = true
                let pending = bomBytes == [0xEF, 0xBB, 0xBF] ? [] : bomBytes
                for byte in pending { try consume(byte) }
            }
            switch state {
            case .quoted:
                throw ImageListError(
                    file: file, line: rowLine, column: field + 1, reason: "a quoted field is not closed")
            case .unquoted, .quoteInQuoted, .fieldStart:
                try endRow()
            case .afterCR: break
            }
            guard !inHeader else {
                throw ImageListError(file: file, line: 0, column: 0, reason: "empty: no header row")
            }
            guard !images.isEmpty else {
                throw ImageListError(file: file, line: 0, column: 0, reason: "no rows after the header")
            }
            let names = classOrder.map { String(decoding: $0, as: UTF8.self) }
            let sorted = names.indices.sorted { CodePointOrder.less(names[$0], names[$1]) }
            var mapping = [Int32](repeating: 0, count: names.count)
            for (position, original) in sorted.enumerated() { mapping[original] = Int32(position) }
            images.relabel(mapping)
            return (sorted.map { names[$0] }, images)
        }
    }
}

/// `read(2)` (the enum's own `read` hides the C function inside it).
private func readBytes(_ descriptor: Int32, _ buffer: UnsafeMutableRawPointer?, _ count: Int) -> Int {
    read(descriptor, buffer, count)
}
