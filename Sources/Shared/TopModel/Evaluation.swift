import BLAS
import Foundation

/// Precision, recall, F1 and support of one class.
public struct ClassMetrics: Sendable, Codable, Equatable {
    public var precision: Double
    public var recall: Double
    public var f1: Double
    /// Number of rows whose true class is this one.
    public var support: Int
}

/// The result of evaluating a top model on labelled features.
///
/// JSON (`Codable`): `accuracy`, `loss`, `count`, `class_names`, `per_class` (name → precision, recall,
/// f1, support), `confusion_matrix` (rows = true class, columns = predicted class, class order), `source`.
public struct Evaluation: Sendable, Codable, Equatable {
    /// What was evaluated, e.g. `features.h5: split 'validation'`.
    public var source: String
    public var count: Int
    public var loss: Double
    public var accuracy: Double
    public var classNames: [String]
    public var perClass: [String: ClassMetrics]
    /// `[true class][predicted class]` counts.
    public var confusionMatrix: [[Int]]

    enum CodingKeys: String, CodingKey {
        case source, count, loss, accuracy
        case classNames = "class_names"
        case perClass = "per_class"
        case confusionMatrix = "confusion_matrix"
    }

    /// Metrics from a confusion matrix (sklearn's definitions; 0 where a ratio is 0/0).
    public init(source: String, classNames: [String], confusionMatrix: [[Int]], lossSum: Double) {
        self.source = source
        self.classNames = classNames
        self.confusionMatrix = confusionMatrix
        let c = classNames.count
        count = confusionMatrix.reduce(0) { $0 + $1.reduce(0, +) }
        let correct = (0..<c).reduce(0) { $0 + confusionMatrix[$1][$1] }
        accuracy = count > 0 ? Double(correct) / Double(count) : 0
        loss = count > 0 ? lossSum / Double(count) : 0
        var perClass: [String: ClassMetrics] = [:]
        for k in 0..<c {
            let tp = Double(confusionMatrix[k][k])
            let predicted = Double((0..<c).reduce(0) { $0 + confusionMatrix[$1][k] })
            let support = confusionMatrix[k].reduce(0, +)
            let precision = predicted > 0 ? tp / predicted : 0
            let recall = support > 0 ? tp / Double(support) : 0
            let f1 = precision + recall > 0 ? 2 * precision * recall / (precision + recall) : 0
            perClass[classNames[k]] = ClassMetrics(precision: precision, recall: recall, f1: f1, support: support)
        }
        self.perClass = perClass
    }

    /// Unweighted mean of the per-class F1 scores.
    public var macroF1: Double {
        classNames.isEmpty ? 0 : classNames.reduce(0) { $0 + (perClass[$1]?.f1 ?? 0) } / Double(classNames.count)
    }

    /// A text report: accuracy and loss, the per-class table, and the confusion matrix.
    public var report: String {
        func right(_ s: String, _ width: Int) -> String { String(repeating: " ", count: max(0, width - s.count)) + s }
        func left(_ s: String, _ width: Int) -> String { s + String(repeating: " ", count: max(0, width - s.count)) }
        func f(_ x: Double) -> String { String(format: "%.4f", x) }
        let nameWidth = max(9, classNames.map(\.count).max() ?? 0)
        var lines = ["\(source): \(count) rows, accuracy \(f(accuracy)), loss \(f(loss))", ""]
        lines.append(
            left("class", nameWidth) + right("precision", 11) + right("recall", 9) + right("f1", 9)
                + right("support", 9))
        for name in classNames {
            let m = perClass[name]!
            lines.append(
                left(name, nameWidth) + right(f(m.precision), 11) + right(f(m.recall), 9) + right(f(m.f1), 9)
                    + right("\(m.support)", 9))
        }
        lines.append(left("macro avg", nameWidth) + right("", 20) + right(f(macroF1), 9) + right("\(count)", 9))
        lines.append("")
        lines.append("confusion matrix (rows = true class, columns = predicted class):")
        let labels = classNames.enumerated().map { "[\($0.offset)] \($0.element)" }
        let labelWidth = labels.map(\.count).max() ?? 0
        let cellWidth = max(5, (confusionMatrix.joined().map { "\($0)".count }.max() ?? 0) + 2)
        lines.append(left("", labelWidth) + classNames.indices.map { right("[\($0)]", cellWidth) }.joined())
        for (k, label) in labels.enumerated() {
            lines.append(left(label, labelWidth) + confusionMatrix[k].map { right("\($0)", cellWidth) }.joined())
        }
        return lines.joined(separator: "\n")
    }

