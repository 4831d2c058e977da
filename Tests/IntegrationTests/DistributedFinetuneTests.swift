import Foundation
import HDF5
import TestSupport
import Testing

/// `finetune --workers/--bind`: chunks of each batch computed by real worker processes over real sockets,
/// narrow weights, small images.
@Suite("finetune across workers", .enabled(if: BuiltExecutables.available, "needs the built executables"))
struct DistributedFinetuneTests {
    /// A fixture with a top model trained on its block5_pool features.
    func prepared(_ name: String, validationPerClass: Int = 1) throws -> (DistributedFixture, model: String) {
        let fixture = try DistributedFixture(name, imagesPerClass: 4, validationPerClass: validationPerClass)
        let extract = try fixture.runCoordinator(fixture.extractArguments("features.h5", ["--workers", "1"]))
        #expect(extract.status == 0, "\(extract.stderr)")
        let model = fixture.directory.file("model.h5")
        let train = try fixture.runCoordinator([
            "train", "--features", fixture.directory.file("features.h5"), "--output", model, "--epochs", "1",
        ])
        #expect(train.status == 0, "\(train.stderr)")
        return (fixture, model)
    }

    func arguments(_ fixture: DistributedFixture, model: String, output: String, augment: String) -> [String] {
        [
            "finetune", "--train", fixture.train, "--validation", fixture.validation, "--weights", fixture.weights,
            "--top-model", model, "--output", fixture.directory.file(output), "--epochs", "2", "--batch-size", "5",
            "--chunk-size", "2", "--augment", augment, "--seed", "5",
        ]
    }

    func bytes(_ path: String) -> Data? { FileManager.default.contents(atPath: path) }

    @Test(
        "the fine-tuned model is the same bytes in one process and with 1, 2 or 3 workers (augmented, plain, from block5_conv2)"
    )
    func sameBytesForAnyWorkerCount() throws {
        let (fixture, model) = try prepared("finetune-workers")
        defer { fixture.directory.remove() }
        for (augment, extra) in [
            ("rotation=10,zoom=0.1,horizontal-flip", [String]()), ("none", []),
            ("width-shift=3,horizontal-flip", ["--trainable-from", "block5_conv2"]),
        ] {
            let tag = augment == "none" ? "plain" : extra.isEmpty ? "aug" : "conv2"
            let alone = try fixture.runCoordinator(
                arguments(fixture, model: model, output: "\(tag)-0.h5", augment: augment) + extra, timeout: 300)
            #expect(alone.status == 0, "\(alone.stderr)")
            let reference = bytes(fixture.directory.file("\(tag)-0.h5"))
            #expect(reference != nil)
            for workers in 1...3 {
                let output = "\(tag)-\(workers).h5"
                let child = try fixture.startCoordinator(
                    arguments(fixture, model: model, output: output, augment: augment) + extra + [
                        "--workers", String(workers), "--cache-dir", fixture.directory.file("cache"),
                    ])
                let status = child.wait(timeout: 300)
                #expect(status == 0, "\(workers) workers: \(child.stderr)")
                #expect(child.stdout.contains("traffic over"), "\(child.stdout)")
                #expect(bytes(fixture.directory.file(output)) == reference, "\(augment), \(workers) workers")
            }
        }
    }

    @Test(
        "the next step's frozen pass run ahead of its weights, and the validation split over the workers, give the one-process model and history CSV bit for bit"
    )
    func pipelinedSameModelAndHistory() throws {
        // Four validation images per class: three validation batches of at most 5, split over the workers.
        let (fixture, model) = try prepared("finetune-pipelined", validationPerClass: 4)
        defer { fixture.directory.remove() }
        let augment = "shear=0.2,zoom=0.2,horizontal-flip"
        // Three epochs: the first batch of an epoch is handed out ahead too, across the validation between.
        let epochs = ["--epochs", "3"]
        let alone = try fixture.runCoordinator(
            arguments(fixture, model: model, output: "alone.h5", augment: augment) + epochs, timeout: 300)
        #expect(alone.status == 0, "\(alone.stderr)")
        let reference = (
            model: bytes(fixture.directory.file("alone.h5")),
            history: bytes(fixture.directory.file("alone.history.csv"))
        )
        #expect(reference.model != nil && reference.history != nil)
        let historyText = reference.history.flatMap { String(data: $0, encoding: .utf8) } ?? ""
        #expect(historyText.hasPrefix("epoch,accuracy,loss,val_accuracy,val_loss"), "\(historyText)")
        for workers in [1, 2] {
            let output = "pipelined-\(workers).h5"
            let child = try fixture.startCoordinator(
                arguments(fixture, model: model, output: output, augment: augment) + epochs + [
                    "--workers", String(workers), "--cache-dir", fixture.directory.file("cache"),
                ])
            let status = child.wait(timeout: 300)
            #expect(status == 0, "\(workers) workers: \(child.stderr)")
            #expect(bytes(fixture.directory.file(output)) == reference.model, "\(workers) workers: model")
            #expect(
                bytes(fixture.directory.file("pipelined-\(workers).history.csv")) == reference.history,
                "\(workers) workers: history")
            // The closing line counts the nodes whose frozen pass ran before their weights came.
            let ahead = child.stdout.firstMatch(of: /, (\d+) nodes' frozen pass ahead of their weights/)
            #expect(ahead.map { Int($0.1)! > 0 } == true, "\(workers) workers: \(child.stdout)")
        }
    }

