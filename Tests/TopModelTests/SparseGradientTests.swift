import BLAS
import Testing

@testable import TopModel

/// The hidden kernel's gradient computed from the non-zero entries of the hidden layer's gradient only, against
/// the dense sums: the same bits as the dense sum in the same order (rows ascending, one fused multiply-add each),
/// and OpenBLAS' dense product within rounding.
@Suite("sparse kernel gradient")
struct SparseGradientTests {
    /// x `[batch, inputs]` non-negative with a third exact zeros (pooled ReLU features) and dH `[batch, hidden]`
    /// with about three quarters zeros (ReLU and dropout), signed; rows listed in `zeroRowsOfX` and
    /// `zeroRowsOfDH` all zero, and hidden unit 1's column of dH all zero.
    struct Case {
        let batch: Int, inputs: Int, hidden: Int
        var x: [Float], dH: [Float]

        init(batch: Int, inputs: Int, hidden: Int, zeroRowsOfX: [Int] = [], zeroRowsOfDH: [Int] = [], seed: UInt64) {
            self.batch = batch
            self.inputs = inputs
            self.hidden = hidden
            var random = TestRandom(seed)
            x = (0..<batch * inputs).map { _ in
                let u = random.uniform(0, 1)
                return u < 0.33 ? 0 : 2 * u
            }
            dH = (0..<batch * hidden).map { _ in random.uniform(0, 1) < 0.75 ? 0 : random.uniform(-1, 1) }
            for r in zeroRowsOfX { for i in 0..<inputs { x[r * inputs + i] = 0 } }
            for r in zeroRowsOfDH { for j in 0..<hidden { dH[r * hidden + j] = 0 } }
            if hidden > 1 { for r in 0..<batch { dH[r * hidden + 1] = 0 } }
        }

        /// `alpha · Σ_b dH[b, j] · x[b, i] + beta · out`, every term (zeros too) in order of b, transposed layout.
        func dense(alpha: Float, beta: Float, out: [Float]) -> [Float] {
            var result = out
            for j in 0..<hidden {
                for i in 0..<inputs {
                    var sum: Float = 0
                    for b in 0..<batch { sum = sum.addingProduct(dH[b * hidden + j], x[b * inputs + i]) }
                    result[j * inputs + i] = beta == 1 ? out[j * inputs + i].addingProduct(alpha, sum) : alpha * sum
                }
            }
            return result
        }

