import Foundation
import Storage
import TestSupport
import VGG16

/// A small labelled image tree, tiny VGG16 weights and helpers to run `bottleneck-coordinator extract` on them.
///
/// Images are 40×40 PPM files with distinct patterns, resized to 32×32; the weights are a narrow VGG16 (4–8
/// channels), so a whole job takes well under a second of compute. One training file is not an image.
/// A fresh directory for one test, removed by `remove()`.
struct ScratchDirectory {
    let path: String
    init(_ label: String) throws {
        path = NSTemporaryDirectory() + "bottleneck-\(label)-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
    }
    func file(_ name: String) -> String { path + "/" + name }
    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

struct DistributedFixture {
    let directory: ScratchDirectory
    let train: String
    let validation: String
    let weights: String
    let imageCount: Int

    static let classes = ["cat", "dog", "fox"]
    static let narrowWidths = [4, 4, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8, 8]

    init(_ label: String, imagesPerClass: Int = 8, validationPerClass: Int = 2, weightsSeed: UInt64 = 7) throws {
        directory = try ScratchDirectory(label)
        train = directory.file("train")
        validation = directory.file("validation")
        weights = directory.file("weights.h5")
        var index = 0
        for (root, perClass) in [(train, imagesPerClass), (validation, validationPerClass)] {
            for name in Self.classes {
                try FileManager.default.createDirectory(atPath: root + "/" + name, withIntermediateDirectories: true)
                for image in 0..<perClass {
                    index += 1
                    try writePPM(
                        root + "/\(name)/img\(String(format: "%03d", image)).ppm", width: 40, height: 40,
                        rgb: Self.pattern(index))
                }
            }
        }
        imageCount = index
        try Data("this is not an image".utf8).write(to: URL(fileURLWithPath: train + "/dog/broken.ppm"))
        try VGG16Weights.generated(widths: Self.narrowWidths, seed: weightsSeed).writeOfficialLayout(to: weights)
    }

    static func pattern(_ k: Int) -> [UInt8] {
        var rgb = [UInt8](repeating: 0, count: 40 * 40 * 3)
        for y in 0..<40 {
            for x in 0..<40 {
                for c in 0..<3 {
                    rgb[(y * 40 + x) * 3 + c] = UInt8(
                        truncatingIfNeeded: x * (k % 7 + 3) + y * (2 * k + 1) + c * 50 + k * 17)
                }
            }
        }
        return rgb
    }

    /// `extract` arguments for `output` (a name inside the fixture directory) plus `extra`.
    func extractArguments(_ output: String, _ extra: [String] = []) -> [String] {
        [
            "extract", "--train", train, "--validation", validation, "--weights", weights, "--output",
            directory.file(output), "--image-size", "32", "--cache-dir", directory.file("cache"),
        ] + extra
    }

    /// Starts the coordinator; the caller waits.
    func startCoordinator(_ arguments: [String], environment: [String: String] = [:]) throws -> ChildProcess {
        try ChildProcess(
            BuiltExecutables.coordinator, arguments, logDirectory: directory.path, label: "coordinator",
            environment: environment)
    }

    /// Runs the coordinator to its end (bounded by `timeout`), returning its status and stderr.
    func runCoordinator(_ arguments: [String], timeout: Double = 120, environment: [String: String] = [:]) throws
        -> (status: Int32?, stderr: String)
    {
        let child = try startCoordinator(arguments, environment: environment)
        let status = child.wait(timeout: timeout)
        return (status, child.stderr)
    }

    /// Starts `bottleneck-worker`, or with `shardDelayMs` a slow worker (`bottleneck-dev worker --shard-delay-ms`).
    func startWorker(_ endpoint: String, _ extra: [String] = [], label: String = "worker", shardDelayMs: Int? = nil)
        throws -> ChildProcess
    {
        let common = ["--connect", endpoint, "--cache-dir", directory.file("cache-\(label)"), "--give-up-after", "20"]
        if let shardDelayMs {
            return try ChildProcess(
                BuiltExecutables.dev, ["worker"] + common + extra + ["--shard-delay-ms", String(shardDelayMs)],
                logDirectory: directory.path, label: label)
        }
        return try ChildProcess(BuiltExecutables.worker, common + extra, logDirectory: directory.path, label: label)
    }

    /// Where the journal log of `output` says shard `shard`'s rows are (the last record of it).
    func partLocation(_ output: String, shard: Int) -> (part: String, offset: Int, size: Int)? {
        guard let data = FileManager.default.contents(atPath: directory.file(output) + ".parts/journal.log") else {
            return nil
        }
        var found: (String, Int, Int)?
        for line in data.split(separator: 10) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any],
                let record = object["done"] as? [String: Any],
                record["shard"] as? Int == shard, let location = record["location"] as? [String: Any],
                let part = location["part"] as? String, let offset = location["offset"] as? Int,
                let size = location["size"] as? Int
            else { continue }
            found = (part, offset, size)
        }
        return found
    }

    /// Shards the journal log of `output` records as done (complete lines; invalidations applied).
    func partsCount(_ output: String) -> Int {
        guard let data = FileManager.default.contents(atPath: directory.file(output) + ".parts/journal.log") else {
            return 0
        }
        var done = Set<Int>()
        for line in data.split(separator: 10) {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line)) as? [String: Any] else { continue }
            if let record = object["done"] as? [String: Any], let shard = record["shard"] as? Int {
                done.insert(shard)
            } else if let withdrawn = object["invalidated"] as? [String: Any], let shard = withdrawn["shard"] as? Int {
                done.remove(shard)
            }
        }
        return done.count
    }
}

/// Everything of a feature file that must not depend on how it was computed.
struct FeatureSnapshot: Equatable, CustomStringConvertible {
    struct Split: Equatable {
        var featureShape: [Int]
        var features: [Float]
        var labels: [Int32]
        var filenames: [String]
        /// "filename: reason" of every undecodable image.
        var skipped: [String]
    }

    var classNames: [String]
    var splits: [String: Split]

    init(_ path: String) throws {
        let file = try FeatureFile.open(path)
        classNames = file.classNames
        splits = [:]
        for name in ["train", "validation"] {
            let split = try file.split(name)
            splits[name] = Split(
                featureShape: split.featureShape, features: try split.readFeatures(rows: 0..<split.count),
                labels: try split.labels(), filenames: try split.filenames(),
                skipped: try split.skipped().map { "\($0.filename): \($0.reason)" })
        }
    }

    var description: String {
        "classes \(classNames), " + splits.map { "\($0.key): \($0.value.labels.count) rows" }.joined(separator: ", ")
    }

    var rowCount: Int { splits.values.reduce(0) { $0 + $1.labels.count } }
}
