import Foundation
import TestSupport
import Testing

@testable import WorkerRuntime

/// `WeightsCache`: content-addressed by SHA-256, never hands out a file whose bytes do not match its name.
@Suite("Weights cache")
struct WeightsCacheTests {
    let bytes: [UInt8] = Array("not really an HDF5 file, but bytes all the same".utf8)

    @Test("stored weights are found again under their hash")
    func storeAndFind() throws {
        let directory = try TemporaryDirectory("weights-cache")
        defer { directory.remove() }
        let cache = WeightsCache(cacheDirectory: directory.path)
        let sha = WeightsCache.sha256(bytes)
        #expect(sha.count == 64)
        #expect(cache.verifiedPath(for: sha) == nil, "empty cache")
        let path = try cache.store(bytes, sha256: sha)
        #expect(path == directory.path + "/weights/" + sha + ".h5")
        #expect(cache.verifiedPath(for: sha) == path)
        #expect(FileManager.default.contents(atPath: path) == Data(bytes))
    }

    @Test("bytes that do not hash to the announced value are refused and not stored")
    func wrongHash() throws {
        let directory = try TemporaryDirectory("weights-cache")
        defer { directory.remove() }
        let cache = WeightsCache(cacheDirectory: directory.path)
        let announced = String(repeating: "0", count: 64)
        #expect(throws: WeightsTransferError.self) { try cache.store(bytes, sha256: announced) }
        #expect(!FileManager.default.fileExists(atPath: cache.path(for: announced)))
    }

    @Test("a cached file whose bytes changed is removed, not used")
    func corruptedFile() throws {
        let directory = try TemporaryDirectory("weights-cache")
        defer { directory.remove() }
        let cache = WeightsCache(cacheDirectory: directory.path)
        let sha = WeightsCache.sha256(bytes)
        let path = try cache.store(bytes, sha256: sha)
        try Data(bytes.dropLast()).write(to: URL(fileURLWithPath: path))
        #expect(cache.verifiedPath(for: sha) == nil)
        #expect(!FileManager.default.fileExists(atPath: path))
    }
}
