import BLAS
import Foundation
import HDF5
import Storage
import TestSupport
import Testing
import VGG16

#if canImport(Glibc)
    import Glibc
#endif

/// Runs a built executable to its end, returning its status, stdout and stderr.
private func runExecutable(
    _ executable: String, _ arguments: [String], in directory: String, label: String, timeout: Double = 300
) throws -> (status: Int32?, stdout: String, stderr: String) {
    let child = try ChildProcess(executable, arguments, logDirectory: directory, label: label)
    let status = child.wait(timeout: timeout)
    return (status, child.stdout, child.stderr)
}

/// The largest |a − b| over the largest |b|.
private func relativeError(_ a: [Float], _ b: [Float]) -> Float {
    zip(a, b).map { abs($0 - $1) }.max()! / max(b.map(abs).max() ?? 0, .leastNormalMagnitude)
}

/// `--precision bf16` end to end: `extract` (local and remote workers, resume), the feature and model files,
/// `train`, `evaluate` and `predict` at the model's precision.
@Suite(
    "Precision: bf16 extraction end to end",
    .enabled(if: BuiltExecutables.available, "needs the built executables"),
    .enabled(if: CPUFeatures.hasAVX512BF16, "skipped: this CPU lacks avx512_bf16 (or AVX-512 F/BW/VL)"))
struct BF16ExtractionTests {
    @Test("extract --precision bf16 gives block5_pool features within 2e-2 of fp32 and Keras on the golden tree")
    func goldenTreeWithinBound() throws {
        let directory = try TemporaryDirectory("bf16-golden")
        defer { directory.remove() }
        let fp32 = try KerasGoldenExtractTests.extract(
            weights: "notop-official.h5", extra: ["--image-size", "48"], in: directory)
        let bf16 = try KerasGoldenExtractTests.extract(
            weights: "notop-official.h5", extra: ["--image-size", "48", "--precision", "bf16"], in: directory)
        #expect(fp32.attributes.precision == "fp32")
        #expect(bf16.attributes.precision == "bf16")
        let root = try HDF5File.open(bf16.path).root.attributes
        #expect(try root.string("precision") == "bf16")
        #expect(try root.string("compute_precision") == "bf16")
        let ours = try bf16.split("train")
        let reference = try fp32.split("train")
        #expect(try ours.filenames() == reference.filenames())
        let features = try ours.readFeatures(rows: 0..<ours.count)
        let againstFP32 = relativeError(features, try reference.readFeatures(rows: 0..<reference.count))
        var againstKeras: Float = 0
        // The same rows, names and labels as Keras; the features to the bf16 bound rather than fp32's 1e-4.
        let golden = try KerasGoldenExtractTests.Golden(dataset: "features_caffe")
        let kept = golden.filenames.indices.filter {
            golden.loadable[$0] == 1 && !golden.filenames[$0].hasSuffix(".TIF")
        }
        let keras = kept.flatMap { golden.features[($0 * golden.rowSize)..<(($0 + 1) * golden.rowSize)] }
        againstKeras = relativeError(features, keras)
        print("extract bf16 48x48 block5_pool: largest error \(againstFP32) of fp32, \(againstKeras) of Keras")
        #expect(againstFP32 <= 2e-2)
        #expect(againstKeras <= 2e-2)
        #expect(againstFP32 > 0, "the bf16 path must actually round")
    }

