import Foundation
import Testing

@testable import TopModel

/// Finite-difference checks of every layer's backward pass and of the whole network's loss gradient.
@Suite("gradients")
struct GradientTests {
    /// Central difference of `f` at `x[i]`.
    func numeric(_ x: inout [Float], _ i: Int, eps: Float, _ f: ([Float]) -> Double) -> Double {
        let saved = x[i]
        x[i] = saved + eps
        let plus = f(x)
        x[i] = saved - eps
        let minus = f(x)
        x[i] = saved
        return (plus - minus) / Double(2 * eps)
    }

    func close(_ a: Double, _ b: Double, tolerance: Double) -> Bool { abs(a - b) <= tolerance * max(1, abs(a), abs(b)) }

    @Test("dense backward gives x·W's gradients for kernel, bias and input")
    func dense() {
        var r = TestRandom(1)
        let batch = 3
        let n = 5
        let m = 4
        var x = r.array(batch * n)
        var w = r.array(n * m)
        var b = r.array(m)
        let upstream = r.array(batch * m)  // L = Σ upstream ⊙ y
        func loss(_ x: [Float], _ w: [Float], _ b: [Float]) -> Double {
            var y = [Float](repeating: 0, count: batch * m)
            DenseLayer.forward(x: x, batch: batch, inputs: n, outputs: m, kernel: w, bias: b, y: &y)
            return zip(y, upstream).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        }
        var dw = [Float](repeating: 0, count: n * m)
        var db = [Float](repeating: 0, count: m)
        var dx = [Float](repeating: 0, count: batch * n)
        DenseLayer.backward(
            x: x, dy: upstream, batch: batch, inputs: n, outputs: m, kernel: w, dKernel: &dw, dBias: &db, dx: &dx)
        for i in w.indices {
            let g = numeric(&w, i, eps: 1e-2) { loss(x, $0, b) }
            #expect(close(g, Double(dw[i]), tolerance: 1e-3), "dW[\(i)]")
        }
        for i in b.indices {
            let g = numeric(&b, i, eps: 1e-2) { loss(x, w, $0) }
            #expect(close(g, Double(db[i]), tolerance: 1e-3), "db[\(i)]")
        }
        for i in x.indices {
            let g = numeric(&x, i, eps: 1e-2) { loss($0, w, b) }
            #expect(close(g, Double(dx[i]), tolerance: 1e-3), "dx[\(i)]")
        }
    }

    @Test("relu backward passes the gradient where the output is positive and blocks it elsewhere")
    func relu() {
        var r = TestRandom(2)
        // Keep inputs away from 0, where relu has no derivative.
        var z = r.array(40).map { $0 >= 0 ? $0 + 0.1 : $0 - 0.1 }
        let upstream = r.array(40)
        func loss(_ z: [Float]) -> Double {
            var a = z
            ReLULayer.forward(&a, count: a.count)
            return zip(a, upstream).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        }
        var a = z
        ReLULayer.forward(&a, count: a.count)
        var d = upstream
        ReLULayer.backward(output: a, gradient: &d, count: d.count)
        for i in z.indices {
            let g = numeric(&z, i, eps: 1e-2, loss)
            #expect(close(g, Double(d[i]), tolerance: 1e-3), "dz[\(i)]")
        }
        #expect(d.contains(0) && d.contains { $0 != 0 })
    }

    @Test(
        "dropout with a fixed mask scales kept units by 1/(1-rate), zeroes dropped ones, and back-propagates the same")
    func dropout() {
        var random = SeededRandom(seed: 5)
        let count = 2000
        var mask = [Float](repeating: 0, count: count)
        DropoutLayer.makeMask(&mask, count: count, rate: 0.5, random: &random)
        #expect(mask.allSatisfy { $0 == 0 || $0 == 2 })
        let kept = mask.filter { $0 != 0 }.count
        #expect(kept > 900 && kept < 1100)
        var r = TestRandom(3)
        var x = r.array(50)
        let upstream = r.array(50)
        let m = Array(mask.prefix(50))
        func loss(_ x: [Float]) -> Double {
            var y = x
            DropoutLayer.apply(&y, mask: m, count: y.count)
            return zip(y, upstream).reduce(0.0) { $0 + Double($1.0 * $1.1) }
        }
        var d = upstream
        DropoutLayer.apply(&d, mask: m, count: d.count)
        for i in x.indices {
            #expect(close(numeric(&x, i, eps: 1e-2, loss), Double(d[i]), tolerance: 1e-3), "dx[\(i)]")
        }
    }

