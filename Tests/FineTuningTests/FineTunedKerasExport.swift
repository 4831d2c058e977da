import FineTuning
import Foundation
import HDF5
import TestSupport
import Testing

/// Writes a fine-tuned FINETUNED.h5 and Bottleneck's probabilities for `keras_finetuned_check.py` (development
/// check against tf_keras). Runs only when FINETUNED_KERAS_CHECK_DIR names a directory; says so otherwise.
@Suite("FINETUNED.h5 export for the Keras load check")
struct FineTunedKerasExport {
    @Test("writes FINETUNED.h5 and check.h5 into FINETUNED_KERAS_CHECK_DIR")
    func export() throws {
        guard let directory = ProcessInfo.processInfo.environment["FINETUNED_KERAS_CHECK_DIR"] else {
            print("skipped: FINETUNED_KERAS_CHECK_DIR is not set (the check needs tf_keras, run by hand)")
            return
        }
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let (images, top, weights) = try FineTunerTests.fixture()
        var options = FineTuningOptions()
        options.epochs = 2
        options.batchSize = 3
        let model = try FineTuner(weights: weights, topModel: top, options: options).run(
            train: images, validation: nil, checkpointPath: nil
        ).model
        try model.save(to: directory + "/FINETUNED.h5")
        let fixture = try HDF5File.open(FineTunerTests.fixturePath)
        let input = try fixture.root.dataset("finetune/input").read(Float.self)
        fixture.close()
        let probabilities = try model.probabilities(input: input, count: images.count)
        let check = try HDF5File.create(directory + "/check.h5")
        _ = try check.root.write("input", input, shape: [images.count, 48, 48, 3])
        _ = try check.root.write("probabilities", probabilities, shape: [images.count, 3])
        check.close()
    }
}
