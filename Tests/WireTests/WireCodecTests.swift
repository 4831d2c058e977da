import Foundation
import Provenance
import Testing
import Wire

@Suite("Wire codec")
struct WireCodecTests {
    static let sha = String(repeating: "ab", count: 32)
    static let job = JobSpec(
        jobID: "job-1", weightsSHA256: sha, weightsSize: 1234, imageHeight: 150, imageWidth: 160,
        interpolation: "nearest", preprocessing: "caffe", layer: "block5_pool", featureCount: 8192,
        sharedFilesystem: false, heartbeatIntervalMilliseconds: 1000, peerTimeoutMilliseconds: 10_000)

    static let samples: [WireMessage] = [
        .hello(
            Hello(
                workerName: "host:42", pid: 42, threads: 2,
                computeProfile: ComputeProfile(
                    kernelSet: "Haswell", grouping: 4, precision: "fp32", buildVersion: "1.0",
                    libraries: ["libpng": "1.6.39"]))),
        .request(ShardRequest(jobID: "job-1", status: WorkerStatus(lastShardSequence: 3, held: [4, 5], free: 0))),
        .result(
            ShardResult(
                jobID: "job-1", shardID: 7, attempt: 9, start: 64, count: 3, featureCount: 2,
                skipped: [SkippedImage(offset: 1, reason: "not a JPEG file")],
                inputs: [InputStamp(size: 10, modifiedNanoseconds: 1_700_000_000_123_456_789), nil, nil],
                unreadable: [], rowsSHA256: String(repeating: "ab", count: 32)),
            features: [UInt8](repeating: 7, count: 2 * 2 * 4)),
        .needWeights(WeightsRequest(sha256: sha)),
        .heartbeat(Heartbeat()),
        .heartbeat(Heartbeat(status: WorkerStatus(lastShardSequence: 0, held: [], free: 2))),
        .goodbye(Goodbye(reason: "bye")),
        .welcome(Welcome(job: job)),
        .shard(
            ShardAssignment(
                jobID: "job-1", shardID: 2, attempt: 1, sequence: 1, start: 8, filenames: ["a/x.jpg", "b/ÿ.png"]),
            images: [[1, 2, 3], []]),
        .shard(
            ShardAssignment(
                jobID: "job-1", shardID: 2, attempt: 1, sequence: 2, start: 8, filenames: ["a/x.jpg"],
                paths: ["/d/a/x.jpg"]),
            images: []),
        .weights(WeightsTransfer(sha256: sha, size: 5), bytes: [1, 2, 3, 4, 5]),
        .end(JobEnd(jobID: "job-1", reason: "done")),
        .reject(Rejection(reason: "no")),
        .reset(Reset(reason: "who are you")),
        .welcome(
            Welcome(
                job: job,
                tuning: TuningSpec(
                    augmentation: "shear=0.2,zoom=0.8:1.2,horizontal-flip", seed: 7, dropoutRate: 0.5, topInputs: 16,
                    topHidden: 8, classes: 3, cacheFrozen: false))),
        .tuneWeights(TuningWeights(jobID: "job-1", step: 3, valueCount: 2), values: FloatFrame.bytes([[1.5], [-2]])),
        .tuneChunk(
            TuningChunk(
                jobID: "job-1", step: 3, position: 1, epoch: 0, indices: [4, 9], labels: [0, 2], shipped: [true, false]),
            images: [[1, 2, 3]]),
        .tuneChunk(
            TuningChunk(
                jobID: "job-1", step: 4, position: 5, epoch: 0, indices: [7], labels: [1], shipped: [true],
                validation: true),
            images: [[4, 5, 6]]),
        .tuneGradient(
            TuningGradient(
                jobID: "job-1", step: 3, position: 1, lossBits: Float(0.25).bitPattern, correct: 1, count: 2,
                valueCount: 1),
            values: FloatFrame.bytes([[0.5]])),
        .welcome(
            Welcome(
                job: JobSpec(
                    jobID: "job-2", weightsSHA256: sha, weightsSize: 1234, imageHeight: 224, imageWidth: 224,
                    interpolation: "nearest", preprocessing: "caffe", layer: "block5_pool", featureCount: 25088,
                    sharedFilesystem: false, heartbeatIntervalMilliseconds: 1000, peerTimeoutMilliseconds: 10_000,
                    precision: "bf16"))),
    ]

