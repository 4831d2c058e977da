import BLAS
import Dispatch
import Foundation
import ImageInput
import Synchronization
import VGG16

/// Image bytes in, VGG16 features out: decode, resize and preprocess each image, then run the conv base.
///
/// Decoding runs on a thread of its own, a few images ahead of the convolutions, so that the two
/// overlap. `threads` conv bases (sharing one copy of the prepared kernels) each take whole images, and
/// each runs OpenBLAS single-threaded: an image's features are then the same bytes whichever images
/// share its batch, whichever worker computes it and however many threads that worker has (OpenBLAS'
/// thread count changes the last bits of its results, so it is pinned to one here for the process).
/// One image per conv base is also faster than one conv base over several BLAS threads. Each conv base takes
/// up to `ConvBase.recommendedBatch` images at a time, whose last layers it computes together (same bits as
/// any other grouping).
///
/// Not thread-safe: `extract` is called from one thread at a time (it owns the conv bases' scratch memory).
public final class FeatureExtractor {
    public let settings: ImageSettings
    public let layer: PoolingLayer
    /// The arithmetic of the convolutions (`ConvBase.precision`).
    public let precision: ConvPrecision
    private let convBases: [ConvBase]
    private let decodeQueue = DispatchQueue(label: "bottleneck.decode")
    private let lookahead: Int

    /// `precision` `.bf16` throws `MissingCPUFeature` on a CPU without avx512_bf16 (never falls back to fp32).
    public init(
        weights: VGG16Weights, settings: ImageSettings, layer: PoolingLayer, threads: Int = 1,
        precision: ConvPrecision = .fp32
    ) throws {
        BLASThreads.set(1)
        self.settings = settings
        self.layer = layer
        self.precision = precision
        let first = try ConvBase(
            weights: weights, imageHeight: settings.height, imageWidth: settings.width, output: layer,
            batch: ConvBase.recommendedBatch, precision: precision)
        convBases = [first] + (1..<max(1, threads)).map { _ in ConvBase(sharingWeightsWith: first) }
        lookahead = (convBases.count + 1) * first.batch
    }

    private init(sharingWeightsWith other: FeatureExtractor) {
        settings = other.settings
        layer = other.layer
        precision = other.precision
        convBases = [ConvBase(sharingWeightsWith: other.convBases[0])]
        lookahead = 2 * convBases[0].batch
    }

    /// Another single-threaded extractor for the same job that shares this one's prepared weights (its own
    /// scratch memory and decode thread): one per compute thread of a worker that computes several shards at
    /// once. Same bits as this one for every image.
    public func sibling() -> FeatureExtractor { FeatureExtractor(sharingWeightsWith: self) }

    /// Conv bases computing in parallel.
    public var threads: Int { convBases.count }

    /// The OpenBLAS kernel set this process computes with, e.g. "Haswell".
    public static var kernelSet: String { BLASKernels.coreName }
    /// Images whose last layers a conv base computes together.
    public static var grouping: Int { ConvBase.recommendedBatch }
    /// Versions of the libraries that decide this process's features, by name: "openblas" (its configuration
    /// string), "libjpeg-turbo", "libpng".
    public static var libraryVersions: [String: String] {
        [
            "openblas": BLASKernels.configuration, "libjpeg-turbo": ImageLibraries.jpegTurboVersion,
            "libpng": ImageLibraries.pngVersion,
        ]
    }

    /// (h, w, c) of one image's features.
    public var featureShape: [Int] {
        [convBases[0].outputHeight, convBases[0].outputWidth, convBases[0].outputChannels]
    }
    public var featureCount: Int { convBases[0].featureCount }