        /// The sparse product over all hidden units, in `parts` ranges of output rows.
        func sparse(alpha: Float, beta: Float, out: [Float], portable: Bool, parts: Int = 1) -> (
            result: [Float], nonZero: Int
        ) {
            let offsets = UnsafeMutableBufferPointer<Int32>.allocate(capacity: hidden + 1)
            let rows = UnsafeMutableBufferPointer<Int32>.allocate(capacity: batch * hidden)
            let values = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * hidden)
            defer {
                offsets.deallocate()
                rows.deallocate()
                values.deallocate()
            }
            let gradient = SparseGradient(offsets: offsets, rows: rows, values: values)
            let nonZero = gradient.compress(dH, batch: batch, hidden: hidden)
            var result = out
            x.withUnsafeBufferPointer { x in
                result.withUnsafeMutableBufferPointer { result in
                    for part in 0..<parts {
                        gradient.product(
                            inputs: inputs, outputRows: (hidden * part / parts)..<(hidden * (part + 1) / parts),
                            x: x.baseAddress!, alpha: alpha, beta: beta, out: result.baseAddress!, portable: portable)
                    }
                }
            }
            return (result, nonZero)
        }
    }

    static let shapes: [(batch: Int, inputs: Int, hidden: Int)] = [
        (100, 8192, 256), (7, 37, 5), (1, 64, 3), (3, 17, 1),
    ]

    @Test(
        "the sparse product gives the dense sum's bits in the same order, on both paths, overwriting or fused",
        arguments: shapes.indices)
    func sameBitsAsDenseInOrder(shape: Int) {
        let (batch, inputs, hidden) = Self.shapes[shape]
        let data = Case(
            batch: batch, inputs: inputs, hidden: hidden, zeroRowsOfX: batch > 2 ? [1] : [],
            zeroRowsOfDH: batch > 2 ? [2] : [], seed: UInt64(shape) + 1)
        var random = TestRandom(9)
        let previous = random.array(hidden * inputs)
        for (alpha, beta) in [(Float(1), Float(0)), (Float(-0.01), Float(1))] {
            let dense = data.dense(alpha: alpha, beta: beta, out: previous)
            for portable in [false, true] {
                let sparse = data.sparse(alpha: alpha, beta: beta, out: previous, portable: portable, parts: 3)
                #expect(sparse.result == dense, "alpha \(alpha), beta \(beta), portable \(portable)")
                #expect(sparse.nonZero == data.dH.filter { $0 != 0 }.count)
            }
        }
    }

    @Test("an all-zero gradient gives a zero gradient and leaves a fused kernel bit for bit as it was")
    func allZeroBatch() {
        var data = Case(batch: 10, inputs: 100, hidden: 8, seed: 3)
        data.dH = [Float](repeating: 0, count: data.dH.count)
        var random = TestRandom(4)
        let previous = random.array(8 * 100)
        for portable in [false, true] {
            let overwritten = data.sparse(alpha: 1, beta: 0, out: previous, portable: portable)
            #expect(overwritten.nonZero == 0)
            #expect(overwritten.result.allSatisfy { $0 == 0 })
            let fused = data.sparse(alpha: -0.01, beta: 1, out: previous, portable: portable)
            #expect(fused.result.map(\.bitPattern) == previous.map(\.bitPattern))
        }
    }

    @Test("the sparse product equals OpenBLAS' dense product xᵀ·dH within rounding")
    func matchesDenseGEMM() {
        let data = Case(batch: 100, inputs: 8192, hidden: 256, zeroRowsOfX: [5], zeroRowsOfDH: [7, 8], seed: 5)
        var blas = [Float](repeating: 0, count: data.inputs * data.hidden)  // [inputs, hidden]
        data.x.withUnsafeBufferPointer { x in
            data.dH.withUnsafeBufferPointer { dH in
                blas.withUnsafeMutableBufferPointer { c in
                    sgemm(
                        transposeA: true, m: data.inputs, n: data.hidden, k: data.batch, x.baseAddress!,
                        dH.baseAddress!, c.baseAddress!)
                }
            }
        }
        let sparse = data.sparse(
            alpha: 1, beta: 0, out: [Float](repeating: 0, count: data.inputs * data.hidden), portable: false, parts: 4
        ).result
        var worst: Float = 0
        for j in 0..<data.hidden {
            // Bound: the sum of the terms' magnitudes, times a few ulps per term.
            var magnitudes = [Float](repeating: 0, count: data.inputs)
            for b in 0..<data.batch where data.dH[b * data.hidden + j] != 0 {
                for i in 0..<data.inputs {
                    magnitudes[i] += abs(data.dH[b * data.hidden + j] * data.x[b * data.inputs + i])
                }
            }
            for i in 0..<data.inputs {
                let difference = abs(sparse[j * data.inputs + i] - blas[i * data.hidden + j])
                worst = max(worst, difference / max(magnitudes[i], .leastNormalMagnitude))
            }
        }
        #expect(worst <= 1e-5, "largest difference relative to the sum of the terms' magnitudes: \(worst)")
    }

    @Test(
        "training with the sparse kernel gradient gives the dense product's weights within rounding",
        arguments: ["sgd", "adam"])
    func trainingMatchesDense(optimizer: String) throws {
        // Pooled-ReLU-like features: the blobs' negative values clipped to exact zeros, and one all-zero row.
        let blobs = try blobs(rows: 120, classes: 3, featureShape: [2, 2, 16], noise: 1.0, seed: 11)
        var features = try blobs.readFeatures(rows: 0..<blobs.count).map { max(0, $0) }
        for i in 0..<blobs.featureSize { features[5 * blobs.featureSize + i] = 0 }
        let train = try InMemoryFeatures(
            features: features, featureShape: blobs.featureShape, labels: try blobs.labels())
        func weights(sparse: Bool) throws -> TopModelWeights {
            var options = TrainingOptions()
            options.epochs = 3
            options.batchSize = 20
            options.hiddenUnits = 32
            options.optimizer = try .named(optimizer)
            options.threads = 2
            options.skipsZeroGradients = sparse
            return try TopModelTrainer.train(
                train: train, validation: nil, classNames: ["a", "b", "c"], provenance: testProvenance,
                options: options
            ).model.weights
        }
        let sparse = try weights(sparse: true)
        let dense = try weights(sparse: false)
        for (a, b) in zip(sparse.tensors, dense.tensors) {
            let scale = max(b.map { abs($0) }.max() ?? 0, 1e-6)
            let worst = zip(a, b).map { abs($0 - $1) }.max() ?? 0
            #expect(worst <= 1e-4 * scale, "largest difference \(worst), largest weight \(scale)")
        }
    }
}