    @Test("every message kind survives an encode/decode round trip")
    func roundTrips() throws {
        for message in Self.samples {
            #expect(try WireCodec.decode(WireCodec.encode(message)) == message, "\(message.kind)")
        }
        #expect(Set(Self.samples.map(\.kind)) == Set(MessageKind.allCases))
    }

    @Test("a job spec without a precision (an earlier coordinator's) decodes as fp32's nil")
    func jobSpecWithoutPrecision() throws {
        let json = try JSONEncoder().encode(Self.job)
        #expect(!String(decoding: json, as: UTF8.self).contains("precision"))
        #expect(try JSONDecoder().decode(JobSpec.self, from: json).precision == nil)
    }

    @Test("fine-tuning messages whose frames disagree with their headers are refused; float frames round-trip exactly")
    func fineTuningMessagesChecked() throws {
        let weights = WireCodec.encode(
            .tuneWeights(TuningWeights(jobID: "j", step: 0, valueCount: 3), values: FloatFrame.bytes([[1, 2]])))
        #expect(refusal(weights) == .malformed)
        let chunk = WireCodec.encode(
            .tuneChunk(
                TuningChunk(
                    jobID: "j", step: 0, position: 0, epoch: 0, indices: [1, 2], labels: [0, 0], shipped: [true, true]),
                images: [[1]]))
        #expect(refusal(chunk) == .malformed, "one image frame for two shipped images")
        let gradient = WireCodec.encode(
            .tuneGradient(
                TuningGradient(jobID: "j", step: 0, position: 0, lossBits: 0, correct: 3, count: 2, valueCount: 1),
                values: FloatFrame.bytes([[1]])))
        #expect(refusal(gradient) == .malformed, "more correct than images")
        // A validation batch's answer carries its loss and correct count, never gradient values.
        let figures = TuningGradient(
            jobID: "j", step: 2, position: 5, lossBits: Float(0.5).bitPattern, correct: 1, count: 2, valueCount: 0,
            validation: true)
        let answer = WireMessage.tuneGradient(figures, values: [])
        #expect(try WireCodec.decode(WireCodec.encode(answer)) == answer)
        var withValues = figures
        withValues.valueCount = 1
        #expect(refusal(WireCodec.encode(.tuneGradient(withValues, values: FloatFrame.bytes([[1]])))) == .malformed)
        var training = figures
        training.validation = nil
        #expect(refusal(WireCodec.encode(.tuneGradient(training, values: []))) == .malformed, "a gradient of no values")
        let values: [[Float]] = [[1, -0.0, .leastNonzeroMagnitude], [.greatestFiniteMagnitude, .infinity]]
        let back = FloatFrame.tensors(FloatFrame.bytes(values), sizes: [3, 2])
        #expect(back?.flatMap { $0 }.map(\.bitPattern) == values.flatMap { $0 }.map(\.bitPattern))
        #expect(FloatFrame.tensors(FloatFrame.bytes(values), sizes: [3, 3]) == nil)
    }

    /// Decodes `frames` and returns the reason it was refused (nil if it was accepted).
    private func refusal(_ frames: [[UInt8]], limits: WireLimits = WireLimits()) -> WireError.Reason? {
        do {
            _ = try WireCodec.decode(frames, limits: limits)
            return nil
        } catch let error as WireError {
            return error.reason
        } catch {
            Issue.record("decode threw a non-wire error: \(error)")
            return nil
        }
    }

    private func header(kind: UInt8, version: UInt16 = WireCodec.protocolVersion, json: String) -> [UInt8] {
        Array("BNWK".utf8) + [UInt8(version >> 8), UInt8(version & 0xFF), kind, 0] + Array(json.utf8)
    }

