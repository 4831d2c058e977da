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

    @Test("chunk gradients summed in chunk order equal the whole batch's gradient within float rounding")
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