    @Test("a worker killed with SIGKILL mid-step loses its chunks to another worker; the model is the same bytes")
    func workerKilledMidStep() throws {
        let (fixture, model) = try prepared("finetune-kill-worker")
        defer { fixture.directory.remove() }
        let augment = "shear=0.2,zoom=0.2,horizontal-flip"
        let alone = try fixture.runCoordinator(
            arguments(fixture, model: model, output: "alone.h5", augment: augment), timeout: 300)
        #expect(alone.status == 0, "\(alone.stderr)")
        let endpoint = "ipc://" + fixture.directory.file("tune.sock")
        let coordinator = try fixture.startCoordinator(
            arguments(fixture, model: model, output: "survived.h5", augment: augment) + [
                "--workers", "0", "--bind", endpoint, "--worker-timeout", "3",
            ])
        // The doomed worker dies on receiving its third chunk, holding it (and the one queued before it).
        let doomed = try fixture.startWorker(endpoint, ["--die-after-chunks", "3"], label: "doomed", shardDelayMs: 0)
        #expect(waitUntil(timeout: 120) { !doomed.isRunning }, "the worker's hook fired")
        let survivor = try fixture.startWorker(endpoint, label: "survivor")
        let status = coordinator.wait(timeout: 300)
        survivor.wait(timeout: 30)
        #expect(doomed.wasSignalled, "\(doomed.stderr)")
        #expect(status == 0, "\(coordinator.stderr)")
        #expect(
            coordinator.stderr.contains("its chunks go to others") && !coordinator.stdout.contains("(0 reassigned,"),
            "the coordinator noticed the dead worker: \(coordinator.stderr)\n\(coordinator.stdout)")
        let survived = bytes(fixture.directory.file("survived.h5"))
        #expect(survived != nil && survived == bytes(fixture.directory.file("alone.h5")))
    }

    @Test("a worker that lost the images it held leaves and registers again; its node is recomputed, same model")
    func workerLosingItsState() throws {
        let (fixture, model) = try prepared("finetune-forget")
        defer { fixture.directory.remove() }
        let augment = "none"
        let alone = try fixture.runCoordinator(
            arguments(fixture, model: model, output: "alone.h5", augment: augment), timeout: 300)
        #expect(alone.status == 0, "\(alone.stderr)")
        let endpoint = "ipc://" + fixture.directory.file("tune.sock")
        let coordinator = try fixture.startCoordinator(
            arguments(fixture, model: model, output: "again.h5", augment: augment) + [
                "--workers", "0", "--bind", endpoint,
            ])
        // One worker, one node per step: after step 3 (the last of epoch 1) it forgets every image, so the
        // first node of epoch 2, whose images it was sent before, cannot be computed.
        let worker = try fixture.startWorker(
            endpoint, ["--forget-images-after-chunks", "3"], label: "forgetful", shardDelayMs: 0)
        let status = coordinator.wait(timeout: 300)
        #expect(status == 0, "\(coordinator.stderr)")
        #expect(worker.wait(timeout: 60) == 0, "\(worker.stderr)")
        #expect(worker.stderr.contains("registering again"), "\(worker.stderr)")
        #expect(!coordinator.stdout.contains("(0 reassigned,"), "\(coordinator.stdout)")
        #expect(bytes(fixture.directory.file("again.h5")) == bytes(fixture.directory.file("alone.h5")))
    }

    @Test(
        "with CURVE, an authorized remote worker over TCP gives the one-process model; a stranger is refused"
    )
    func curveWorkers() throws {
        let (fixture, model) = try prepared("finetune-curve")
        defer { fixture.directory.remove() }
        let augment = "zoom=0.1,horizontal-flip"
        let alone = try fixture.runCoordinator(
            arguments(fixture, model: model, output: "alone.h5", augment: augment), timeout: 300)
        #expect(alone.status == 0, "\(alone.stderr)")
        let keys = fixture.directory.file("keys")
        let authorized = keys + "/authorized"
        try FileManager.default.createDirectory(atPath: authorized, withIntermediateDirectories: true)
        for name in ["coordinator", "worker-a", "stranger"] {
            let made = try fixture.runCoordinator(["keygen", keys + "/" + name])
            try #require(made.status == 0, "keygen \(name): \(made.stderr)")
        }
        try FileManager.default.copyItem(atPath: keys + "/worker-a.pub", toPath: authorized + "/worker-a.pub")
        let endpoint = "tcp://127.0.0.1:\(freeTCPPort())"
        let coordinator = try fixture.startCoordinator(
            arguments(fixture, model: model, output: "curve.h5", augment: augment) + [
                "--workers", "0", "--bind", endpoint, "--curve-key", keys + "/coordinator.key", "--authorized-workers",
                authorized,
            ])
        #expect(coordinator.waitForStderr("listening", timeout: 60), "\(coordinator.stderr)")
        let stranger = try fixture.startWorker(
            endpoint, ["--curve-key", keys + "/stranger.key", "--server-key", keys + "/coordinator.pub"],
            label: "stranger")
        let remote = try fixture.startWorker(
            endpoint, ["--curve-key", keys + "/worker-a.key", "--server-key", keys + "/coordinator.pub"],
            label: "worker-a")
        let status = coordinator.wait(timeout: 300)
        #expect(status == 0, "\(coordinator.stderr)")
        #expect(stranger.wait(timeout: 60).map { $0 != 0 } == true, "the stranger is refused: \(stranger.stderr)")
        #expect(remote.wait(timeout: 30) == 0, "\(remote.stderr)")
        #expect(coordinator.stdout.contains("(0 reassigned,"), "\(coordinator.stdout)")
        #expect(FileManager.default.contents(atPath: fixture.directory.file("curve.h5")) != nil)
        #expect(bytes(fixture.directory.file("curve.h5")) == bytes(fixture.directory.file("alone.h5")))
    }
}
