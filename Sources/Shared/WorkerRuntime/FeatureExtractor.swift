import Dispatch
import Foundation
import ImageInput
import VGG16

/// Image bytes in, VGG16 features out: decode, resize and preprocess each image, then run the conv base.
///
/// Decoding runs on a thread of its own, at most `lookahead` images ahead of the convolution, so that
/// the two overlap. Each image goes through the conv base alone, so its features are the same bytes
/// whichever images share its batch. Not thread-safe: one extractor per thread of work (it owns the
/// conv base's scratch memory).
public final class FeatureExtractor: @unchecked Sendable {
    public let settings: ImageSettings
    public let layer: PoolingLayer
    private let convBase: ConvBase
    private let decodeQueue = DispatchQueue(label: "bottleneck.decode")
    private let lookahead: Int

    public init(weights: VGG16Weights, settings: ImageSettings, layer: PoolingLayer, lookahead: Int = 2) throws {
        self.settings = settings
        self.layer = layer
        self.lookahead = max(1, lookahead)
        convBase = try ConvBase(weights: weights, imageHeight: settings.height, imageWidth: settings.width, output: layer)
    }

    /// (h, w, c) of one image's features.
    public var featureShape: [Int] { [convBase.outputHeight, convBase.outputWidth, convBase.outputChannels] }
    public var featureCount: Int { convBase.featureCount }

    /// Features (HWC, `featureCount` floats) of each image, or why it could not be read; same order as `images`.
    public func extract(_ images: [(filename: String, bytes: [UInt8])]) -> [Result<[Float], ImageDecodeError>] {
        let prepared = PreparedImages(count: images.count, lookahead: lookahead)
        let settings = self.settings
        let inputSize = settings.height * settings.width * 3
        decodeQueue.async {
            for (index, image) in images.enumerated() {
                prepared.waitForRoom()
                var input = [Float](repeating: 0, count: inputSize)
                let outcome: Result<[Float], ImageDecodeError>
                do {
                    try input.withUnsafeMutableBufferPointer {
                        try ImagePipeline.prepare(image.bytes, filename: image.filename, settings: settings, into: $0.baseAddress!)
                    }
                    outcome = .success(input)
                } catch let error as ImageDecodeError {
                    outcome = .failure(error)
                } catch {
                    outcome = .failure(ImageDecodeError(filename: image.filename, reason: "\(error)"))
                }
                prepared.put(outcome, at: index)
            }
        }
        var results: [Result<[Float], ImageDecodeError>] = []
        results.reserveCapacity(images.count)
        for index in images.indices {
            switch prepared.take(index) {
            case .success(let input):
                var features = [Float](repeating: 0, count: convBase.featureCount)
                input.withUnsafeBufferPointer { source in
                    features.withUnsafeMutableBufferPointer { convBase.forward(image: source.baseAddress!, into: $0.baseAddress!) }
                }
                results.append(.success(features))
            case .failure(let error):
                results.append(.failure(error))
            }
        }
        return results
    }
}

/// Decoded images handed from the decode thread to the compute thread, in index order, with a bound on
/// how many wait at once.
private final class PreparedImages: @unchecked Sendable {
    private let condition = NSCondition()
    private var slots: [Result<[Float], ImageDecodeError>?]
    private var waiting = 0
    private let lookahead: Int

    init(count: Int, lookahead: Int) {
        slots = Array(repeating: nil, count: count)
        self.lookahead = lookahead
    }

    func waitForRoom() {
        condition.lock()
        while waiting >= lookahead { condition.wait() }
        condition.unlock()
    }

    func put(_ outcome: Result<[Float], ImageDecodeError>, at index: Int) {
        condition.lock()
        slots[index] = outcome
        waiting += 1
        condition.broadcast()
        condition.unlock()
    }

    func take(_ index: Int) -> Result<[Float], ImageDecodeError> {
        condition.lock()
        defer { condition.unlock() }
        while slots[index] == nil { condition.wait() }
        let outcome = slots[index]!
        slots[index] = nil
        waiting -= 1
        condition.broadcast()
        return outcome
    }
}
