import Augmentation
import FineTuning
import Foundation
import ImageInput
import Testing
import TopModel
import VGG16

/// The fixed chunks every batch is cut into, and their ordered sum.
@Suite("Chunk gradients")
struct ChunkGradientsTests {
    @Test("a batch is cut into consecutive chunks of the chunk size, the last one shorter, numbered in order")
    func splitsInOrder() {
        let chunks = TrainingChunk.split([5, 3, 8, 1, 9], size: 2)
        #expect(chunks.map(\.position) == [0, 1, 2])
        #expect(chunks.map(\.rows) == [[5, 3], [8, 1], [9]])
        #expect(TrainingChunk.split([4, 2], size: 8).map(\.rows) == [[4, 2]])
    }

    @Test("the reduction tree's nodes partition the chunks, and sums of any cut of it assemble to the same bytes")
    func reductionTreeCuts() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func value() -> Float {
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            return Float(Int64(bitPattern: state >> 11) % 2001 - 1000) / 997
        }
        for n in 1...9 {
            let counts = (0..<n).map { 1 + $0 % 3 }
            let parts = (0..<n).map { _ in
                TrainableBlock.Gradient(
                    loss: value(), correct: 1, tensors: [(0..<5).map { _ in value() }, (0..<3).map { _ in value() }])
            }
            let root = ChunkGradients.combine(parts, counts: counts)
            let total = counts.reduce(0, +)
            for cut in 1...(n + 1) {
                let nodes = ReductionTree.nodes(chunks: n, parts: cut)
                #expect(nodes.flatMap { Array($0) } == Array(0..<n), "n \(n), cut \(cut)")
                #expect(nodes.count == min(cut, n) || nodes.count >= cut)
                // Each node summed on its own (as a worker does), then the root assembled along the tree.
                var sums: [Range<Int>: TrainableBlock.Gradient] = [:]
                for node in nodes {
                    sums[node] = ReductionTree.reduce(0..<node.count) {
                        ChunkGradients.weighted(
                            parts[node.lowerBound + $0], count: counts[node.lowerBound + $0], total: total)
                    }
                }
                func assemble(_ node: Range<Int>) -> TrainableBlock.Gradient {
                    if let sum = sums[node] { return sum }
                    let (left, right) = ReductionTree.children(node)!
                    return ReductionTree.add(assemble(left), assemble(right))
                }
                let assembled = assemble(0..<n)
                #expect(assembled.tensors == root.tensors && assembled.loss == root.loss, "n \(n), cut \(cut)")
                #expect(assembled.correct == n)
            }
        }
    }

    @Test("chunk gradients summed along the tree equal the whole batch's gradient within float rounding")
    func chunkedSumMatchesWholeBatch() throws {
        let (images, top, weights) = try FineTunerTests.fixture()
        let computer = try ChunkGradients(
            weights: weights, height: images.height, width: images.width, preprocessing: .caffe,
            augmentation: .none, seed: 0, dropoutRate: 0)
        let base = computer.base
        let block = try TrainableBlock(
            convLayers: Array(weights.layers.suffix(3)), top: top.weights, inputHeight: base.outputHeight,
            inputWidth: base.outputWidth, inputChannels: base.outputChannels)
        let rows = Array(0..<images.count)
        let size = computer.pixelCount
        var features = [Float](repeating: 0, count: rows.count * base.featureCount)
        images.pixels.withUnsafeBufferPointer { pixels in
            features.withUnsafeMutableBufferPointer { out in
                for row in rows {
                    computer.frozenFeatures(
                        pixels: UnsafeBufferPointer(rebasing: pixels[(row * size)..<((row + 1) * size)]), index: row,
                        epoch: nil, into: out.baseAddress! + row * base.featureCount)
                }
            }
        }
        let whole = computer.gradient(
            block: block, features: features, labels: images.labels, indices: rows, epoch: 0)
        for chunkSize in [1, 3, images.count] {
            let chunks = TrainingChunk.split(rows, size: chunkSize)
            let parts = chunks.map { chunk in
                computer.gradient(
                    block: block,
                    features: chunk.rows.flatMap {
                        features[($0 * base.featureCount)..<(($0 + 1) * base.featureCount)]
                    }, labels: chunk.rows.map { images.labels[$0] }, indices: chunk.rows, epoch: 0)
            }
            let combined = ChunkGradients.combine(parts, counts: chunks.map(\.rows.count))
            #expect(combined.correct == whole.correct)
            #expect(abs(combined.loss - whole.loss) <= 1e-6 * max(1, abs(whole.loss)))
            for (a, b) in zip(combined.tensors, whole.tensors) {
                let scale = b.map { abs($0) }.max() ?? 1
                let difference = zip(a, b).map { abs($0 - $1) }.max() ?? 0
                #expect(difference <= 1e-5 * max(scale, 1e-12), "chunk size \(chunkSize)")
            }
            if chunkSize == images.count {
                #expect(combined.tensors == whole.tensors, "one chunk: the batch's own bytes")
            }
        }
    }

    @Test(
        "training from block5_conv2 or block5_conv3: the later layers' gradients are the full block's, the frozen ones stay"
    )
    func laterTrainableLayers() throws {
        let (images, top, weights) = try FineTunerTests.fixture()
        let computer = try ChunkGradients(
            weights: weights, height: images.height, width: images.width, preprocessing: .caffe,
            augmentation: .none, seed: 0, dropoutRate: 0)
        let base = computer.base
        let rows = Array(0..<images.count)
        let size = computer.pixelCount
        var features = [Float](repeating: 0, count: rows.count * base.featureCount)
        images.pixels.withUnsafeBufferPointer { pixels in
            features.withUnsafeMutableBufferPointer { out in
                for row in rows {
                    computer.frozenFeatures(
                        pixels: UnsafeBufferPointer(rebasing: pixels[(row * size)..<((row + 1) * size)]), index: row,
                        epoch: nil, into: out.baseAddress! + row * base.featureCount)
                }
            }
        }
        func block(frozen: Int) throws -> TrainableBlock {
            try TrainableBlock(
                convLayers: Array(weights.layers.suffix(3)), top: top.weights, inputHeight: base.outputHeight,
                inputWidth: base.outputWidth, inputChannels: base.outputChannels, frozenLayers: frozen)
        }
        let full = computer.gradient(
            block: try block(frozen: 0), features: features, labels: images.labels, indices: rows, epoch: 0)
        for frozen in 1...2 {
            let part = computer.gradient(
                block: try block(frozen: frozen), features: features, labels: images.labels, indices: rows, epoch: 0)
            #expect(part.loss == full.loss)
            #expect(part.tensors == Array(full.tensors.dropFirst(2 * frozen)), "\(frozen) frozen")
            #expect(try block(frozen: frozen).tensors.count == 2 * (3 - frozen) + 4)
        }
        #expect(throws: FineTuningError.self) { try block(frozen: 3) }
        var options = FineTunerTests.kerasSteps
        options.frozenBlockLayers = 1
        let tuner = try FineTuner(weights: weights, topModel: top, options: options)
        let (model, _) = try tuner.run(train: images, validation: nil, checkpointPath: nil)
        let original = weights.layers.suffix(3).map(\.kernel)
        let trained = model.convLayers.suffix(3).map(\.kernel)
        #expect(trained[0] == original[0], "block5_conv1 stays frozen")
        #expect(trained[1] != original[1] && trained[2] != original[2], "block5_conv2 and block5_conv3 train")
    }
}
