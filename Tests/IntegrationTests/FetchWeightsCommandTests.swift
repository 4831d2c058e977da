import Foundation
import TestSupport
import Testing

/// `bottleneck-coordinator fetch-weights` (and extract without --weights) against a local HTTP server, with
/// HOME and KERAS_HOME in a temporary directory so the real cache is never touched.
@Suite("fetch-weights: the coordinator downloads into Keras' cache", .enabled(if: BuiltExecutables.available))
struct FetchWeightsCommandTests {
    static let fileName = "vgg16_weights_tf_dim_ordering_tf_kernels_notop.h5"

    struct Setup {
        let tmp: TemporaryDirectory
        let bytes: Data
        let sha256: String
        var cachedFile: String { tmp.file("keras-home/models/\(FetchWeightsCommandTests.fileName)") }

        init(_ label: String, size: Int = 3_000_000) throws {
            tmp = try TemporaryDirectory(label)
            (bytes, sha256) = payload(size)
            try bytes.write(to: URL(fileURLWithPath: tmp.file("served.bin")))
        }

        func server(_ mode: String = "normal") throws -> LocalFileServer {
            try LocalFileServer(file: tmp.file("served.bin"), mode: mode, directory: tmp.path)
        }

        func environment(url: String, sha256: String? = nil, timeout: String = "20") -> [String: String] {
            [
                "HOME": tmp.file("home"), "KERAS_HOME": tmp.file("keras-home"), "BOTTLENECK_WEIGHTS_URL": url,
                "BOTTLENECK_WEIGHTS_SHA256": sha256 ?? self.sha256, "BOTTLENECK_DOWNLOAD_TIMEOUT": timeout,
            ]
        }

        func fetch(_ environment: [String: String], arguments: [String] = ["fetch-weights"]) throws -> ChildProcess {
            let child = try ChildProcess(
                BuiltExecutables.coordinator, arguments, logDirectory: tmp.path, label: "fetch",
                environment: environment)
            #expect(child.wait(timeout: 60) != nil, "the coordinator did not finish")
            return child
        }
    }

    @Test func goodDownloadLandsInKerasHome() throws {
        let setup = try Setup("fetch-good")
        defer { setup.tmp.remove() }
        let server = try setup.server()
        let child = try setup.fetch(setup.environment(url: server.url()))
        #expect(child.process.terminationStatus == 0, "\(child.stderr)")
        #expect(child.stdout.trimmingCharacters(in: .whitespacesAndNewlines) == setup.cachedFile)
        #expect(FileManager.default.contents(atPath: setup.cachedFile) == setup.bytes)
        #expect(!FileManager.default.fileExists(atPath: setup.cachedFile + ".part"))
        #expect(child.stderr.contains("sha256 verified"))
        #expect(!FileManager.default.fileExists(atPath: setup.tmp.file("home/.keras/models")))

        // A second run finds the file and asks the server nothing.
        let again = try setup.fetch(setup.environment(url: server.url()))
        #expect(again.process.terminationStatus == 0)
        #expect(server.requests.count == 1)
    }

    @Test func homeIsTheCacheWithoutKerasHome() throws {
        let setup = try Setup("fetch-home", size: 100_000)
        defer { setup.tmp.remove() }
        let server = try setup.server()
        var environment = setup.environment(url: server.url())
        environment["KERAS_HOME"] = ""
        let child = try setup.fetch(environment)
        #expect(child.process.terminationStatus == 0, "\(child.stderr)")
        let expected = setup.tmp.file("home/.keras/models/\(Self.fileName)")
        #expect(FileManager.default.contents(atPath: expected) == setup.bytes)
    }

    @Test func hashMismatchIsRefusedAndLeavesNothing() throws {
        let setup = try Setup("fetch-mismatch")
        defer { setup.tmp.remove() }
        let server = try setup.server()
        let wrong = String(repeating: "0", count: 64)
        let child = try setup.fetch(setup.environment(url: server.url(), sha256: wrong))
        #expect(child.process.terminationStatus == 1)
        #expect(child.stderr.contains(wrong), "\(child.stderr)")
        #expect(child.stderr.contains(setup.sha256), "\(child.stderr)")
        let models = setup.tmp.file("keras-home/models")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: models)) ?? []).isEmpty)
    }

    @Test func cutOffDownloadResumesWithARangeRequest() throws {
        let setup = try Setup("fetch-resume")
        defer { setup.tmp.remove() }
        let cutting = try setup.server("cut:1000000")
        let first = try setup.fetch(setup.environment(url: cutting.url()))
        #expect(first.process.terminationStatus == 1)
        #expect(first.stderr.contains("run again to resume"), "\(first.stderr)")
        let part = setup.cachedFile + ".part"
        let partSize = (try? FileManager.default.attributesOfItem(atPath: part)[.size] as? NSNumber)?.intValue
        #expect(partSize == 1_000_000)
        #expect(!FileManager.default.fileExists(atPath: setup.cachedFile))

        let whole = try setup.server()
        let second = try setup.fetch(setup.environment(url: whole.url()))
        #expect(second.process.terminationStatus == 0, "\(second.stderr)")
        #expect(whole.requests == ["GET /file Range=bytes=1000000-"])
        #expect(second.stderr.contains("resuming at 1000000 bytes"))
        #expect(FileManager.default.contents(atPath: setup.cachedFile) == setup.bytes)
        #expect(!FileManager.default.fileExists(atPath: part))
    }

    @Test func silentServerTimesOut() throws {
        let setup = try Setup("fetch-timeout", size: 1000)
        defer { setup.tmp.remove() }
        let server = try setup.server("silent")
        let started = Date()
        let child = try setup.fetch(setup.environment(url: server.url(), timeout: "1.5"))
        #expect(child.process.terminationStatus == 1)
        #expect(Date().timeIntervalSince(started) < 30)
        #expect(child.stderr.contains("no answer within 1.5 s"), "\(child.stderr)")
        #expect(child.stderr.contains(server.url()))
        let models = setup.tmp.file("keras-home/models")
        #expect(((try? FileManager.default.contentsOfDirectory(atPath: models)) ?? []).isEmpty)
    }

    @Test func extractWithoutWeightsReportsAnUnreachableHost() throws {
        let setup = try Setup("fetch-unreachable", size: 1000)
        defer { setup.tmp.remove() }
        try FileManager.default.createDirectory(atPath: setup.tmp.file("train/a"), withIntermediateDirectories: true)
        let url = "http://127.0.0.1:\(freeTCPPort())/w.h5"
        let child = try setup.fetch(
            setup.environment(url: url),
            arguments: ["extract", "--train", setup.tmp.file("train"), "--output", setup.tmp.file("f.h5")])
        #expect(child.process.terminationStatus == 1)
        #expect(child.stderr.contains("cannot download \(url)"), "\(child.stderr)")
        #expect(child.stderr.contains("no network, or the host cannot be reached"))
        #expect(!FileManager.default.fileExists(atPath: setup.tmp.file("f.h5")))
    }
}
