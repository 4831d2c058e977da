import Crypto
import Foundation
import Synchronization
import TestSupport
import Testing
import WeightsDownload

/// Bytes standing in for a weights file, and their SHA-256 in hex.
func payload(_ count: Int = 3_000_000, seed: UInt64 = 7) -> (bytes: Data, sha256: String) {
    var state = seed
    var bytes = [UInt8](repeating: 0, count: count)
    for i in 0..<count {
        state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
        bytes[i] = UInt8(truncatingIfNeeded: state >> 33)
    }
    let data = Data(bytes)
    return (data, SHA256.hash(data: data).map { String(format: "%02x", $0) }.joined())
}

@Suite("Keras cache directory and expected hash")
struct KerasCacheDirectoryTests {
    @Test func kerasHomeWinsOverHome() throws {
        let tmp = try TemporaryDirectory("keras-home")
        defer { tmp.remove() }
        let cache = KerasCacheDirectory.resolve(environment: ["KERAS_HOME": tmp.file("kh"), "HOME": tmp.file("home")])
        #expect(cache.path == tmp.file("kh"))
        #expect(cache.file("w.h5") == tmp.file("kh") + "/models/w.h5")
    }

    @Test func homeIsReadAtCallTime() throws {
        let tmp = try TemporaryDirectory("keras-home")
        defer { tmp.remove() }
        let cache = KerasCacheDirectory.resolve(environment: ["HOME": tmp.file("home")])
        #expect(cache.path == tmp.file("home") + "/.keras")
        #expect(FileManager.default.fileExists(atPath: cache.path))
    }

    @Test func unwritableBaseFallsBack() throws {
        let tmp = try TemporaryDirectory("keras-home")
        defer { tmp.remove() }
        // A regular file where HOME should be: ~/.keras can be neither created nor written.
        _ = FileManager.default.createFile(atPath: tmp.file("home"), contents: Data("x".utf8))
        let cache = KerasCacheDirectory.resolve(environment: ["HOME": tmp.file("home")], fallback: tmp.file("fallback"))
        #expect(cache.path == tmp.file("fallback"))
    }

    @Test func hashAlgorithmFollowsLengthAsInKeras() throws {
        #expect(ExpectedHash(hex: "6d6bbae143d832006294945121d1f1fc") == .md5("6d6bbae143d832006294945121d1f1fc"))
        #expect(ExpectedHash(hex: String(repeating: "AB", count: 32)) == .sha256(String(repeating: "ab", count: 32)))
        #expect(ExpectedHash(hex: "abc") == nil)
        #expect(ExpectedHash(hex: String(repeating: "g", count: 32)) == nil)
        #expect(WeightsSource.vgg16Notop.expectedHash == .md5("6d6bbae143d832006294945121d1f1fc"))
    }

    @Test func digestsOfAFile() throws {
        let tmp = try TemporaryDirectory("keras-hash")
        defer { tmp.remove() }
        _ = FileManager.default.createFile(atPath: tmp.file("abc"), contents: Data("abc".utf8))
        #expect(try ExpectedHash.md5("").digest(ofFileAt: tmp.file("abc")) == "900150983cd24fb0d6963f7d28e17f72")
        #expect(
            try ExpectedHash.sha256("").digest(ofFileAt: tmp.file("abc"))
                == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad")
    }

    @Test func overridesAreChecked() throws {
        let source = try WeightsSource.vgg16Notop.overridden(by: [
            "BOTTLENECK_WEIGHTS_URL": "http://127.0.0.1:1/w.h5",
            "BOTTLENECK_WEIGHTS_SHA256": String(repeating: "0", count: 64),
        ])
        #expect(source.url.absoluteString == "http://127.0.0.1:1/w.h5")
        #expect(source.expectedHash == .sha256(String(repeating: "0", count: 64)))
        #expect(source.fileName == WeightsSource.vgg16Notop.fileName)
        #expect(throws: DownloadError.self) {
            try WeightsSource.vgg16Notop.overridden(by: [
                "BOTTLENECK_WEIGHTS_SHA256": "6d6bbae143d832006294945121d1f1fc"
            ])
        }
        #expect(throws: DownloadError.self) {
            try WeightsSource.vgg16Notop.overridden(by: ["BOTTLENECK_WEIGHTS_URL": "ftp://example/w.h5"])
        }
        #expect(throws: DownloadError.self) {
            try WeightsFetch.timeout(environment: ["BOTTLENECK_DOWNLOAD_TIMEOUT": "0"])
        }
        #expect(try WeightsFetch.timeout(environment: [:]) == 30)
    }
}

