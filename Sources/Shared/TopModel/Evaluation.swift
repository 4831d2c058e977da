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
        let nameWidth = max(10, classNames.map(\.count).max() ?? 0)
        func pad(_ s: String, _ w: Int, left: Bool = false) -> String {
            s.count >= w ? s : (left ? s + String(repeating: " ", count: w - s.count) : String(repeating: " ", count: w - s.count) + s)
        }
        func f(_ x: Double) -> String { String(format: "%.4f", x) }
        var lines = ["\(source): \(count) rows, accuracy \(f(accuracy)), loss \(f(loss))", ""]
        lines.append(pad("class", nameWidth, left: true) + pad("precision", 11) + pad("recall", 9) + pad("f1", 9) + pad("support", 9))
        for name in classNames {
            let m = perClass[name]!
            lines.append(pad(name, nameWidth, left: true) + pad(f(m.precision), 11) + pad(f(m.recall), 9) + pad(f(m.f1), 9)
                + pad("\(m.support)", 9))
        }
        lines.append(pad("macro avg", nameWidth, left: true) + pad("", 11) + pad("", 9) + pad(f(macroF1), 9) + pad("\(count)", 9))
        lines.append("")
        lines.append("confusion matrix (rows = true class, columns = predicted):")
        let cellWidth = max(6, (confusionMatrix.flatMap { $0 }.map { "\($0)".count }.max() ?? 0) + 2)
        let header = pad("", nameWidth, left: true) + classNames.indices.map { pad("[\($0)]", cellWidth) }.joined()
        lines.append(header)
        for (k, name) in classNames.enumerated() {
            lines.append(pad("[\(k)] " + name, nameWidth + 0, left: true) + confusionMatrix[k].map { pad("\($0)", cellWidth) }.joined())
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

extension TopModel {
    /// Evaluates on a labelled source (dropout off): mean cross-entropy, accuracy, per-class metrics and
    /// the confusion matrix. Reads the source in chunks (`chunkBytes`) unless it fits `inMemoryLimitBytes`.
    /// Checks class count and feature shape; use `checkCompatible` first to compare class names.
    public func evaluate(
        _ source: FeatureSource, batchSize: Int = 100, inMemoryLimitBytes: Int = 2 << 30, chunkBytes: Int = 256 << 20
    ) throws -> Evaluation {
        guard batchSize > 0 else { throw TopModelError.invalidArgument("batch size must be at least 1, got \(batchSize)") }
        guard source.featureShape == featureShape else {
            throw TopModelError.mismatch(
                "\(source.sourceDescription): feature shape \(source.featureShape), but the model was trained on \(featureShape)")
        }
        let feeder = try RowFeeder(
            source: source, classes: classNames.count, inMemoryLimitBytes: inMemoryLimitBytes, chunkBytes: chunkBytes,
            minimumChunkRows: batchSize)
        let network = Network(weights: weights, maxBatch: batchSize)
        let pass = try evaluationPass(network: network, feeder: feeder, batchSize: batchSize)
        return Evaluation(
            source: source.sourceDescription, classNames: classNames, confusionMatrix: pass.confusion, lossSum: pass.lossSum)
    }
}

/// Loss sum and confusion matrix of a sequential inference pass.
func evaluationPass(network: Network, feeder: RowFeeder, batchSize: Int) throws -> (lossSum: Double, confusion: [[Int]]) {
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