    @Test("a remote worker of another precision is refused, naming the precision of the job and of the worker")
    func workerOfAnotherPrecisionRefused() throws {
        let fixture = try DistributedFixture("bf16-remote", imagesPerClass: 2, validationPerClass: 1)
        defer { fixture.directory.remove() }
        let port = freeTCPPort()
        let coordinator = try fixture.startCoordinator(
            fixture.extractArguments(
                "out.h5",
                ["--workers", "0", "--bind", "tcp://127.0.0.1:\(port)", "--precision", "bf16", "--worker-timeout", "3"])
        )
        defer { if coordinator.isRunning { coordinator.signal(SIGKILL) } }
        let fp32Worker = try fixture.startWorker("tcp://127.0.0.1:\(port)", label: "fp32-worker")
        let status = fp32Worker.wait(timeout: 60)
        #expect(status != 0 && status != nil, "\(fp32Worker.stderr)")
        #expect(fp32Worker.stderr.contains("precision (job bf16, worker fp32)"), "\(fp32Worker.stderr)")
        // A worker of the job's precision computes it.
        let bf16Worker = try fixture.startWorker(
            "tcp://127.0.0.1:\(port)", ["--precision", "bf16"], label: "bf16-worker")
        #expect(coordinator.wait(timeout: 120) == 0, "\(coordinator.stderr)")
        bf16Worker.wait(timeout: 30)
        #expect(try FeatureFile.open(fixture.directory.file("out.h5")).attributes.precision == "bf16")
    }

    @Test("a resume in another precision is refused naming the difference; --restart starts over")
    func resumeInAnotherPrecisionRefused() throws {
        let fixture = try DistributedFixture("bf16-resume")
        defer { fixture.directory.remove() }
        let arguments = fixture.extractArguments("out.h5", ["--workers", "1", "--shard-size", "2"])
        let slowWorker = try BuiltExecutables.slowWorkerScript(delayMilliseconds: 250, in: fixture.directory.path)
        let first = try fixture.startCoordinator(arguments, environment: ["BOTTLENECK_WORKER": slowWorker])
        #expect(waitUntil(timeout: 60) { fixture.partsCount("out.h5") >= 2 }, "the job got going")
        first.signal(SIGKILL)
        first.wait(timeout: 10)
        let refused = try fixture.runCoordinator(arguments + ["--precision", "bf16"])
        #expect(refused.status == 1, "\(refused.stderr)")
        #expect(refused.stderr.contains("precision (was fp32, now bf16)"), "\(refused.stderr)")
        let restarted = try fixture.runCoordinator(arguments + ["--precision", "bf16", "--restart"])
        #expect(restarted.status == 0, "\(restarted.stderr)")
        let attributes = try HDF5File.open(fixture.directory.file("out.h5")).root.attributes
        #expect(try attributes.string("precision") == "bf16")
    }

