import BLAS
import FineTuning
import Foundation
import Testing
import TopModel
import VGG16

/// A small deterministic generator for test data (SplitMix64).
struct TestNumbers {
    var state: UInt64
    init(_ seed: UInt64) { state = seed }
    mutating func next() -> Float {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        z ^= z >> 31
        return Float(Double(z >> 11) * 0x1p-53) * 2 - 1
    }
    mutating func array(_ n: Int, scale: Float = 1) -> [Float] { (0..<n).map { _ in next() * scale } }
}

/// Central differences in double precision of a scalar function of one tensor, at a few entries.
func numericalGradient(
    _ f: ([Float]) -> Double, at x: [Float], entries: [Int], step: Float = 1e-2
) -> [Double] {
    entries.map { i in
        var plus = x
        var minus = x
        plus[i] += step
        minus[i] -= step
        return (f(plus) - f(minus)) / Double(2 * step)
    }
}

func relativeError(_ a: Double, _ b: Double, floor: Double) -> Double { abs(a - b) / max(abs(a), abs(b), floor) }

/// Finite-difference checks of each new layer's gradient, in float32 against a double-precision
/// objective `L = Σ output · weights` (so `dL/doutput = weights`).
@Suite("Fine-tuning layers against finite differences")
struct FiniteDifferenceTests {
    let batch = 2
    let height = 5
    let width = 4
    let inChannels = 3
    let outChannels = 4

    func convObjective(x: [Float], kernel: [Float], bias: [Float], probe: [Float]) -> Double {
        let pixels = batch * height * width
        var columns = [Float](repeating: 0, count: pixels * 9 * inChannels)
        Conv3x3.im2col(x, batch: batch, height: height, width: width, channels: inChannels, into: &columns)
        var z = [Float](repeating: 0, count: pixels * outChannels)
        Conv3x3.forward(
            columns: columns, pixels: pixels, inChannels: inChannels, outChannels: outChannels, kernel: kernel,
            bias: bias, z: &z)
        return zip(z, probe).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
    }

