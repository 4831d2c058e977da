import Foundation

@testable import TopModel

/// Deterministic test data: a generator, Gaussian blobs, temp directories.
struct TestRandom {
    var random: SeededRandom
    init(_ seed: UInt64) { random = SeededRandom(seed: seed, stream: 99) }
    mutating func uniform(_ lo: Float, _ hi: Float) -> Float { lo + (hi - lo) * random.unitFloat() }
    mutating func normal() -> Float {
        let u1 = max(random.unitFloat(), 1e-7)
        let u2 = random.unitFloat()
        return (-2 * logf(u1)).squareRoot() * cosf(2 * .pi * u2)
    }
    mutating func array(_ n: Int, _ lo: Float = -1, _ hi: Float = 1) -> [Float] { (0..<n).map { _ in uniform(lo, hi) } }
}

/// `classes` Gaussian blobs in `featureShape` space: each class has a random centre (unit normal entries), rows
/// are centre + `noise`·normal. Rows are interleaved by class (row r has label r % classes).
func blobs(
    rows: Int, classes: Int, featureShape: [Int], noise: Float, seed: UInt64, centreSeed: UInt64 = 7,
    description: String = "blobs"
) throws -> InMemoryFeatures {
    let d = featureShape.reduce(1, *)
    var centres = TestRandom(centreSeed)
    let centre = (0..<classes).map { _ in (0..<d).map { _ in centres.normal() } }
    var r = TestRandom(seed)
    var features: [Float] = []
    features.reserveCapacity(rows * d)
    var labels: [Int32] = []
    for i in 0..<rows {
        let k = i % classes
        labels.append(Int32(k))
        for j in 0..<d { features.append(centre[k][j] + noise * r.normal()) }
    }
    return try InMemoryFeatures(
        features: features, featureShape: featureShape, labels: labels, description: description)
}

let testProvenance = FeatureProvenance(
    featureLayer: "block5_pool", imageHeight: 150, imageWidth: 150, preprocess: "caffe", interpolation: "nearest",
    weightsSHA256: String(repeating: "ab", count: 32))