    /// The evaluation as pretty-printed JSON with sorted keys.
    public func jsonData() throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.prettyPrinted, .sortedKeys]
        return try encoder.encode(self)
    }
}

extension Evaluation {
    /// Whether `path` holds an SVG drawing (an `<svg` or `<?xml` start in its first 1 KiB, after white space):
    /// what `evaluate` writes as its plot, checked before writing over an existing file.
    public static func isSVGFile(_ path: String) -> Bool {
        guard let handle = FileHandle(forReadingAtPath: path) else { return false }
        defer { try? handle.close() }
        guard let head = try? handle.read(upToCount: 1024) else { return false }
        let text = String(decoding: head, as: UTF8.self).drop(while: { $0.isWhitespace })
        return text.hasPrefix("<svg") || text.hasPrefix("<?xml")
    }
}

extension TopModel {
    /// Evaluates on a labelled source (dropout off): mean cross-entropy, accuracy, per-class metrics and
    /// the confusion matrix. Reads the source in chunks (`chunkBytes`) unless it fits `inMemoryLimitBytes`.
    /// Checks class count and feature shape; use `checkCompatible` first to compare class names.
    public func evaluate(
        _ source: FeatureSource, batchSize: Int = 100, inMemoryLimitBytes: Int = 2 << 30, chunkBytes: Int = 256 << 20,
        threads: Int = ProcessInfo.processInfo.activeProcessorCount
    ) throws -> Evaluation {
        guard batchSize > 0 else {
            throw TopModelError.invalidArgument("batch size must be at least 1, got \(batchSize)")
        }
        guard source.featureShape == featureShape else {
            throw TopModelError.mismatch(
                "\(source.sourceDescription): feature shape \(source.featureShape), but the model was trained on \(featureShape)"
            )
        }
        guard source.count > 0 else {
            throw TopModelError.badFeatures("\(source.sourceDescription): no rows to evaluate on (the split is empty)")
        }
        let feeder = try RowFeeder(
            source: source, classes: classNames.count, inMemoryLimitBytes: inMemoryLimitBytes, chunkBytes: chunkBytes,
            minimumChunkRows: batchSize)
        let network = Network(weights: weights, maxBatch: batchSize, threads: threads)
        let pass = try BLASThreads.withFixedCount(1) {
            try evaluationPass(network: network, feeder: feeder, batchSize: batchSize)
        }
        return Evaluation(
            source: source.sourceDescription, classNames: classNames, confusionMatrix: pass.confusion,
            lossSum: pass.lossSum)
    }
}

/// Loss sum and confusion matrix of a sequential inference pass.
func evaluationPass(network: Network, feeder: RowFeeder, batchSize: Int) throws -> (lossSum: Double, confusion: [[Int]])
{
    let c = network.classes
    var confusion = [[Int]](repeating: [Int](repeating: 0, count: c), count: c)
    var lossSum = 0.0
    try feeder.pass(batchSize: batchSize, shuffle: nil) { x, labels, rows in
        let result = network.evaluate(x, labels: labels, batch: rows)
        lossSum += result.lossSum
        let p = network.probabilities.baseAddress!
        for r in 0..<rows {
            confusion[Int(labels[r])][SoftmaxCrossEntropy.argmax(p + r * c, count: c)] += 1
        }
    }
    return (lossSum, confusion)
}
