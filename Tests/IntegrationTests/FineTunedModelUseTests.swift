import FileIntegrity
import Foundation
import Storage
import TestSupport
import Testing

/// A fine-tuned model used by the other commands: `extract --model`, `evaluate --images`, `report`; real worker
/// processes, narrow weights, small generated images.
@Suite(
    "fine-tuned model used by extract, evaluate and report",
    .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct FineTunedModelUseTests {
    /// extract → train → finetune (one epoch) in `fixture`; returns the top model's and the fine-tuned model's paths.
    func models(_ fixture: DistributedFixture) throws -> (top: String, fineTuned: String) {
        let extract = try fixture.runCoordinator(fixture.extractArguments("features.h5", ["--workers", "1"]))
        #expect(extract.status == 0, "\(extract.stderr)")
        let top = fixture.directory.file("model.h5")
        let train = try fixture.runCoordinator([
            "train", "--features", fixture.directory.file("features.h5"), "--output", top, "--epochs", "2",
        ])
        #expect(train.status == 0, "\(train.stderr)")
        let fineTuned = fixture.directory.file("finetuned.h5")
        let finetune = try fixture.runCoordinator([
            "finetune", "--train", fixture.train, "--weights", fixture.weights, "--top-model", top, "--output",
            fineTuned, "--epochs", "1", "--batch-size", "4", "--seed", "1",
        ])
        #expect(finetune.status == 0, "\(finetune.stderr)")
        return (top, fineTuned)
    }

    /// `evaluate … --json` parsed, without `source` (which names the feature file or the image directory).
    func evaluation(_ fixture: DistributedFixture, _ arguments: [String]) throws -> NSDictionary? {
        let child = try fixture.startCoordinator(["evaluate", "--json"] + arguments)
        let status = child.wait(timeout: 120)
        #expect(status == 0, "\(child.stderr)")
        guard var object = try? JSONSerialization.jsonObject(with: Data(child.stdout.utf8)) as? [String: Any] else {
            Issue.record("not JSON: \(child.stdout.prefix(400)) \(child.stderr)")
            return nil
        }
        #expect(object["source"] != nil)
        object["source"] = nil
        return object as NSDictionary
    }

    @Test("extract --model sends the fine-tuned file to the workers by its hash and records it; mismatches are refused")
    func extractWithFineTunedModel() throws {
        let fixture = try DistributedFixture("ft-use-extract", imagesPerClass: 3, validationPerClass: 1)
        defer { fixture.directory.remove() }
        let (top, fineTuned) = try models(fixture)
        let sha = try Checksum.sha256Hex(ofFile: fineTuned)
        let output = fixture.directory.file("tuned-features.h5")
        let extract = try fixture.runCoordinator([
            "extract", "--train", fixture.train, "--validation", fixture.validation, "--model", fineTuned,
            "--output", output, "--workers", "2", "--cache-dir", fixture.directory.file("cache-tuned"),
        ])
        #expect(extract.status == 0, "\(extract.stderr)")
        let file = try FeatureFile.open(output)
        #expect(file.attributes.weightsSHA256 == sha)
        #expect(file.attributes.imageHeight == 32 && file.attributes.imageWidth == 32, "the model's image size")
        #expect(
            FileManager.default.fileExists(atPath: fixture.directory.file("cache-tuned/weights/\(sha).h5")),
            "the workers received the fine-tuned file's bytes")
        let plain = try FeatureFile.open(fixture.directory.file("features.h5"))
        let tuned = try file.split("validation")
        let frozen = try plain.split("validation")
        #expect(
            try tuned.readFeatures(rows: 0..<tuned.count) != frozen.readFeatures(rows: 0..<frozen.count),
            "block5 changed")

        // The fine-tuned model evaluates on these features; the top model refuses them.
        let onFeatures = try evaluation(fixture, ["--features", output, "--model", fineTuned])
        #expect(onFeatures?["count"] as? Int == 3)
        let refused = try fixture.runCoordinator(["evaluate", "--features", output, "--model", top])
        #expect(refused.status == 1)
        #expect(refused.stderr.contains("weights sha256"), "\(refused.stderr)")

        func refusal(_ extra: [String]) throws -> String {
            let run = try fixture.runCoordinator(
                ["extract", "--train", fixture.train, "--output", fixture.directory.file("x.h5"), "--workers", "1"]
                    + extra)
            #expect(run.status == 1, "\(extra): \(run.stderr)")
            #expect(!FileManager.default.fileExists(atPath: fixture.directory.file("x.h5")))
            return run.stderr
        }
        #expect(try refusal(["--model", top]).contains("is not a fine-tuned model"))
        #expect(
            try refusal(["--model", fineTuned, "--weights", fixture.weights]).contains("not the convolution weights"))
        #expect(try refusal(["--model", fineTuned, "--image-size", "48"]).contains("image size 48x48 (model: 32x32)"))
        let same = try fixture.runCoordinator([
            "extract", "--train", fixture.validation, "--output", fixture.directory.file("y.h5"), "--workers", "1",
            "--model", fineTuned, "--weights", fineTuned, "--cache-dir", fixture.directory.file("cache-tuned"),
        ])
        #expect(same.status == 0, "--weights naming the model's own file is accepted: \(same.stderr)")
    }

    @Test("evaluate --images extracts with workers and gives what evaluate --features gives, for both model kinds")
    func evaluateOnImages() throws {
        let fixture = try DistributedFixture("ft-use-evaluate", imagesPerClass: 3, validationPerClass: 2)
        defer { fixture.directory.remove() }
        let (top, fineTuned) = try models(fixture)
        let cache = ["--cache-dir", fixture.directory.file("cache-evaluate")]
        // A top model: its features are the VGG16 file's.
        let fromFeatures = try evaluation(
            fixture, ["--features", fixture.directory.file("features.h5"), "--model", top])
        let fromImages = try evaluation(
            fixture,
            ["--images", fixture.validation, "--model", top, "--weights", fixture.weights, "--workers", "2"] + cache)
        #expect(fromFeatures != nil && fromFeatures == fromImages)
        // A fine-tuned model: its own convolution weights, no --weights.
        let tunedFeatures = fixture.directory.file("tuned-validation.h5")
        let extract = try fixture.runCoordinator(
            [
                "extract", "--train", fixture.validation, "--model", fineTuned, "--output", tunedFeatures, "--workers",
                "1",
            ] + cache)
        #expect(extract.status == 0, "\(extract.stderr)")
        let tunedFromFeatures = try evaluation(
            fixture, ["--features", tunedFeatures, "--split", "train", "--model", fineTuned])
        let tunedFromImages = try evaluation(fixture, ["--images", fixture.validation, "--model", fineTuned] + cache)
        #expect(tunedFromFeatures != nil && tunedFromFeatures == tunedFromImages)
        #expect(tunedFromImages != fromImages, "the fine-tuned block5 gives other probabilities")
        // The text output names the image directory.
        let text = try fixture.startCoordinator(
            ["evaluate", "--images", fixture.validation, "--model", fineTuned] + cache)
        #expect(text.wait(timeout: 120) == 0, "\(text.stderr)")
        #expect(text.stdout.hasPrefix("\(fixture.validation): 6 rows"), "\(text.stdout.prefix(300))")

        // Refusals: other classes, other weights.
        let twoClasses = fixture.directory.file("two-classes")
        for name in ["cat", "dog"] {
            try FileManager.default.createDirectory(atPath: twoClasses + "/" + name, withIntermediateDirectories: true)
            try FileManager.default.copyItem(
                atPath: fixture.validation + "/\(name)/img000.ppm", toPath: twoClasses + "/\(name)/img000.ppm")
        }
        let classes = try fixture.runCoordinator(["evaluate", "--images", twoClasses, "--model", fineTuned] + cache)
        #expect(classes.status == 1)
        #expect(classes.stderr.contains("has classes [cat, dog]"), "\(classes.stderr)")
        let otherWeights = fixture.directory.file("other-weights.h5")
        try FileManager.default.copyItem(atPath: fineTuned, toPath: otherWeights)
        let weights = try fixture.runCoordinator(
            ["evaluate", "--images", fixture.validation, "--model", top, "--weights", otherWeights] + cache)
        #expect(weights.status == 1)
        #expect(weights.stderr.contains("use the weights the features came from"), "\(weights.stderr)")
        let usage = try fixture.runCoordinator(["evaluate", "--model", top])
        #expect(usage.status == 2)
    }

    @Test("report takes a fine-tuned model with features extracted by extract --model")
    func reportOnFineTuned() throws {
        let fixture = try DistributedFixture("ft-use-report", imagesPerClass: 3, validationPerClass: 1)
        defer { fixture.directory.remove() }
        let (_, fineTuned) = try models(fixture)
        let features = fixture.directory.file("tuned.h5")
        let extract = try fixture.runCoordinator([
            "extract", "--train", fixture.train, "--validation", fixture.validation, "--model", fineTuned,
            "--output", features, "--workers", "1", "--cache-dir", fixture.directory.file("cache"),
        ])
        #expect(extract.status == 0, "\(extract.stderr)")
        let page = fixture.directory.file("report.html")
        let report = try fixture.runCoordinator([
            "report", "--features", features, "--model", fineTuned, "--output", page, "--images", fixture.validation,
        ])
        #expect(report.status == 0, "\(report.stderr)")
        let html = (try? String(contentsOfFile: page, encoding: .utf8)) ?? ""
        #expect(html.contains("fine-tuned model"))
    }
}
