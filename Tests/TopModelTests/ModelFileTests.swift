import Foundation
import HDF5
import TestSupport
import Testing

@testable import TopModel

#if canImport(FoundationXML)
    import FoundationXML
#endif

@Suite("model file")
struct ModelFileTests {
    func trainedModel(classes: [String] = ["cat", "dog", "owl"]) throws -> TopModel {
        var r = TestRandom(21)
        let weights = try TopModelWeights(
            inputs: 32, hidden: 256, classes: classes.count, hiddenKernel: r.array(32 * 256), hiddenBias: r.array(256),
            outputKernel: r.array(256 * classes.count), outputBias: r.array(classes.count))
        return try TopModel(classNames: classes, featureShape: [2, 2, 8], provenance: testProvenance, weights: weights)
    }

    @Test("a saved model loads back identical: weights bit for bit, class names, feature shape, provenance")
    func roundTrip() throws {
        let dir = try TemporaryDirectory("topmodel")
        defer { dir.remove() }
        let model = try trainedModel(classes: ["cat", "dög", "owl with space"])
        try model.save(to: dir.file("MODEL.h5"))
        let loaded = try TopModel.load(dir.file("MODEL.h5"))
        #expect(loaded == model)
        #expect(loaded.weights.bytes == model.weights.bytes)
        #expect(
            loaded.summary.hasPrefix("3 classes (cat, dög, owl with space); features block5_pool [2, 2, 8] of 150x150"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir.path) == ["MODEL.h5"])
    }

    @Test("MODEL.h5 has the structure of a tf_keras save_weights file of the same Sequential")
    func kerasStructure() throws {
        let dir = try TemporaryDirectory("topmodel")
        defer { dir.remove() }
        try trainedModel().save(to: dir.file("MODEL.h5"))
        let ours = try HDF5File.open(dir.file("MODEL.h5")).root
        let keras = try HDF5File.open(fixturesDirectory() + "/keras/top_model_keras_save_weights.h5").root
        #expect(try ours.memberNames() == keras.memberNames())
        #expect(try ours.attributes.strings("layer_names") == keras.attributes.strings("layer_names"))
        let kerasRootAttributes = Set(try keras.attributes.names())
        #expect(kerasRootAttributes.isSubset(of: Set(try ours.attributes.names())))
        #expect(try ours.attributes.string("backend") == keras.attributes.string("backend"))
        #expect(try ours.attributes.string("keras_version").hasPrefix("2."))
        for layer in try keras.memberNames() {
            #expect(
                try ours.group(layer).attributes.strings("weight_names")
                    == keras.group(layer).attributes.strings("weight_names"))
            for weightName in try keras.group(layer).attributes.strings("weight_names") {
                let path = "\(layer)/\(weightName)"
                let k = try keras.dataset(path)
                let o = try ours.dataset(path)
                #expect(o.shape == k.shape, "\(path)")
                #expect(o.isFloat && k.isFloat, "\(path)")
            }
        }
        let a = ours.attributes
        #expect(try a.strings("bottleneck_class_names") == ["cat", "dog", "owl"])
        #expect(try a.ints("bottleneck_feature_shape") == [2, 2, 8])
        #expect(try a.string("bottleneck_feature_layer") == "block5_pool")
        #expect(try a.int("bottleneck_image_height") == 150 && a.int("bottleneck_image_width") == 150)
        #expect(try a.string("bottleneck_preprocess") == "caffe" && a.string("bottleneck_interpolation") == "nearest")
        #expect(try a.string("bottleneck_weights_sha256") == testProvenance.weightsSHA256)
    }

    @Test(
        "loading something that is not a top model fails naming the file and what is wrong",
        arguments: [
            ("missing.h5", "no such file"),
            ("keras/weights/not-hdf5.h5", "not an HDF5 file"),
            ("keras/top_model_keras_save_weights.h5", "without the bottleneck_* attributes"),
            ("keras/golden.h5", "layer_names"),
            ("keras/weights/notop-official.h5", "expected flatten, dense, dropout, dense_1"),
        ])
    func badFiles(file: String, expected: String) throws {
        let path = fixturesDirectory() + "/" + file
        let error = try #require(throws: TopModelError.self) { try TopModel.load(path) }
        #expect(error.description.contains(path), "\(error)")
        #expect(error.description.contains(expected), "\(error)")
    }

    @Test("a model file whose kernel does not fit its feature shape is refused")
    func inconsistentFile() throws {
        let dir = try TemporaryDirectory("topmodel")
        defer { dir.remove() }
        try trainedModel().save(to: dir.file("MODEL.h5"))
        let file = try HDF5File.open(dir.file("MODEL.h5"), writable: true)
        try file.root.attributes.set("bottleneck_feature_shape", ints: [4, 4, 512])
        file.close()
        let error = try #require(throws: TopModelError.self) { try TopModel.load(dir.file("MODEL.h5")) }
        #expect(error.description.contains("flattens to 8192"), "\(error)")
    }

    @Test("history CSV has Keras CSVLogger's columns and the SVG chart has two panels")
    func history() throws {
        let dir = try TemporaryDirectory("topmodel")
        defer { dir.remove() }
        let history = TrainingHistory(records: [
            EpochRecord(epoch: 1, loss: 1.0, accuracy: 0.5, valLoss: 0.9, valAccuracy: 0.6, seconds: 1),
            EpochRecord(epoch: 2, loss: 0.5, accuracy: 0.75, valLoss: 0.8, valAccuracy: 0.7, seconds: 1),
        ])
        #expect(history.csv == "epoch,accuracy,loss,val_accuracy,val_loss\n0,0.5,1.0,0.6,0.9\n1,0.75,0.5,0.7,0.8\n")
        let paths = try history.write(nextToModel: dir.file("MODEL.h5"))
        #expect(paths.csv == dir.file("MODEL.history.csv") && paths.svg == dir.file("MODEL.history.svg"))
        let svg = try String(contentsOfFile: paths.svg, encoding: .utf8)
        #expect(svg.hasPrefix("<svg") && svg.contains(">loss</text>") && svg.contains(">accuracy</text>"))
        #expect(svg.components(separatedBy: "<polyline").count - 1 == 4)
        let xml = try XMLDocument(data: Data(svg.utf8))
        #expect(xml.rootElement()?.name == "svg")
        let noValidation = TrainingHistory(records: [
            EpochRecord(epoch: 1, loss: 1, accuracy: 0.5, valLoss: nil, valAccuracy: nil, seconds: 1)
        ])
        #expect(noValidation.csv == "epoch,accuracy,loss\n0,0.5,1.0\n")
    }
}