    @Test("softmax cross-entropy: loss is -log p[label]; gradient of the weighted mean loss is w·(p - onehot)/batch")
    func softmaxCrossEntropy() {
        var r = TestRandom(4)
        let batch = 4
        let c = 5
        var z = r.array(batch * c, -3, 3)
        let labels: [Int32] = [0, 3, 4, 1]
        let weights: [Float] = [1, 0.5, 2, 1.5]
        func loss(_ z: [Float]) -> Double {
            var p = [Float](repeating: 0, count: batch * c)
            var l = [Float](repeating: 0, count: batch)
            SoftmaxCrossEntropy.forward(
                logits: z, labels: labels, batch: batch, classes: c, probabilities: &p, losses: &l)
            return (0..<batch).reduce(0.0) { $0 + Double(l[$1] * weights[$1]) } / Double(batch)
        }
        var p = [Float](repeating: 0, count: batch * c)
        var l = [Float](repeating: 0, count: batch)
        SoftmaxCrossEntropy.forward(logits: z, labels: labels, batch: batch, classes: c, probabilities: &p, losses: &l)
        for row in 0..<batch {
            let sum = p[(row * c)..<(row * c + c)].reduce(0, +)
            #expect(abs(sum - 1) < 1e-6)
            #expect(abs(Double(l[row]) + log(Double(p[row * c + Int(labels[row])]))) < 1e-5)
        }
        var dz = [Float](repeating: 0, count: batch * c)
        SoftmaxCrossEntropy.backward(
            probabilities: p, labels: labels, weights: weights, batch: batch, classes: c, dLogits: &dz)
        for i in z.indices {
            #expect(close(numeric(&z, i, eps: 1e-2, loss), Double(dz[i]), tolerance: 2e-3), "dz[\(i)]")
        }
    }

    @Test("softmax cross-entropy stays finite for large logits")
    func softmaxLargeLogits() {
        let z: [Float] = [1000, -1000, 0]
        var p = [Float](repeating: 0, count: 3)
        var l: [Float] = [0]
        SoftmaxCrossEntropy.forward(logits: z, labels: [1], batch: 1, classes: 3, probabilities: &p, losses: &l)
        #expect(l[0] == 2000)
        #expect(p[0] == 1 && p[1] == 0)
    }

    @Test(
        "a network step's weight change with SGD lr=1 matches the finite-difference gradient of the batch loss, dropout mask fixed"
    )
    func wholeNetwork() throws {
        var r = TestRandom(6)
        let batch = 6
        let n = 12
        let h = 8
        let c = 3
        let x = r.array(batch * n)
        let labels: [Int32] = [0, 1, 2, 2, 1, 0]
        let sampleWeights: [Float] = [1, 2, 0.5, 1, 1, 3]
        let start = try TopModelWeights(
            inputs: n, hidden: h, classes: c, hiddenKernel: r.array(n * h), hiddenBias: r.array(h, -0.1, 0.1),
            outputKernel: r.array(h * c), outputBias: r.array(c, -0.1, 0.1))
        let dropoutSeed = SeededRandom(seed: 11, stream: 3)

        func step(_ w: TopModelWeights, lr: Double) -> (TopModelWeights, Float) {
            let network = Network(weights: w, maxBatch: batch, dropoutRate: 0.5)
            let optimizer = OptimizerState(.sgd(learningRate: lr), tensorSizes: network.tensorSizes)
            var random = dropoutSeed  // the same mask every time
            let result = withUnsafeMutablePointer(to: &random) { rng in
                network.trainStep(
                    x, labels: labels, sampleWeights: sampleWeights, batch: batch, dropout: rng, optimizer: optimizer)
            }
            return (network.weights, result.loss)
        }
        let (after, _) = step(start, lr: 1)
        func check(_ path: WritableKeyPath<TopModelWeights, [Float]>, name: String) {
            var w = start
            let analytic = zip(start[keyPath: path], after[keyPath: path]).map { Double($0 - $1) }
            for i in w[keyPath: path].indices {
                let saved = w[keyPath: path][i]
                w[keyPath: path][i] = saved + 1e-2
                let plus = Double(step(w, lr: 0).1)
                w[keyPath: path][i] = saved - 1e-2
                let minus = Double(step(w, lr: 0).1)
                w[keyPath: path][i] = saved
                let numericGradient = (plus - minus) / 2e-2
                #expect(abs(numericGradient - analytic[i]) <= 2e-3 * max(1, abs(analytic[i])), "\(name)[\(i)]")
            }
        }
        check(\.hiddenKernel, name: "hidden kernel")
        check(\.hiddenBias, name: "hidden bias")
        check(\.outputKernel, name: "output kernel")
        check(\.outputBias, name: "output bias")
    }
}
