import Foundation
import Reporting
import Storage

/// Writes a feature file's splits for Python: `.npy` arrays as the original Keras scripts load them, or
/// a features-free CSV table. Output names are fixed (see `npy` and `csv`); the directory is created when
/// missing; each file appears only when whole (temporary name, then rename).
public enum FeatureExport {
    /// Writes, for each split of the feature file (train, validation):
    /// `bottleneck_features_<split>.npy` (float32 `(N, h, w, c)`, what Keras' `predict_generator` returns),
    /// `labels_<split>.npy` (int32 `(N,)`, or with `oneHot` float32 `(N, C)` as `to_categorical` gives) and
    /// `filenames_<split>.txt` (one per line, row order); plus `class_names.txt` (one per line, label order).
    ///
    /// Features are copied in row ranges of about `chunkBytes`, so files larger than memory can be exported;
    /// `progress` gets a report (task: the file's name, unit: rows) after each range. Returns the paths
    /// written, in writing order.
    /// - Throws: `ExportError` naming the file: unreadable feature file, a label outside `0..<C`, a file
    ///   name containing a line break (use `csv`), or a file that cannot be written.
    @discardableResult
    public static func npy(
        featureFile: FeatureFile, to directory: String, oneHot: Bool = false, chunkBytes: Int = 64 << 20,
        progress: ProgressSink = .none
    ) throws(ExportError) -> [String] {
        try makeDirectory(directory)
        var written: [String] = []
        let classNames = featureFile.classNames
        try refuseLineBreaks(classNames, what: "class name", source: featureFile.path)
        for name in featureFile.splitNames {
            let (split, labels, filenames) = try readSplit(featureFile, name)
            try refuseLineBreaks(filenames, what: "file name", source: featureFile.path)
            if let row = labels.firstIndex(where: { $0 < 0 || Int($0) >= classNames.count }) {
                throw ExportError(
                    path: featureFile.path,
                    message: "split '\(name)' row \(row) has label \(labels[row]), expected 0..<\(classNames.count)")
            }

            let featuresPath = directory + "/bottleneck_features_\(name).npy"
            let out = try AtomicOutput(featuresPath)
            try out.write(NpyFormat.header(type: .float32, shape: [split.count] + split.featureShape))
            let rowsPerChunk = max(1, chunkBytes / max(1, split.featureSize * 4))
            var start = 0
            let task = (featuresPath as NSString).lastPathComponent
            progress.report(ProgressReport(task: task, done: 0, total: split.count, unit: "rows"))
            while start < split.count {
                let end = min(split.count, start + rowsPerChunk)
                let values: [Float]
                do { values = try split.readFeatures(rows: start..<end) } catch {
                    throw ExportError(path: featureFile.path, message: "\(error)")
                }
                try out.write(littleEndian: values)
                start = end
                progress.report(ProgressReport(task: task, done: end, total: split.count, unit: "rows"))
            }
            try out.publish()
            written.append(featuresPath)

            let labelsPath = directory + "/labels_\(name).npy"
            let labelsOut = try AtomicOutput(labelsPath)
            if oneHot {
                let c = classNames.count
                try labelsOut.write(NpyFormat.header(type: .float32, shape: [labels.count, c]))
                var rows = [Float](repeating: 0, count: labels.count * c)
                for (row, label) in labels.enumerated() { rows[row * c + Int(label)] = 1 }
                try labelsOut.write(littleEndian: rows)
            } else {
                try labelsOut.write(NpyFormat.header(type: .int32, shape: [labels.count]))
                try labelsOut.write(littleEndian: labels)
            }
            try labelsOut.publish()
            written.append(labelsPath)

            let filenamesPath = directory + "/filenames_\(name).txt"
            try writeText(filenames.map { $0 + "\n" }.joined(), to: filenamesPath)
            written.append(filenamesPath)
        }
        let classesPath = directory + "/class_names.txt"
        try writeText(classNames.map { $0 + "\n" }.joined(), to: classesPath)
        written.append(classesPath)
        return written
    }

    /// Writes `<split>.csv` for each split: header `filename,class,label`, one row per feature row in file
    /// order, fields quoted as RFC 4180 says (CRLF line ends). Returns the paths written.
    @discardableResult
    public static func csv(featureFile: FeatureFile, to directory: String) throws(ExportError) -> [String] {
        try makeDirectory(directory)
        var written: [String] = []
        let classNames = featureFile.classNames
        for name in featureFile.splitNames {
            let (_, labels, filenames) = try readSplit(featureFile, name)
            var text = "filename,class,label\r\n"
            for (filename, label) in zip(filenames, labels) {
                guard label >= 0, Int(label) < classNames.count else {
                    throw ExportError(
                        path: featureFile.path,
                        message: "split '\(name)': \(filename) has label \(label), expected 0..<\(classNames.count)")
                }
                text += csvRow([filename, classNames[Int(label)], String(label)])
            }
            let path = directory + "/\(name).csv"
            try writeText(text, to: path)
            written.append(path)
        }
        return written
    }

    /// One CSV record with its CRLF: fields containing a comma, a double quote, CR or LF are enclosed in
    /// double quotes, and their double quotes doubled (RFC 4180).
    public static func csvRow(_ fields: [String]) -> String {
        fields.map { field in
            guard field.contains(where: { $0 == "," || $0 == "\"" || $0 == "\r" || $0 == "\n" || $0 == "\r\n" })
            else { return field }
            return "\"" + field.replacingOccurrences(of: "\"", with: "\"\"") + "\""
        }.joined(separator: ",") + "\r\n"
    }

    private static func readSplit(_ file: FeatureFile, _ name: String) throws(ExportError) -> (
        FeatureSplit, [Int32], [String]
    ) {
        do {
            let split = try file.split(name)
            let labels = try split.labels()
            let filenames = try split.filenames()
            guard filenames.count == split.count else {
                throw ExportError(
                    path: file.path,
                    message: "split '\(name)' has \(filenames.count) file names for \(split.count) feature rows")
            }
            return (split, labels, filenames)
        } catch let error as ExportError {
            throw error
        } catch let error as StorageError {
            throw ExportError(path: error.path, message: error.message)
        } catch {
            throw ExportError(path: file.path, message: "\(error)")
        }
    }

    private static func refuseLineBreaks(_ names: [String], what: String, source: String) throws(ExportError) {
        if let bad = names.first(where: { $0.contains(where: \.isNewline) }) {
            throw ExportError(
                path: source,
                message: "\(what) \(bad.debugDescription) contains a line break; a one-per-line list cannot hold it "
                    + "(the CSV format can)")
        }
    }

    private static func makeDirectory(_ directory: String) throws(ExportError) {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: directory, isDirectory: &isDirectory) {
            guard isDirectory.boolValue else {
                throw ExportError(
                    path: directory, message: "exists and is not a directory; expected an output directory")
            }
            return
        }
        do { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) } catch {
            throw ExportError(
                path: directory, message: "cannot create the output directory: \(error)", category: .failedRun)
        }
    }

    private static func writeText(_ text: String, to path: String) throws(ExportError) {
        let out = try AtomicOutput(path)
        try out.write(text)
        try out.publish()
    }
}