    @Test(
        "a top model trained on bf16 features classifies within 1 point of fp32's; predict and evaluate use its precision"
    )
    func classificationWithinOnePoint() throws {
        let directory = try TemporaryDirectory("bf16-classes")
        defer { directory.remove() }
        let train = directory.file("data/train")
        let validation = directory.file("data/validation")
        // Three colours, each with a per-image texture: separable classes in real JPEGs.
        for (root, perClass) in [(train, 10), (validation, 6)] {
            for (k, name) in ["red", "green", "blue"].enumerated() {
                for i in 0..<perClass {
                    let rgb = PipelineFixture.pattern(
                        colour: k, index: i + (root == train ? 0 : 50), width: 48, height: 40)
                    try ImageFiles.write(
                        try ImageFiles.jpeg(rgb, width: 48, height: 40, channels: 3), to: root + "/\(name)/\(i).jpg")
                }
            }
        }
        let weights = directory.file("weights.h5")
        try VGG16Weights.generated(widths: PipelineFixture.narrowWidths, seed: 3).writeOfficialLayout(to: weights)
        let coordinator = BuiltExecutables.coordinator
        var accuracy: [String: Double] = [:]
        for precision in ["fp32", "bf16"] {
            let features = directory.file("features-\(precision).h5")
            let model = directory.file("model-\(precision).h5")
            let extract = try runExecutable(
                coordinator,
                [
                    "extract", "--train", train, "--validation", validation, "--weights", weights, "--output", features,
                    "--image-size", "32", "--preprocess", "caffe", "--workers", "1", "--precision", precision,
                    "--cache-dir", directory.file("cache"), "--log-level", "warning",
                ], in: directory.path, label: "extract-\(precision)")
            #expect(extract.status == 0, "\(extract.stderr)")
            let trained = try runExecutable(
                coordinator,
                [
                    "train", "--features", features, "--output", model, "--epochs", "30", "--batch-size", "8",
                    "--optimizer", "adam", "--seed", "1",
                ],
                in: directory.path, label: "train-\(precision)")
            #expect(trained.status == 0, "\(trained.stderr)")
            #expect(try HDF5File.open(model).root.attributes.string("bottleneck_precision") == precision)
            let evaluated = try runExecutable(
                coordinator, ["evaluate", "--features", features, "--model", model, "--json"], in: directory.path,
                label: "evaluate-\(precision)")
            #expect(evaluated.status == 0, "\(evaluated.stderr)")
            let json = try JSONSerialization.jsonObject(with: Data(evaluated.stdout.utf8)) as? [String: Any]
            accuracy[precision] = try #require(json?["accuracy"] as? Double)
        }
        print("validation accuracy: fp32 \(accuracy["fp32"]!), bf16 \(accuracy["bf16"]!)")
        #expect(accuracy["fp32"]! >= 0.9, "the classes are separable")
        #expect(abs(accuracy["bf16"]! - accuracy["fp32"]!) <= 0.01)

        // The bf16 model on fp32 features is refused, naming the precision.
        let mixed = try runExecutable(
            coordinator,
            ["evaluate", "--features", directory.file("features-fp32.h5"), "--model", directory.file("model-bf16.h5")],
            in: directory.path, label: "evaluate-mixed")
        #expect(mixed.status == 1)
        #expect(mixed.stderr.contains("precision bf16 (model) vs fp32 (features)"), "\(mixed.stderr)")

        // evaluate --images computes the images' features at the model's precision: the same accuracy as on
        // the bf16 feature file.
        let images = try runExecutable(
            coordinator,
            [
                "evaluate", "--images", validation, "--model", directory.file("model-bf16.h5"), "--json", "--workers",
                "1", "--cache-dir", directory.file("cache"), "--weights", weights,
            ], in: directory.path, label: "evaluate-images")
        #expect(images.status == 0, "\(images.stderr)")
        let json = try JSONSerialization.jsonObject(with: Data(images.stdout.utf8)) as? [String: Any]
        #expect(json?["accuracy"] as? Double == accuracy["bf16"])

        // predict computes at the model's precision: its probabilities are those of the bf16 features.
        let predicted = try runExecutable(
            coordinator,
            [
                "predict", "--model", directory.file("model-bf16.h5"), "--weights", weights, "--json",
                validation + "/red",
            ],
            in: directory.path, label: "predict")
        #expect(predicted.status == 0, "\(predicted.stderr)")
        #expect(predicted.stdout.contains("\"red\""))
    }
}

/// The refusal of bf16 on a CPU without avx512_bf16, seen on this CPU through the developer worker's
/// `--withhold-cpu-flag` (the same check, with the flag treated as missing).
@Suite("Precision: bf16 refused without the CPU flag", .enabled(if: BuiltExecutables.available))
struct BF16RefusalTests {
    @Test("a bf16 worker on a CPU without avx512_bf16 exits 1 naming the flag, before connecting")
    func workerRefusesNamingTheFlag() throws {
        let directory = try TemporaryDirectory("bf16-refusal")
        defer { directory.remove() }
        let run = try runExecutable(
            BuiltExecutables.dev,
            [
                "worker", "--connect", "tcp://127.0.0.1:\(freeTCPPort())", "--precision", "bf16",
                "--withhold-cpu-flag", "avx512_bf16", "--give-up-after", "5",
            ], in: directory.path, label: "dev-worker", timeout: 60)
        #expect(run.status == 1, "\(run.stderr)")
        #expect(run.stderr.contains("avx512_bf16"), "\(run.stderr)")
        #expect(run.stderr.contains("set the precision to fp32"), "\(run.stderr)")
    }
}
