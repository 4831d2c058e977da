import Foundation
import ImageInput
import Reporting
import Storage
import TopModel

/// A misclassified image: its row, file name, true and predicted class, the predicted probability, and
/// a JPEG thumbnail when the image could be read (otherwise why not).
public struct MisclassifiedImage: Sendable {
    public var row: Int
    public var filename: String
    public var trueClass: String
    public var predictedClass: String
    public var probability: Float
    /// Probability the model gave the true class.
    public var trueClassProbability: Float
    public var thumbnailJPEG: [UInt8]?
    public var thumbnailProblem: String?
}

/// Everything the report page shows, computed from a feature file and a classifier.
public struct ReportContent: Sendable {
    public var title: String
    public var featureFilePath: String
    public var modelPath: String
    public var split: String
    public var classifier: ReportClassifier
    public var attributes: FeatureFileAttributes
    public var classNames: [String]
    /// Rows and skipped files per split, in split order.
    public var splitCounts: [(name: String, rows: Int, skipped: Int)]
    public var evaluation: Evaluation
    public var history: TrainingHistory?
    /// Why there is no history, when there is none.
    public var historyNote: String?
    public var misclassified: [MisclassifiedImage]
    /// Misclassified rows in all (`misclassified` may hold fewer: see `maxThumbnails`).
    public var misclassifiedCount: Int
    /// Why thumbnails are missing or incomplete, when they are.
    public var thumbnailNote: String?

    /// Options of `make`.
    public struct Options: Sendable {
        /// The split evaluated.
        public var split = "validation"
        /// Root of that split's image tree (file names in the feature file are relative to it).
        public var imagesDirectory: String?
        /// Longer side of a thumbnail, in pixels.
        public var thumbnailSide = 96
        /// At most this many misclassified images are listed (the most confident mistakes first).
        public var maxMisclassified = 200
        /// Feature bytes read per prediction chunk.
        public var chunkBytes = 64 << 20

        public init() {}
    }