@Suite("File download from a local HTTP server")
struct FileDownloadTests {
    @Test func serverIgnoringRangeIsFollowedFromTheStart() throws {
        let tmp = try TemporaryDirectory("download-200")
        defer { tmp.remove() }
        let (bytes, sha) = payload()
        try bytes.write(to: URL(fileURLWithPath: tmp.file("served.bin")))
        let server = try LocalFileServer(file: tmp.file("served.bin"), mode: "full200", directory: tmp.path)
        let destination = tmp.file("cache/w.h5")
        try FileManager.default.createDirectory(atPath: tmp.file("cache"), withIntermediateDirectories: true)
        // A part whose bytes are not the file's: the 200 answer must replace it, not be appended.
        try Data(repeating: 0xEE, count: 12_345).write(to: URL(fileURLWithPath: destination + ".part"))
        let download = FileDownload(
            url: URL(string: server.url())!, destination: destination, expectedHash: .sha256(sha), timeout: 20)
        try download.run()
        #expect(FileManager.default.contents(atPath: destination) == bytes)
        #expect(!FileManager.default.fileExists(atPath: destination + ".part"))
        #expect(server.requests == ["GET /file Range=bytes=12345-"])
    }

    @Test func redirectIsFollowed() throws {
        let tmp = try TemporaryDirectory("download-redirect")
        defer { tmp.remove() }
        let (bytes, sha) = payload(200_000)
        try bytes.write(to: URL(fileURLWithPath: tmp.file("served.bin")))
        let server = try LocalFileServer(file: tmp.file("served.bin"), mode: "redirect", directory: tmp.path)
        let destination = tmp.file("cache/w.h5")
        let download = FileDownload(
            url: URL(string: server.url("/redirect"))!, destination: destination, expectedHash: .sha256(sha),
            timeout: 20)
        try download.run()
        #expect(FileManager.default.contents(atPath: destination) == bytes)
        #expect(server.requests.first == "GET /redirect Range=-")
        #expect(server.requests.last == "GET /file Range=-")
    }

    @Test func resumeKeepsItsRangeThroughARedirect() throws {
        let tmp = try TemporaryDirectory("download-redirect-resume")
        defer { tmp.remove() }
        let (bytes, sha) = payload(400_000)
        try bytes.write(to: URL(fileURLWithPath: tmp.file("served.bin")))
        let server = try LocalFileServer(file: tmp.file("served.bin"), mode: "redirect", directory: tmp.path)
        let destination = tmp.file("w.h5")
        try bytes.prefix(150_000).write(to: URL(fileURLWithPath: destination + ".part"))
        try FileDownload(
            url: URL(string: server.url("/redirect"))!, destination: destination, expectedHash: .sha256(sha)
        ).run()
        #expect(FileManager.default.contents(atPath: destination) == bytes)
        #expect(server.requests == ["GET /redirect Range=bytes=150000-", "GET /file Range=bytes=150000-"])
    }

    @Test func wholePartAnsweredWith416IsVerifiedAndKept() throws {
        let tmp = try TemporaryDirectory("download-416")
        defer { tmp.remove() }
        let (bytes, sha) = payload(100_000)
        try bytes.write(to: URL(fileURLWithPath: tmp.file("served.bin")))
        let server = try LocalFileServer(file: tmp.file("served.bin"), directory: tmp.path)
        let destination = tmp.file("cache/w.h5")
        try FileManager.default.createDirectory(atPath: tmp.file("cache"), withIntermediateDirectories: true)
        try bytes.write(to: URL(fileURLWithPath: destination + ".part"))
        try FileDownload(url: URL(string: server.url())!, destination: destination, expectedHash: .sha256(sha)).run()
        #expect(FileManager.default.contents(atPath: destination) == bytes)
        #expect(server.requests == ["GET /file Range=bytes=100000-"])
    }

    @Test func progressReachesTheTotal() throws {
        let tmp = try TemporaryDirectory("download-progress")
        defer { tmp.remove() }
        let (bytes, sha) = payload(500_000)
        try bytes.write(to: URL(fileURLWithPath: tmp.file("served.bin")))
        let server = try LocalFileServer(file: tmp.file("served.bin"), directory: tmp.path)
        let last = Mutex<DownloadProgress?>(nil)
        try FileDownload(url: URL(string: server.url())!, destination: tmp.file("w.h5"), expectedHash: .sha256(sha))
            .run { progress in last.withLock { $0 = progress } }
        #expect(last.withLock { $0 } == DownloadProgress(bytesDone: 500_000, bytesTotal: 500_000, resumedFrom: 0))
    }
}