    @Test("3×3 'same' convolution: input, kernel and bias gradients match central differences")
    func convolution() {
        var numbers = TestNumbers(1)
        let pixels = batch * height * width
        let x = numbers.array(pixels * inChannels)
        let kernel = numbers.array(9 * inChannels * outChannels, scale: 0.5)
        let bias = numbers.array(outChannels, scale: 0.1)
        let probe = numbers.array(pixels * outChannels)
        var columns = [Float](repeating: 0, count: pixels * 9 * inChannels)
        Conv3x3.im2col(x, batch: batch, height: height, width: width, channels: inChannels, into: &columns)
        var dKernel = [Float](repeating: 0, count: kernel.count)
        var dBias = [Float](repeating: 0, count: outChannels)
        var dColumns = [Float](repeating: 0, count: columns.count)
        Conv3x3.backward(
            columns: columns, dz: probe, pixels: pixels, inChannels: inChannels, outChannels: outChannels,
            kernel: kernel, dKernel: &dKernel, dBias: &dBias, dColumns: &dColumns)
        var dx = [Float](repeating: 0, count: x.count)
        Conv3x3.col2im(dColumns, batch: batch, height: height, width: width, channels: inChannels, into: &dx)

        let xEntries = Array(stride(from: 0, to: x.count, by: 7))
        let numericX = numericalGradient(
            { convObjective(x: $0, kernel: kernel, bias: bias, probe: probe) }, at: x, entries: xEntries)
        for (i, n) in zip(xEntries, numericX) {
            #expect(relativeError(Double(dx[i]), n, floor: 1e-2) < 1e-3, "x[\(i)]")
        }
        let kEntries = Array(stride(from: 0, to: kernel.count, by: 5))
        let numericK = numericalGradient(
            { convObjective(x: x, kernel: $0, bias: bias, probe: probe) }, at: kernel, entries: kEntries)
        for (i, n) in zip(kEntries, numericK) {
            #expect(relativeError(Double(dKernel[i]), n, floor: 1e-2) < 1e-3, "kernel[\(i)]")
        }
        let numericB = numericalGradient(
            { convObjective(x: x, kernel: kernel, bias: $0, probe: probe) }, at: bias, entries: Array(0..<outChannels))
        for i in 0..<outChannels { #expect(relativeError(Double(dBias[i]), numericB[i], floor: 1e-2) < 1e-3) }
    }

    @Test("ReLU and 2×2 max pooling (odd sizes: the last row and column are dropped) match central differences")
    func reluAndPooling() {
        var numbers = TestNumbers(2)
        let (h, w, c) = (5, 7, 3)
        // Distinct values at least 0.05 apart, so a ±0.01 step never changes a window's maximum or a sign.
        var x = (0..<(batch * h * w * c)).map { Float($0) * 0.05 - 3 }
        for i in stride(from: x.count - 1, to: 0, by: -1) {
            let j = Int((numbers.next() + 1) / 2 * Float(i + 1)) % (i + 1)
            x.swapAt(i, j)
        }
        let (oh, ow) = (h / 2, w / 2)
        let probe = numbers.array(batch * oh * ow * c)
        func objective(_ x: [Float]) -> Double {
            var a = x
            ReLU.forward(&a, count: a.count)
            var y = [Float](repeating: 0, count: probe.count)
            MaxPool2x2.forward(a, batch: batch, height: h, width: w, channels: c, into: &y)
            return zip(y, probe).reduce(0.0) { $0 + Double($1.0) * Double($1.1) }
        }
        var a = x
        ReLU.forward(&a, count: a.count)
        var dA = [Float](repeating: 0, count: x.count)
        MaxPool2x2.backward(a, dy: probe, batch: batch, height: h, width: w, channels: c, into: &dA)
        ReLU.backward(output: a, gradient: &dA, count: dA.count)
        let entries = Array(0..<x.count)
        let numeric = numericalGradient(objective, at: x, entries: entries)
        for i in entries { #expect(abs(Double(dA[i]) - numeric[i]) < 1e-4, "x[\(i)]") }
        #expect(dA.contains { $0 != 0 })
    }

    @Test("max pooling sends a tie's gradient to the first maximum in row-major order")
    func poolingTies() {
        let x: [Float] = [1, 1, 1, 1]
        var dx = [Float](repeating: 0, count: 4)
        MaxPool2x2.backward(x, dy: [2], batch: 1, height: 2, width: 2, channels: 1, into: &dx)
        #expect(dx == [2, 0, 0, 0])
    }

    @Test("the trainable block's gradients (convs, top, and input) match central differences of its loss")
    func wholeBlock() throws {
        var numbers = TestNumbers(3)
        let (h, w, c, classes, hidden, rows) = (4, 4, 3, 3, 6, 3)
        var layers: [ConvLayerWeights] = []
        var channels = c
        for (i, out) in [4, 4].enumerated() {
            layers.append(
                ConvLayerWeights(
                    name: "block5_conv\(i + 1)", inChannels: channels, outChannels: out,
                    kernel: numbers.array(9 * channels * out, scale: 0.6), bias: numbers.array(out, scale: 0.2)))
            channels = out
        }
        let inputs = (h / 2) * (w / 2) * channels
        let top = try TopModelWeights(
            inputs: inputs, hidden: hidden, classes: classes, hiddenKernel: numbers.array(inputs * hidden),
            hiddenBias: numbers.array(hidden, scale: 0.2), outputKernel: numbers.array(hidden * classes),
            outputBias: numbers.array(classes, scale: 0.1))
        let block = try TrainableBlock(convLayers: layers, top: top, inputHeight: h, inputWidth: w, inputChannels: c)
        let x = numbers.array(rows * h * w * c, scale: 2)
        let labels: [Int32] = [0, 2, 1]
        let gradient = block.batchGradient(input: x, labels: labels, batch: rows, inputGradient: true)
        func loss(_ block: TrainableBlock, _ x: [Float]) -> Double {
            Double(block.batchGradient(input: x, labels: labels, batch: rows).loss)
        }
        // The loss is a float32: a central difference cannot resolve less than one unit in its last place.
        let resolution = Double(gradient.loss.ulp) / 1e-3
        func close(_ analytic: Float, _ numeric: Double) -> Bool {
            abs(Double(analytic) - numeric) <= 2e-2 * max(abs(Double(analytic)), abs(numeric)) + resolution
        }
        let tensors = block.tensors
        var checked = 0
        for t in tensors.indices {
            let entries = Array(stride(from: 0, to: tensors[t].count, by: max(1, tensors[t].count / 6)))
            let numeric = numericalGradient(
                { values in
                    var changed = block
                    var all = tensors
                    all[t] = values
                    changed.tensors = all
                    return loss(changed, x)
                }, at: tensors[t], entries: entries, step: 1e-3)
            for (i, n) in zip(entries, numeric) {
                #expect(close(gradient.tensors[t][i], n), "tensor \(t)[\(i)]: \(gradient.tensors[t][i]) vs \(n)")
                checked += 1
            }
        }
        let entries = Array(stride(from: 0, to: x.count, by: 5))
        let numeric = numericalGradient({ loss(block, $0) }, at: x, entries: entries, step: 1e-3)
        for (i, n) in zip(entries, numeric) {
            #expect(close(gradient.input[i], n), "input[\(i)]: \(gradient.input[i]) vs \(n)")
        }
        #expect(checked > 30)
    }
}
