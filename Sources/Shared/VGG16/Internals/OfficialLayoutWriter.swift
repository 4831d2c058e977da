import FileIntegrity
import Foundation
import HDF5

/// Writes `VGG16Weights` in the official Keras notop layout.
enum OfficialLayoutWriter {
    /// Writes under a temporary name and renames it to `path` when whole (`AtomicFile.publish`).
    static func write(_ weights: VGG16Weights, to path: String) throws {
        let temporary = AtomicFile.temporaryPath(for: path)
        do {
            let file = try HDF5File.create(temporary)
            defer { file.close() }
            let root = file.root
            try root.attributes.set("layer_names", strings: VGG16Weights.layerNamesWithPooling)
            var convs = weights.layers.makeIterator()
            for name in VGG16Weights.layerNamesWithPooling {
                let group = try root.createGroup(name)
                guard name.contains("_conv"), let layer = convs.next() else {
                    // Keras reads `weight_names` of every listed layer; pooling layers have none.
                    do { try group.attributes.set("weight_names", strings: []) } catch {
                        try group.attributes.set("weight_names", ints: [])
                    }
                    continue
                }
                let kernelName = "\(name)_W_1:0"
                let biasName = "\(name)_b_1:0"
                try group.attributes.set("weight_names", strings: [kernelName, biasName])
                _ = try group.write(kernelName, layer.kernel, shape: [3, 3, layer.inChannels, layer.outChannels])
                _ = try group.write(biasName, layer.bias, shape: [layer.outChannels])
            }
            try file.flush()
            try file.closeChecked()
        } catch {
            unlink(temporary)
            throw WeightsError(path: path, message: "cannot write weights (\(error))")
        }
        do { try AtomicFile.publish(temporary, as: path) } catch {
            throw WeightsError(path: path, message: "cannot write weights (\(error))")
        }
    }

    /// Whether `path` is a weights file of the layouts with a root `layer_names` naming VGG16's first conv
    /// layer: what `generate-weights` writes and the official Keras files. Reads only the attribute.
    static func isWeightsFile(_ path: String) -> Bool {
        guard HDF5File.isHDF5(path), let file = try? HDF5File.open(path) else { return false }
        defer { file.close() }
        let attributes = file.root.attributes
        guard attributes.contains("layer_names"), let names = try? attributes.strings("layer_names") else {
            return false
        }
        return names.contains("block1_conv1")
    }
}