    @Test("malformed messages are refused with a reason, never accepted")
    func malformedRefused() {
        let hello = WireCodec.encode(Self.samples[0])[0]
        var badMagic = hello
        badMagic[0] = UInt8(ascii: "X")
        var reserved = hello
        reserved[7] = 1
        let cases: [(String, [[UInt8]])] = [
            ("no frames", []),
            ("a short header", [[66, 78, 87]]),
            ("bad magic", [badMagic]),
            ("unknown kind", [header(kind: 99, json: "{}")]),
            ("reserved byte set", [reserved]),
            ("not JSON", [header(kind: MessageKind.hello.rawValue, json: "{not json")]),
            ("missing field", [header(kind: MessageKind.hello.rawValue, json: #"{"workerName":"x","pid":1}"#)]),
            ("wrong type", [header(kind: MessageKind.hello.rawValue, json: #"{"workerName":3,"pid":1,"threads":1}"#)]),
            (
                "zero threads",
                [header(kind: MessageKind.hello.rawValue, json: #"{"workerName":"x","pid":1,"threads":0}"#)]
            ),
            ("hello with a payload frame", [hello, [1, 2, 3]]),
            ("result without its feature frame", [WireCodec.encode(Self.samples[2])[0]]),
            ("result with a short feature block", [WireCodec.encode(Self.samples[2])[0], [0, 0, 0, 0]]),
            (
                "result with unordered skips",
                [
                    header(
                        kind: MessageKind.result.rawValue,
                        json: #"{"jobID":"j","shardID":0,"attempt":0,"start":0,"count":3,"featureCount":1,"#
                            + #""skipped":[{"offset":2,"reason":"x"},{"offset":1,"reason":"y"}]}"#), [0, 0, 0, 0],
                ]
            ),
            (
                "result with a skip outside the shard",
                [
                    header(
                        kind: MessageKind.result.rawValue,
                        json: #"{"jobID":"j","shardID":0,"attempt":0,"start":0,"count":1,"featureCount":1,"#
                            + #""skipped":[{"offset":5,"reason":"x"}]}"#), [0, 0, 0, 0],
                ]
            ),
            (
                "request with 1000 free slots",
                [
                    header(
                        kind: MessageKind.request.rawValue,
                        json: #"{"jobID":"j","status":{"lastShardSequence":0,"held":[],"free":1000}}"#)
                ]
            ),
            ("shard missing image frames", [WireCodec.encode(Self.samples[8])[0], [1]]),
            ("shard with paths and frames", [WireCodec.encode(Self.samples[9])[0], [1]]),
            ("weights of the wrong size", [WireCodec.encode(Self.samples[10])[0], [1, 2]]),
            ("a malformed hash", [header(kind: MessageKind.needWeights.rawValue, json: #"{"sha256":"../../etc"}"#)]),
        ]
        for (name, frames) in cases {
            #expect(refusal(frames) == .malformed, "\(name)")
        }
    }

    @Test("a body over the receiver's limit is refused as oversized")
    func oversizedBody() {
        var limits = WireLimits()
        limits.maxBodyBytes = 64
        let frames = WireCodec.encode(.goodbye(Goodbye(reason: String(repeating: "x", count: 100))))
        #expect(refusal(frames, limits: limits) == .oversized)
        var shardLimits = WireLimits()
        shardLimits.maxShardImages = 1
        #expect(refusal(WireCodec.encode(Self.samples[8]), limits: shardLimits) == .malformed)
    }

    @Test("another protocol version is a clear mismatch, but its rejection can still be read")
    func versionMismatch() throws {
        let frames = WireCodec.encode(Self.samples[0], version: 1)
        #expect(refusal(frames) == .protocolMismatch(peerVersion: 1))
        do {
            _ = try WireCodec.decode(frames)
        } catch let error as WireError {
            #expect(error.message.contains("protocol version 1"))
            #expect(error.message.contains("version \(WireCodec.protocolVersion)"))
        }
        let rejection = WireMessage.reject(Rejection(reason: "speak version 1"))
        #expect(try WireCodec.decode(WireCodec.encode(rejection, version: 9)) == rejection)
    }

    @Test("random and mutated bytes never crash the decoder")
    func fuzz() {
        var state: UInt64 = 0x9E37_79B9_7F4A_7C15
        func next() -> UInt64 {
            state ^= state << 13
            state ^= state >> 7
            state ^= state << 17
            return state
        }
        var accepted = 0
        for round in 0..<3000 {
            var frames: [[UInt8]]
            if round % 2 == 0 {
                frames = (0..<Int(next() % 4)).map { _ in
                    (0..<Int(next() % 64)).map { _ in UInt8(truncatingIfNeeded: next()) }
                }
            } else {
                frames = WireCodec.encode(Self.samples[Int(next() % UInt64(Self.samples.count))])
                let frame = Int(next() % UInt64(frames.count))
                if !frames[frame].isEmpty {
                    for _ in 0..<Int(1 + next() % 3) {
                        let index = Int(next() % UInt64(frames[frame].count))
                        frames[frame][index] ^= UInt8(truncatingIfNeeded: 1 << (next() % 8))
                    }
                }
            }
            if refusal(frames) == nil { accepted += 1 }
        }
        // Flips inside JSON strings or payload bytes stay valid; anything structural is refused.
        #expect(accepted < 3000)
    }
}
