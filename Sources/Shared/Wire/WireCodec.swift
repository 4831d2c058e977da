import Foundation

/// Bounds a receiver puts on what it accepts; anything larger is rejected as `oversized`.
public struct WireLimits: Sendable {
    /// Largest JSON body of the header frame, bytes.
    public var maxBodyBytes: Int = 4 << 20
    /// Largest number of images in one shard.
    public var maxShardImages: Int = 4096
    /// Largest single image (bytes frame) in a shard.
    public var maxImageBytes: Int = 256 << 20
    /// Largest weights file.
    public var maxWeightsBytes: Int = 2 << 30
    /// Largest feature block of one result.
    public var maxFeatureBytes: Int = 1 << 30
    public init() {}

    /// Largest image side (height or width, pixels) a job may ask for; workers drop a welcome beyond it.
    public static let maxImageSide = 8192

    /// Why a worker would refuse `job`, or nil when every field is within the protocol's limits.
    ///
    /// The one definition of a job's limits: `WireCodec.decode` applies it to every welcome a worker
    /// receives, and a coordinator applies it before it starts, so a job no worker would take is refused
    /// up front instead of being offered forever.
    public func refusal(of job: JobSpec) -> String? {
        let side = 1...Self.maxImageSide
        if !side.contains(job.imageHeight) || !side.contains(job.imageWidth) {
            return "image size \(job.imageHeight)x\(job.imageWidth) is outside 1...\(Self.maxImageSide) per side"
        }
        if !WireCodec.isSHA256(job.weightsSHA256) { return "malformed weights hash" }
        if job.featureCount <= 0 { return "featureCount \(job.featureCount)" }
        if job.weightsSize <= 0 || job.weightsSize > maxWeightsBytes {
            return "weights of \(job.weightsSize) bytes, limit \(maxWeightsBytes)"
        }
        if job.heartbeatIntervalMilliseconds <= 0 { return "a non-positive heartbeat interval" }
        if job.peerTimeoutMilliseconds <= 0 { return "a non-positive peer timeout" }
        return nil
    }
}

/// Encodes and strictly decodes protocol messages.
///
/// Frame 0 is the header: 4 bytes magic "BNWK", protocol version (UInt16 big-endian), kind (UInt8), a zero
/// byte, then the kind's body as UTF-8 JSON. Raw payloads (image bytes, feature blocks, weights) follow as
/// frames of their own, never inside JSON.
public enum WireCodec {
    public static let magic: [UInt8] = Array("BNWK".utf8)
    public static let protocolVersion: UInt16 = 6
    static let headerSize = 8

