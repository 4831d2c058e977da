import FileIntegrity
import Foundation
import HDF5
import TopModel

/// The state of a fine-tuning run after a whole epoch: the trainable tensors, the optimizer's momentum and
/// step count, the number of epochs done, the history, early stopping's state (best weights included), and
/// fingerprints of the settings and the starting weights. The
/// random state is the seed (in the settings) and the epoch: every draw is a pure function of them.
///
/// An HDF5 file (`/tensor_K`, `/momentum_K` float32, root attributes) written under a temporary name,
/// fsynced and renamed into place, so a kill at any moment leaves either the previous checkpoint or this one.
struct FineTuningCheckpoint {
    var epochsDone: Int
    var fingerprint: String
    var startSHA256: String
    var tensors: [[Float]]
    var slots: OptimizerSlots
    /// The figures of every epoch done (wall-clock seconds included; they do not affect the weights).
    var history: [EpochRecord]
    /// Early stopping's state (best epoch and its weights, wait, stopped).
    var stopping: EarlyStoppingState

    static let format = "bottleneck-finetuning-checkpoint"

    func save(to path: String) throws {
        let temporary = AtomicFile.temporaryPath(for: path)
        do {
            let file = try HDF5File.create(temporary)
            defer { file.close() }
            let a = file.root.attributes
            try a.set("format", string: Self.format)
            try a.set("epochs_done", int: epochsDone)
            try a.set("iterations", int: slots.iterations)
            try a.set("settings", string: fingerprint)
            try a.set("start_sha256", string: startSHA256)
            try a.set("tensors", int: tensors.count)
            let historyJSON = String(decoding: try JSONEncoder().encode(history), as: UTF8.self)
            try a.set("history", string: historyJSON)
            try a.set("stopping_best_epoch", int: stopping.bestEpoch)
            try a.set("stopping_wait", int: stopping.wait)
            try a.set("stopping_stopped", int: stopping.stopped ? 1 : 0)
            if let bestLoss = stopping.bestLoss { try a.set("stopping_best_loss", double: bestLoss) }
            for (k, tensor) in (stopping.bestTensors ?? []).enumerated() {
                _ = try file.root.write("best_tensor_\(k)", tensor, shape: [tensor.count])
            }
            for (k, tensor) in tensors.enumerated() {
                _ = try file.root.write("tensor_\(k)", tensor, shape: [tensor.count])
                _ = try file.root.write("momentum_\(k)", slots.first[k], shape: [slots.first[k].count])
            }
            try file.flush()
        } catch {
            try? FileManager.default.removeItem(atPath: temporary)
            throw FineTuningError.output(path: path, reason: "cannot write the checkpoint: \(error)")
        }
        do { try AtomicFile.publish(temporary, as: path) } catch {
            throw FineTuningError.output(path: path, reason: "\(error)")
        }
    }

    static func load(_ path: String) throws -> FineTuningCheckpoint {
        do {
            let file = try HDF5File.open(path)
            defer { file.close() }
            let a = file.root.attributes
            guard try a.string("format") == format else {
                throw FineTuningError.output(path: path, reason: "not a fine-tuning checkpoint")
            }
            let count = try a.int("tensors")
            var tensors: [[Float]] = []
            var momentum: [[Float]] = []
            for k in 0..<count {
                tensors.append(try file.root.dataset("tensor_\(k)").read(Float.self))
                momentum.append(try file.root.dataset("momentum_\(k)").read(Float.self))
            }
            var stopping = EarlyStoppingState()
            stopping.bestEpoch = try a.int("stopping_best_epoch")
            stopping.wait = try a.int("stopping_wait")
            stopping.stopped = try a.int("stopping_stopped") != 0
            if a.contains("stopping_best_loss") {
                stopping.bestLoss = try a.double("stopping_best_loss")
                stopping.bestTensors = try (0..<count).map {
                    try file.root.dataset("best_tensor_\($0)").read(Float.self)
                }
            }
            return FineTuningCheckpoint(
                epochsDone: try a.int("epochs_done"), fingerprint: try a.string("settings"),
                startSHA256: try a.string("start_sha256"), tensors: tensors,
                slots: OptimizerSlots(
                    iterations: try a.int("iterations"), first: momentum, second: tensors.map { _ in [] }),
                history: try JSONDecoder().decode([EpochRecord].self, from: Data(try a.string("history").utf8)),
                stopping: stopping)
        } catch let error as FineTuningError {
            throw error
        } catch {
            throw FineTuningError.output(path: path, reason: "unreadable checkpoint: \(error)")
        }
    }
}