    /// Predicts every row of `options.split` with `classifier` (reporting rows done to `progress`), builds the
    /// confusion matrix and metrics, reads the history next to `modelPath`, and makes thumbnails of the
    /// misclassified images.
    ///
    /// - Throws: `ReportError` naming the file: the classifier's features were made differently from the
    ///   file's (layer, size, preprocessing, interpolation, weights), class names or feature shape differ,
    ///   the split is missing, or the feature file cannot be read. Unreadable images and a missing or
    ///   malformed history are noted in the report, not thrown.
    public static func make(
        featureFile: FeatureFile, modelPath: String, classifier: ReportClassifier, options: Options = Options(),
        progress: ProgressSink = .none
    ) throws(ReportError) -> ReportContent {
        let path = featureFile.path
        let differences = classifier.provenance.differences(from: featureFile.attributes)
        guard differences.isEmpty else {
            throw ReportError(
                path: modelPath,
                message: "trained on features made differently from \(path): " + differences.joined(separator: "; "))
        }
        guard classifier.classNames == featureFile.classNames else {
            throw ReportError(
                path: modelPath,
                message: "classes [\(classifier.classNames.joined(separator: ", "))] differ from \(path)'s "
                    + "[\(featureFile.classNames.joined(separator: ", "))]")
        }
        let c = classifier.classNames.count
        var splitCounts: [(name: String, rows: Int, skipped: Int)] = []
        let split: FeatureSplit
        let labels: [Int32]
        let filenames: [String]
        do {
            for name in featureFile.splitNames {
                let s = try featureFile.split(name)
                splitCounts.append((name, s.count, try s.skipped().count))
            }
            split = try featureFile.split(options.split)
            labels = try split.labels()
            filenames = try split.filenames()
        } catch let error as StorageError {
            throw ReportError(path: error.path, message: error.message)
        } catch {
            throw ReportError(path: path, message: "\(error)")
        }
        guard split.featureShape == classifier.featureShape else {
            throw ReportError(
                path: modelPath,
                message: "expects features of shape \(classifier.featureShape), \(path) split '\(options.split)' "
                    + "has \(split.featureShape)")
        }
        guard filenames.count == split.count, labels.count == split.count else {
            throw ReportError(
                path: path,
                message: "split '\(options.split)' has \(labels.count) labels and \(filenames.count) "
                    + "file names for \(split.count) feature rows")
        }
        if let row = labels.firstIndex(where: { $0 < 0 || Int($0) >= c }) {
            throw ReportError(path: path, message: "row \(row) has label \(labels[row]), expected 0..<\(c)")
        }

        // Predictions, chunk by chunk.
        var confusion = [[Int]](repeating: [Int](repeating: 0, count: c), count: c)
        var lossSum = 0.0
        var mistakes: [(row: Int, predicted: Int, probability: Float, trueProbability: Float)] = []
        let rowsPerChunk = max(1, options.chunkBytes / max(1, split.featureSize * 4))
        var start = 0
        progress.report(ProgressReport(task: "predict", done: 0, total: split.count, unit: "rows"))
        while start < split.count {
            let end = min(split.count, start + rowsPerChunk)
            let p: [Float]
            do { p = try classifier.probabilities(try split.readFeatures(rows: start..<end)) } catch {
                throw ReportError(path: path, message: "predicting rows \(start)..<\(end): \(error)")
            }
            guard p.count == (end - start) * c else {
                throw ReportError(
                    path: modelPath, message: "the classifier gave \(p.count) probabilities for \(end - start) rows")
            }
            for r in 0..<(end - start) {
                let row = Array(p[(r * c)..<((r + 1) * c)])
                var best = 0
                for k in 1..<max(1, c) where row[k] > row[best] { best = k }
                let truth = Int(labels[start + r])
                confusion[truth][best] += 1
                lossSum += -log(Double(min(max(row[truth], 1e-7), 1 - 1e-7)))
                if best != truth { mistakes.append((start + r, best, row[best], row[truth])) }
            }
            start = end
            progress.report(ProgressReport(task: "predict", done: end, total: split.count, unit: "rows"))
        }
        let evaluation = Evaluation(
            source: "\(path): split '\(options.split)'", classNames: classifier.classNames,
            confusionMatrix: confusion, lossSum: lossSum)

        // History next to the model.
        var history: TrainingHistory?
        var historyNote: String?
        let historyPath = HistoryCSV.path(nextToModel: modelPath)
        if let text = try? String(contentsOfFile: historyPath, encoding: .utf8) {
            do { history = try HistoryCSV.parse(text, source: historyPath) } catch {
                historyNote = "The training history could not be read: \(error.description)"
            }
            if history?.records.isEmpty == true {
                history = nil
                historyNote = "The training history \(historyPath) holds no epochs."
            }
        } else {
            historyNote =
                "No training history: \(historyPath) is absent (`train` writes it next to the model; "
                + "a model trained elsewhere has none)."
        }

        // The most confident mistakes first; ties in row order.
        mistakes.sort { $0.probability > $1.probability || ($0.probability == $1.probability && $0.row < $1.row) }
        var thumbnailNote: String?
        if options.imagesDirectory == nil, !mistakes.isEmpty {
            thumbnailNote =
                "Thumbnails need the root of the '\(options.split)' image tree given to the report: the feature "
                + "file records file names relative to that directory, not the directory itself."
        }
        if mistakes.count > options.maxMisclassified {
            let note =
                "Showing the \(options.maxMisclassified) most confident of \(mistakes.count) misclassified images."
            thumbnailNote = thumbnailNote.map { $0 + " " + note } ?? note
        }
        let shown = mistakes.prefix(options.maxMisclassified).map { mistake in
            var item = MisclassifiedImage(
                row: mistake.row, filename: filenames[mistake.row],
                trueClass: classifier.classNames[Int(labels[mistake.row])],
                predictedClass: classifier.classNames[mistake.predicted], probability: mistake.probability,
                trueClassProbability: mistake.trueProbability, thumbnailJPEG: nil, thumbnailProblem: nil)
            if let root = options.imagesDirectory {
                do {
                    item.thumbnailJPEG = try thumbnail(
                        root + "/" + item.filename, filename: item.filename, side: options.thumbnailSide)
                } catch {
                    item.thumbnailProblem = "\(error)"
                }
            }
            return item
        }
        return ReportContent(
            title: "Bottleneck report: \((modelPath as NSString).lastPathComponent) on "
                + "\((path as NSString).lastPathComponent), split '\(options.split)'",
            featureFilePath: path, modelPath: modelPath, split: options.split, classifier: classifier,
            attributes: featureFile.attributes, classNames: featureFile.classNames, splitCounts: splitCounts,
            evaluation: evaluation, history: history, historyNote: historyNote, misclassified: Array(shown),
            misclassifiedCount: mistakes.count, thumbnailNote: thumbnailNote)
    }

    /// Reads, decodes (as Pillow does), downscales and JPEG-encodes one image.
    static func thumbnail(_ path: String, filename: String, side: Int) throws -> [UInt8] {
        let bytes = try ImageDecoder.readFile(path, filename: filename)
        let image = try ImageDecoder.decode(bytes, filename: filename)
        return try Thumbnail.jpeg(Thumbnail.scaled(image, maxSide: side), quality: 85)
    }
}