    /// The frames of `message`, ready for `WireSocket.send` (a ROUTER prepends the peer's routing id).
    public static func encode(_ message: WireMessage, version: UInt16 = protocolVersion) -> [[UInt8]] {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys]
        func header<T: Encodable>(_ body: T) -> [UInt8] {
            var frame = magic
            frame.append(UInt8(version >> 8))
            frame.append(UInt8(version & 0xFF))
            frame.append(message.kind.rawValue)
            frame.append(0)
            do { frame.append(contentsOf: try encoder.encode(body)) } catch {
                preconditionFailure(
                    "message bodies are plain structs of strings and integers; encoding failed: \(error)")
            }
            return frame
        }
        switch message {
        case .hello(let body): return [header(body)]
        case .request(let body): return [header(body)]
        case .result(let body, let features): return [header(body), features]
        case .needWeights(let body): return [header(body)]
        case .heartbeat(let body): return [header(body)]
        case .goodbye(let body): return [header(body)]
        case .welcome(let body): return [header(body)]
        case .shard(let body, let images): return [header(body)] + images
        case .weights(let body, let bytes): return [header(body), bytes]
        case .end(let body): return [header(body)]
        case .reject(let body): return [header(body)]
        case .reset(let body): return [header(body)]
        case .tuneWeights(let body, let values): return [header(body), values]
        case .tuneChunk(let body, let images): return [header(body)] + images
        case .tuneGradient(let body, let values): return [header(body), values]
        }
    }

    /// Decodes `frames` (without a ROUTER's routing-id frame), checking every field against the protocol.
    ///
    /// Throws `WireError` with reason `malformed`, `oversized`, or `protocolMismatch(peerVersion:)` — the last
    /// one only after magic checked, so that it names a real peer of the protocol. A `reject` from a peer of
    /// another version is still decoded: its encoding is frozen.
    public static func decode(_ frames: [[UInt8]], limits: WireLimits = WireLimits()) throws -> WireMessage {
        guard let head = frames.first else { throw malformed("an empty message") }
        guard head.count >= headerSize else { throw malformed("a \(head.count)-byte header, expected at least 8") }
        guard Array(head[0..<4]) == magic else { throw malformed("a header without the BNWK magic") }
        let version = UInt16(head[4]) << 8 | UInt16(head[5])
        let kindByte = head[6]
        if version != protocolVersion && kindByte != MessageKind.reject.rawValue {
            throw WireError(
                .protocolMismatch(peerVersion: version),
                "the peer speaks protocol version \(version), this side speaks version \(protocolVersion)")
        }
        guard let kind = MessageKind(rawValue: kindByte) else { throw malformed("unknown message kind \(kindByte)") }
        guard head[7] == 0 else { throw malformed("a non-zero reserved header byte") }
        let bodyBytes = head.count - headerSize
        guard bodyBytes <= limits.maxBodyBytes else {
            throw WireError(.oversized, "a \(kind) body of \(bodyBytes) bytes, limit \(limits.maxBodyBytes)")
        }
        let body = Data(head[headerSize...])
        let payload = Array(frames.dropFirst())

        func decodeBody<T: Decodable>(_ type: T.Type) throws -> T {
            do {
                return try JSONDecoder().decode(type, from: body)
            } catch {
                throw malformed("a \(kind) body that does not decode: \(describe(error))")
            }
        }
        func expectFrames(_ count: Int) throws {
            guard payload.count == count else {
                throw malformed("a \(kind) message with \(payload.count) payload frames, expected \(count)")
            }
        }

        switch kind {
        case .hello:
            try expectFrames(0)
            let hello = try decodeBody(Hello.self)
            try check(hello.threads >= 1 && hello.threads <= 4096, "hello with \(hello.threads) threads")
            try check(hello.workerName.utf8.count <= 256, "hello with a worker name over 256 bytes")
            return .hello(hello)
        case .request:
            try expectFrames(0)
            let request = try decodeBody(ShardRequest.self)
            try checkStatus(request.status)
            return .request(request)
        case .result:
            try expectFrames(1)
            let result = try decodeBody(ShardResult.self)
            try check(result.shardID >= 0 && result.attempt >= 0 && result.start >= 0, "result with negative ids")
            try check(
                (1...limits.maxShardImages).contains(result.count),
                "result of \(result.count) images, limit \(limits.maxShardImages)")
            try check(result.featureCount > 0, "result with featureCount \(result.featureCount)")
            var previous = -1
            for skipped in result.skipped {
                try check(
                    skipped.offset > previous && skipped.offset < result.count,
                    "result whose skipped offsets are not increasing within 0..<\(result.count)")
                try check(skipped.reason.utf8.count <= 4096, "result with a skip reason over 4096 bytes")
                previous = skipped.offset
            }
            if let inputs = result.inputs {
                try check(
                    inputs.count == result.count, "result with \(inputs.count) input stamps for \(result.count) images")
            }
            for unreadable in result.unreadable ?? [] {
                try check(
                    unreadable.offset >= 0 && unreadable.offset < result.count
                        && unreadable.reason.utf8.count <= 4096,
                    "result with an unreadable image out of range or with an over-long reason")
            }
            var (expected, overflow) = result.rowCount.multipliedReportingOverflow(by: result.featureCount * 4)
            try check(!overflow && expected <= limits.maxFeatureBytes, "result with an oversized feature block")
            if let written = result.written {
                try check(
                    written.offset >= 0 && written.size == result.count * result.featureCount * 4
                        && written.sha256?.utf8.count == 64 && written.path.utf8.count <= 4096,
                    "result with a written part range that does not hold its \(result.count) rows, or no hash")
                expected = 0
            }
            try check(
                payload[0].count == expected,
                "result for shard \(result.shardID) with \(payload[0].count) feature bytes, expected \(expected)")
            return .result(result, features: payload[0])
        case .needWeights:
            try expectFrames(0)
            let request = try decodeBody(WeightsRequest.self)
            try check(isSHA256(request.sha256), "needWeights with a malformed hash")
            return .needWeights(request)
        case .heartbeat:
            try expectFrames(0)
            let heartbeat = try decodeBody(Heartbeat.self)
            if let status = heartbeat.status { try checkStatus(status) }
            return .heartbeat(heartbeat)
        case .goodbye:
            try expectFrames(0)
            return .goodbye(try decodeBody(Goodbye.self))
        case .welcome:
            try expectFrames(0)
            let welcome = try decodeBody(Welcome.self)
            if let refusal = limits.refusal(of: welcome.job) { throw malformed("welcome with \(refusal)") }
            return .welcome(welcome)
        case .shard:
            let shard = try decodeBody(ShardAssignment.self)
            let count = shard.filenames.count
            try check(
                (1...limits.maxShardImages).contains(count), "shard of \(count) images, limit \(limits.maxShardImages)")
            try check(
                shard.shardID >= 0 && shard.attempt >= 0 && shard.start >= 0 && shard.sequence >= 1,
                "shard with negative ids or sequence")
            if let paths = shard.paths {
                try check(paths.count == count, "shard with \(paths.count) paths for \(count) filenames")
                try expectFrames(0)
            } else {
                try expectFrames(count)
                for image in payload {
                    try check(image.count <= limits.maxImageBytes, "shard with an image over the size limit")
                }
            }
            return .shard(shard, images: payload)
        case .weights:
            try expectFrames(1)
            let transfer = try decodeBody(WeightsTransfer.self)
            try check(isSHA256(transfer.sha256), "weights with a malformed hash")
            try check(
                transfer.size == payload[0].count && transfer.size <= limits.maxWeightsBytes,
                "weights announcing \(transfer.size) bytes with a \(payload[0].count)-byte frame")
            return .weights(transfer, bytes: payload[0])
        case .end:
            try expectFrames(0)
            return .end(try decodeBody(JobEnd.self))
        case .reject:
            return .reject(try decodeBody(Rejection.self))
        case .reset:
            try expectFrames(0)
            return .reset(try decodeBody(Reset.self))
        case .tuneWeights:
            try expectFrames(1)
            let weights = try decodeBody(TuningWeights.self)
            try check(weights.step >= 0 && weights.valueCount >= 1, "tuneWeights with a negative step or no values")
            let (expected, overflow) = weights.valueCount.multipliedReportingOverflow(by: 4)
            try check(
                !overflow && expected <= limits.maxFeatureBytes && payload[0].count == expected,
                "tuneWeights announcing \(weights.valueCount) values with a \(payload[0].count)-byte frame")
            return .tuneWeights(weights, values: payload[0])
        case .tuneChunk:
            let chunk = try decodeBody(TuningChunk.self)
            let count = chunk.indices.count
            try check(
                (1...limits.maxShardImages).contains(count),
                "tuneChunk of \(count) images, limit \(limits.maxShardImages)")
            try check(
                chunk.labels.count == count && chunk.shipped.count == count,
                "tuneChunk with \(chunk.labels.count) labels and \(chunk.shipped.count) flags for \(count) images")
            try check(
                chunk.step >= 0 && chunk.position >= 0 && chunk.epoch >= 0 && chunk.indices.allSatisfy { $0 >= 0 }
                    && chunk.labels.allSatisfy { $0 >= 0 }, "tuneChunk with negative ids")
            if let leafCounts = chunk.leafCounts {
                try check(
                    !leafCounts.isEmpty && leafCounts.allSatisfy { $0 >= 1 } && leafCounts.reduce(0, +) == count,
                    "tuneChunk whose chunk sizes do not add up to its \(count) images")
            }
            if let batchCount = chunk.batchCount {
                try check(batchCount >= count, "tuneChunk of \(count) images in a batch of \(batchCount)")
            }
            try expectFrames(chunk.shipped.filter { $0 }.count)
            for image in payload {
                try check(image.count <= limits.maxImageBytes, "tuneChunk with an image over the size limit")
            }
            return .tuneChunk(chunk, images: payload)
        case .tuneGradient:
            try expectFrames(1)
            let gradient = try decodeBody(TuningGradient.self)
            try check(
                gradient.step >= 0 && gradient.position >= 0 && gradient.correct >= 0
                    && gradient.correct <= gradient.count && gradient.count >= 1
                    && (gradient.validation == true ? gradient.valueCount == 0 : gradient.valueCount >= 1)
                    && (gradient.leaves ?? 1) >= 1,
                "tuneGradient with negative or inconsistent counts")
            let (expected, overflow) = gradient.valueCount.multipliedReportingOverflow(by: 4)
            try check(
                !overflow && expected <= limits.maxFeatureBytes && payload[0].count == expected,
                "tuneGradient announcing \(gradient.valueCount) values with a \(payload[0].count)-byte frame")
            return .tuneGradient(gradient, values: payload[0])
        }
    }

    /// True for 64 lowercase hexadecimal characters.
    public static func isSHA256(_ text: String) -> Bool {
        text.utf8.count == 64 && text.utf8.allSatisfy { (48...57).contains($0) || (97...102).contains($0) }
    }

    private static func checkStatus(_ status: WorkerStatus) throws {
        try check((0...64).contains(status.free), "worker status with \(status.free) free slots, expected 0...64")
        try check(status.held.count <= 64, "worker status holding \(status.held.count) shards, expected at most 64")
        try check(status.lastShardSequence >= 0, "worker status with a negative shard sequence")
    }

    private static func malformed(_ what: String) -> WireError { WireError(.malformed, "malformed message: \(what)") }

    private static func check(_ condition: Bool, _ what: @autoclosure () -> String) throws {
        if !condition { throw malformed(what()) }
    }

    private static func describe(_ error: any Error) -> String {
        switch error {
        case DecodingError.keyNotFound(let key, _): "missing field \(key.stringValue)"
        case DecodingError.typeMismatch(let type, let context):
            "field \(context.codingPath.map(\.stringValue).joined(separator: ".")) is not \(type)"
        case DecodingError.valueNotFound(_, let context):
            "field \(context.codingPath.map(\.stringValue).joined(separator: ".")) is null"
        case DecodingError.dataCorrupted: "the body is not valid JSON"
        default: "\(error)"
        }
    }
}