    /// Features (HWC, `featureCount` floats) of each image, or why it could not be read; same order as `images`.
    public func extract(_ images: [(filename: String, bytes: [UInt8])]) -> [Result<[Float], ImageDecodeError>] {
        let prepared = PreparedImages(count: images.count, lookahead: lookahead)
        let settings = self.settings
        decodeQueue.async {
            for (index, image) in images.enumerated() {
                prepared.waitForRoom()
                var input = [Float](repeating: 0, count: settings.height * settings.width * 3)
                let outcome: Result<[Float], ImageDecodeError>
                do {
                    try input.withUnsafeMutableBufferPointer {
                        try ImagePipeline.prepare(
                            image.bytes, filename: image.filename, settings: settings, into: $0.baseAddress!)
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
        let results = ResultSlots(count: images.count)
        let convBases = ConvBasePerThread(convBases)
        let compute: @Sendable (Int) -> Void = { thread in
            let convBase = convBases[thread]
            // Up to `batch` images at a time (the conv base computes its last layers for a whole group at once;
            // an image's bits do not depend on the others in its group).
            let inputs = UnsafeMutablePointer<Float>.allocate(capacity: convBase.batch * convBase.inputCount)
            let outputs = UnsafeMutablePointer<Float>.allocate(capacity: convBase.batch * convBase.featureCount)
            defer {
                inputs.deallocate()
                outputs.deallocate()
            }
            while true {
                var group: [Int] = []
                while group.count < convBase.batch, let next = prepared.takeNext() {
                    switch next.outcome {
                    case .success(let input):
                        (inputs + group.count * convBase.inputCount).update(from: input, count: convBase.inputCount)
                        group.append(next.index)
                    case .failure(let error):
                        results.set(next.index, .failure(error))
                    }
                }
                if group.isEmpty { break }
                convBase.forward(
                    images: group.indices.map { UnsafePointer(inputs + $0 * convBase.inputCount) },
                    into: group.indices.map { outputs + $0 * convBase.featureCount })
                for (slot, index) in group.enumerated() {
                    let features = Array(
                        UnsafeBufferPointer(start: outputs + slot * convBase.featureCount, count: convBase.featureCount)
                    )
                    results.set(index, .success(features))
                }
            }
        }
        if threads == 1 {
            compute(0)
        } else {
            DispatchQueue.concurrentPerform(iterations: threads, execute: compute)
        }
        return results.values
    }
}

/// The conv bases of one `extract` call, handed to its compute threads.
///
/// `@unchecked Sendable`: `ConvBase` is not thread-safe, and each thread uses only the conv base at its own
/// index (one `concurrentPerform` iteration per index), so no conv base is ever used by two threads at once.
private struct ConvBasePerThread: @unchecked Sendable {
    private let bases: [ConvBase]
    init(_ bases: [ConvBase]) { self.bases = bases }
    subscript(thread: Int) -> ConvBase { bases[thread] }
}

/// Decoded images handed from the decode thread to the compute threads in index order, with a bound on
/// how many wait at once. Every field is read and written under `condition`, which makes it thread-safe.
private final class PreparedImages: @unchecked Sendable {
    private let condition = NSCondition()
    private var slots: [Result<[Float], ImageDecodeError>?]
    private var next = 0
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

    /// The next image in index order once it is decoded, or nil when all have been taken.
    func takeNext() -> (index: Int, outcome: Result<[Float], ImageDecodeError>)? {
        condition.lock()
        defer { condition.unlock() }
        guard next < slots.count else { return nil }
        let index = next
        next += 1
        while slots[index] == nil { condition.wait() }
        let outcome = slots[index]!
        slots[index] = nil
        waiting -= 1
        condition.broadcast()
        return (index, outcome)
    }
}

/// Results written by the compute threads at distinct indices.
private final class ResultSlots: Sendable {
    private let slots: Mutex<[Result<[Float], ImageDecodeError>?]>

    init(count: Int) { slots = Mutex(Array(repeating: nil, count: count)) }

    func set(_ index: Int, _ result: Result<[Float], ImageDecodeError>) {
        slots.withLock { $0[index] = result }
    }

    var values: [Result<[Float], ImageDecodeError>] { slots.withLock { $0.map { $0! } } }
}
