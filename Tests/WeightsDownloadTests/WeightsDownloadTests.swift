import Foundation
import TestSupport
import Testing
import WeightsDownload

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
