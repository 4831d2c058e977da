import FileIntegrity
import Foundation
import Reporting
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
    return (data, Checksum.sha256Hex(data))
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

    @Test func missingFileIsAnHTTPErrorAndLeavesNothing() throws {
        let tmp = try TemporaryDirectory("download-404")
        defer { tmp.remove() }
        try Data("x".utf8).write(to: URL(fileURLWithPath: tmp.file("served.bin")))
        let server = try LocalFileServer(file: tmp.file("served.bin"), mode: "missing", directory: tmp.path)
        let destination = tmp.file("cache/w.h5")
        let download = FileDownload(
            url: URL(string: server.url())!, destination: destination,
            expectedHash: .sha256(String(repeating: "0", count: 64)))
        #expect(throws: DownloadError.httpStatus(url: server.url(), status: 404)) { try download.run() }
        #expect((try? FileManager.default.contentsOfDirectory(atPath: tmp.file("cache"))) == [])
    }

    @Test func progressReachesTheTotal() throws {
        let tmp = try TemporaryDirectory("download-progress")
        defer { tmp.remove() }
        let (bytes, sha) = payload(500_000)
        try bytes.write(to: URL(fileURLWithPath: tmp.file("served.bin")))
        let server = try LocalFileServer(file: tmp.file("served.bin"), directory: tmp.path)
        let last = Mutex<ProgressReport?>(nil)
        try FileDownload(url: URL(string: server.url())!, destination: tmp.file("w.h5"), expectedHash: .sha256(sha))
            .run(progress: ProgressSink(report: { progress in last.withLock { $0 = progress } }))
        #expect(
            last.withLock { $0 }
                == ProgressReport(task: "download", done: 500_000, total: 500_000, unit: "bytes", alreadyDone: 0))
    }
}
