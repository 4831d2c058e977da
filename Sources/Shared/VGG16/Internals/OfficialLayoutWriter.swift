import FileIntegrity
import Foundation
import HDF5

/// Writes `VGG16Weights` in the official Keras notop layout.
enum OfficialLayoutWriter {
    static func write(_ weights: VGG16Weights, to path: String) throws {
        do {
            let file = try HDF5File.create(path)
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
        } catch let error as WeightsError {
            throw error
        } catch {
            throw WeightsError(path: path, message: "cannot write weights (\(error))")
        }
    }
}
