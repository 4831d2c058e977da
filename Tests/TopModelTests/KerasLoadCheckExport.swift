import Foundation
import HDF5
import Testing

@testable import TopModel

/// Writes a trained MODEL.h5 and inputs with the Swift model's probabilities for `keras_load_check.py`.
/// Runs only when TOPMODEL_KERAS_CHECK_DIR names a directory (a development check with tf_keras).
@Suite("Keras load check export")
struct KerasLoadCheckExport {
    static let directory = ProcessInfo.processInfo.environment["TOPMODEL_KERAS_CHECK_DIR"]

    @Test("export a trained model and its predictions for tf_keras", .enabled(if: directory != nil))
    func export() throws {
        let directory = try #require(Self.directory)
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let train = try blobs(rows: 300, classes: 3, featureShape: [2, 2, 8], noise: 1.0, seed: 1)
        var options = TrainingOptions()
        options.epochs = 5
        options.batchSize = 20
        let result = try TopModelTrainer.train(
            train: train, validation: nil, classNames: ["cat", "dog", "owl"], provenance: testProvenance,
            options: options)
        try result.model.save(to: directory + "/MODEL.h5")
        let inputs = try blobs(rows: 50, classes: 3, featureShape: [2, 2, 8], noise: 1.5, seed: 8)
        let probabilities = try result.model.probabilities(features: inputs.features)
        let file = try HDF5File.create(directory + "/check_inputs.h5")
        defer { file.close() }
        _ = try file.root.write("X", inputs.features, shape: [50, 2, 2, 8])
        _ = try file.root.write("probabilities", probabilities, shape: [50, 3])
        #expect(try TopModel.load(directory + "/MODEL.h5") == result.model)
    }
}
