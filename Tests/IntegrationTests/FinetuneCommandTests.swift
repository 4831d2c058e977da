import Foundation
import HDF5
import TestSupport
import Testing

/// `bottleneck-coordinator finetune` end to end on real files: extract → train → finetune, narrow weights.
@Suite("finetune command", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct FinetuneCommandTests {
    /// The trained tensors of a FINETUNED.h5: block5's kernels and the top model.
    func trained(_ path: String) throws -> [[Float]] {
        let file = try HDF5File.open(path)
        defer { file.close() }
        return try [
            "block5_conv1/block5_conv1/kernel:0", "block5_conv3/block5_conv3/bias:0", "sequential/dense/kernel:0",
            "sequential/dense_1/bias:0",
        ].map { try file.root.dataset($0).read(Float.self) }
    }

    @Test("extract, train, then finetune writes a Keras-layout model and its history; the same seed, the same model")
    func pipeline() throws {
        let fixture = try DistributedFixture("finetune", imagesPerClass: 4, validationPerClass: 1)
        defer { fixture.directory.remove() }
        let extract = try fixture.runCoordinator(fixture.extractArguments("features.h5", ["--workers", "1"]))
        #expect(extract.status == 0, "\(extract.stderr)")
        let model = fixture.directory.file("model.h5")
        let train = try fixture.runCoordinator([
            "train", "--features", fixture.directory.file("features.h5"), "--output", model, "--epochs", "2",
        ])
        #expect(train.status == 0, "\(train.stderr)")
        func finetune(_ output: String, _ extra: [String] = []) throws -> (
            status: Int32?, stderr: String, stdout: String
        ) {
            let child = try fixture.startCoordinator(
                [
                    "finetune", "--train", fixture.train, "--validation", fixture.validation, "--weights",
                    fixture.weights, "--top-model", model, "--output", fixture.directory.file(output), "--epochs", "2",
                    "--batch-size", "4", "--augment", "rotation=10,zoom=0.1,horizontal-flip", "--seed", "3",
                ] + extra)
            let status = child.wait(timeout: 120)
            return (status, child.stderr, (try? String(contentsOfFile: child.stdoutPath, encoding: .utf8)) ?? "")
        }
        let first = try finetune("a.h5")
        #expect(first.status == 0, "\(first.stderr)")
        let second = try finetune("b.h5")
        #expect(second.status == 0, "\(second.stderr)")
        let a = fixture.directory.file("a.h5")
        #expect(try trained(a) == trained(fixture.directory.file("b.h5")))
        let file = try HDF5File.open(a)
        let layers = try file.root.attributes.strings("layer_names")
        file.close()
        #expect(layers.first == "input_1" && layers.last == "sequential" && layers.count == 20)
        #expect(FileManager.default.fileExists(atPath: fixture.directory.file("a.history.csv")))
        #expect(!FileManager.default.fileExists(atPath: a + ".checkpoint.h5"), "the checkpoint is removed at the end")
        #expect(first.stdout.contains("skipped dog/broken.ppm"), "\(first.stdout)")
        #expect(first.stdout.contains("Epoch 2/2"), "\(first.stdout)")
        // In-epoch progress through the renderer (plain lines on a non-terminal stderr; the last one always).
        #expect(first.stderr.contains("finetune: 24/24 images (100%)"), "\(first.stderr)")
        // predict reads the fine-tuned model, its own conv weights included (no --weights).
        let image = fixture.train + "/cat/img000.ppm"
        let predict = try fixture.startCoordinator(["predict", "--model", a, "--json", image])
        #expect(predict.wait(timeout: 120) == 0, "\(predict.stderr)")
        let answers = try JSONSerialization.jsonObject(with: Data(predict.stdout.utf8)) as? [[String: Any]]
        let predictions = answers?.first?["predictions"] as? [[String: Any]]
        #expect(predictions?.count == 3, "\(predict.stdout)")
        #expect(Set(predictions?.compactMap { $0["class"] as? String } ?? []) == ["cat", "dog", "fox"])
        let bad = try finetune("c.h5", ["--augment", "zoom=abc"])
        #expect(bad.status == 2)
        #expect(bad.stderr.contains("'zoom=abc': expected zoom=RANGE (a number, 0 or more)"), "\(bad.stderr)")
    }

    @Test("a run killed with SIGKILL after a checkpoint resumes from it and ends with the uninterrupted run's model")
    func killedAndResumed() throws {
        let fixture = try DistributedFixture("finetune-kill", imagesPerClass: 3, validationPerClass: 1)
        defer { fixture.directory.remove() }
        let extract = try fixture.runCoordinator(fixture.extractArguments("features.h5", ["--workers", "1"]))
        #expect(extract.status == 0, "\(extract.stderr)")
        let model = fixture.directory.file("model.h5")
        let train = try fixture.runCoordinator([
            "train", "--features", fixture.directory.file("features.h5"), "--output", model, "--epochs", "1",
        ])
        #expect(train.status == 0, "\(train.stderr)")
        let epochs = 300
        func arguments(_ output: String) -> [String] {
            [
                "finetune", "--train", fixture.train, "--weights", fixture.weights, "--top-model", model, "--output",
                fixture.directory.file(output), "--epochs", String(epochs), "--batch-size", "4", "--seed", "9",
                "--learning-rate", "1e-6",
            ]
        }
        let whole = try fixture.runCoordinator(arguments("whole.h5"), timeout: 600)
        #expect(whole.status == 0, "\(whole.stderr)")
        let output = fixture.directory.file("killed.h5")
        let checkpoint = output + ".checkpoint.h5"
        let victim = try fixture.startCoordinator(arguments("killed.h5"))
        let sawCheckpoint = waitUntil(timeout: 120) { FileManager.default.fileExists(atPath: checkpoint) }
        victim.signal(SIGKILL)
        victim.wait(timeout: 30)
        #expect(sawCheckpoint)
        #expect(victim.wasSignalled)
        #expect(!FileManager.default.fileExists(atPath: output), "killed before the end")
        let file = try HDF5File.open(checkpoint)
        let done = try file.root.attributes.int("epochs_done")
        file.close()
        #expect(done >= 1 && done < epochs)
        let rerun = try fixture.startCoordinator(arguments("killed.h5"))
        let status = rerun.wait(timeout: 600)
        #expect(status == 0, "\(rerun.stderr)")
        let firstEpochLine = rerun.stdout.split(separator: "\n").first { $0.hasPrefix("Epoch ") }
        #expect(firstEpochLine?.hasPrefix("Epoch \(done + 1)/\(epochs)") == true, "\(rerun.stdout.prefix(600))")
        #expect(try trained(output) == trained(fixture.directory.file("whole.h5")))
    }
}
