/// Rows of flattened feature vectors with their labels: a split of a feature file, or arrays in memory.
///
/// Features are row-major `[rows, featureSize]`, each row a feature map flattened in channels_last order
/// (`h, w, c`: Keras' Flatten order). Used from one thread at a time.
public protocol FeatureSource: AnyObject {
    /// What to call this source in messages, e.g. `features.h5: split 'train'`.
    var sourceDescription: String { get }
    /// Number of rows.
    var count: Int { get }
    /// Shape of one feature map before flattening, `[h, w, c]`.
    var featureShape: [Int] { get }
    /// One class index per row; throws when the source has no labels.
    func labels() throws -> [Int32]
    /// Rows `rows` of the features, row-major `[rows.count, featureSize]`.
    func readFeatures(rows: Range<Int>) throws -> [Float]
}

extension FeatureSource {
    /// Values per row: the product of `featureShape`.
    public var featureSize: Int { featureShape.reduce(1, *) }
}

/// Features and labels held in memory.
public final class InMemoryFeatures: FeatureSource {
    public let sourceDescription: String
    public let count: Int
    public let featureShape: [Int]
    /// Row-major `[count, featureSize]`.
    public let features: [Float]
    private let labelValues: [Int32]?

    /// - Parameters:
    ///   - features: row-major `[count, product(featureShape)]`.
    ///   - labels: one class index per row, or nil for unlabelled data (training and evaluation refuse it).
    public init(features: [Float], featureShape: [Int], labels: [Int32]?, description: String = "in-memory features")
        throws
    {
        let size = featureShape.reduce(1, *)
        guard !featureShape.isEmpty, featureShape.allSatisfy({ $0 > 0 }), features.count % size == 0 else {
            throw TopModelError.badFeatures(
                "\(description): \(features.count) values do not make rows of shape \(featureShape)")
        }
        let rows = features.count / size
        if let labels, labels.count != rows {
            throw TopModelError.badFeatures("\(description): \(labels.count) labels for \(rows) feature rows")
        }
        self.features = features
        self.featureShape = featureShape
        self.count = rows
        self.labelValues = labels
        self.sourceDescription = description
    }

    public func labels() throws -> [Int32] {
        guard let labelValues else { throw TopModelError.badFeatures("\(sourceDescription): no labels") }
        return labelValues
    }

    public func readFeatures(rows: Range<Int>) throws -> [Float] {
        precondition(rows.lowerBound >= 0 && rows.upperBound <= count)
        let size = featureSize
        return Array(features[(rows.lowerBound * size)..<(rows.upperBound * size)])
    }
}

/// Checks that every value is finite; the error names the source and the row.
func checkFinite(_ values: [Float], firstRow: Int, featureSize: Int, source: FeatureSource) throws {
    try values.withUnsafeBufferPointer { buffer in
        guard !buffer.isEmpty else { return }
        // v·0 is NaN exactly for NaN and ±inf; 16 lanes at a time, then the tail. Find the row only on failure.
        var lanes = SIMD16<Float>(repeating: 0)
        let whole = buffer.count / 16 * 16
        let raw = UnsafeRawPointer(buffer.baseAddress!)
        for i in stride(from: 0, to: whole, by: 16) {
            lanes += raw.loadUnaligned(fromByteOffset: i * 4, as: SIMD16<Float>.self) * 0
        }
        var accumulator = lanes.sum()
        for i in whole..<buffer.count { accumulator += buffer[i] * 0 }
        guard accumulator.isNaN else { return }
        let index = buffer.firstIndex { !$0.isFinite } ?? 0
        let row = firstRow + index / featureSize
        throw TopModelError.badFeatures(
            "\(source.sourceDescription): row \(row) has a non-finite feature value (\(buffer[index]) at index "
                + "\(index % featureSize)); expected finite numbers")
    }
}

/// Checks labels are class indices in `0..<classes`; names the source and row.
func checkLabels(_ labels: [Int32], classes: Int, source: FeatureSource) throws {
    if let row = labels.firstIndex(where: { $0 < 0 || Int($0) >= classes }) {
        throw TopModelError.badFeatures(
            "\(source.sourceDescription): row \(row) has label \(labels[row]), expected 0..<\(classes)")
    }
}
