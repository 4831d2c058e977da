import FileIntegrity
import Foundation
import HDF5

/// Reads the 13 VGG16 conv layers from an HDF5 file, choosing the layout from the file's structure:
/// root attribute `layer_names` (official Keras file or Keras 2 `save_weights`), root attribute `nb_layers`
/// (Theano era), or a root group `layers` (Keras 3 `.weights.h5`).
struct WeightsFileReader {
    let path: String

    static let expectedLayouts =
        "expected one of: official Keras layout with layer_names, Keras 2 save_weights, Keras 3 .weights.h5, "
        + "Theano-era nb_layers"
    static let expectedLayers = "expected the 13 VGG16 conv layers block1_conv1 … block5_conv3"
    /// Layers that exist in VGG19 and not in VGG16.
    static let vgg19OnlyLayers = ["block3_conv4", "block4_conv4", "block5_conv4"]

    /// A conv layer located in the file, before its data is read.
    struct LocatedLayer {
        /// For messages: "block3_conv2", or "block3_conv2 (layer_12)" for Theano.
        let label: String
        let kernel: HDF5Dataset
        let bias: HDF5Dataset
        /// Shape of the kernel as HWIO (after the transpose Theano kernels get).
        let hwioShape: [Int]
    }

    enum KernelConvention {
        /// HWIO, cross-correlation: used as is.
        case hwio
        /// HWIO in true-convolution convention (Keras 2 files saved under Theano): flip both spatial axes.
        case hwioFlipped
        /// OIHW in true-convolution convention (Theano era): transpose to HWIO and flip both spatial axes.
        case oihwFlipped
    }

    func fail(_ message: String) -> WeightsError { WeightsError(path: path, message: message) }

    /// An HDF5 failure without the file's path, which the WeightsError already names.
    func cause(_ error: any Error) -> String {
        guard let error = error as? HDF5Error else { return "\(error)" }
        return error.object.isEmpty || error.object == "/" ? error.message : "\(error.object): \(error.message)"
    }

    func read() throws -> VGG16Weights {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else {
            throw fail("no such file")
        }
        guard !isDirectory.boolValue else { throw fail("is a directory, expected an HDF5 weights file") }
        guard FileManager.default.isReadableFile(atPath: path) else { throw fail("cannot be read (permission denied)") }
        guard HDF5File.isHDF5(path) else {
            let size = (try? FileManager.default.attributesOfItem(atPath: path)[.size] as? Int) ?? nil
            if size == 0 { throw fail("not an HDF5 file (it is empty)") }
            let head = FileHandle(forReadingAtPath: path).flatMap { try? $0.read(upToCount: 4) } ?? Data()
            if head == Data([0x50, 0x4B, 0x03, 0x04]) {
                throw fail(
                    "not an HDF5 file but a zip archive, such as a Keras 3 .keras model; its weights are the "
                        + "model.weights.h5 inside it (unzip it, or save them with model.save_weights('x.weights.h5'))")
            }
            throw fail("not an HDF5 file")
        }
        let file: HDF5File
        do {
            file = try HDF5File.open(path)
        } catch {
            throw fail("truncated or damaged HDF5 file (\(cause(error)))")
        }
        defer { file.close() }
        let layers: [ConvLayerWeights]
        let format: WeightsFormat
        do {
            (layers, format) = try readLayers(file.root)
        } catch let error as WeightsError {
            throw error
        } catch {
            throw fail("truncated or damaged HDF5 file (\(cause(error)))")
        }
        return VGG16Weights(unchecked: layers, format: format, sha256: try fileSHA256())
    }

    func readLayers(_ root: HDF5Group) throws -> ([ConvLayerWeights], WeightsFormat) {
        let attributes = root.attributes
        if attributes.contains("layer_names") {
            return try readKerasLayerNames(root)
        }
        // A whole Keras 2 model saved with model.save("x.h5"): the save_weights layout under /model_weights.
        if root.isGroup("model_weights"), try root.group("model_weights").attributes.contains("layer_names") {
            let (layers, _) = try readKerasLayerNames(try root.group("model_weights"))
            return (layers, .kerasSaveWeights)
        }
        if attributes.contains("nb_layers") {
            return (try readTheano(root), .theano)
        }
        if root.isGroup("layers") {
            return (try readKeras3(root), .keras3)
        }
        let members = try root.memberNames()
        if members.isEmpty { throw fail("is an empty HDF5 file — not a VGG16 weights file (\(Self.expectedLayouts))") }
        throw fail("has top-level members \(listed(members)) — not a VGG16 weights file (\(Self.expectedLayouts))")
    }

    // MARK: - Official Keras file and Keras 2 save_weights

    func readKerasLayerNames(_ root: HDF5Group) throws -> ([ConvLayerWeights], WeightsFormat) {
        let layerNames = try root.attributes.strings("layer_names")
        try rejectOtherNetworks(names: layerNames, what: "layers")
        let rootAttributes = Set(try root.attributes.names())
        let backend = rootAttributes.contains("backend") ? (try? root.attributes.string("backend")) : nil
        var located: [LocatedLayer] = []
        var savedByKeras2 = rootAttributes.contains("keras_version") || rootAttributes.contains("backend")
        for name in VGG16Weights.convLayerNames {
            guard layerNames.contains(name), root.isGroup(name) else {
                throw fail("no layer \(name) (\(Self.expectedLayers))")
            }
            let group = try root.group(name)
            let weightNames = (try? group.attributes.strings("weight_names")) ?? []
            if weightNames.contains(where: { $0.contains("kernel") }) { savedByKeras2 = true }
            var datasets = weightNames.compactMap { group.isDataset($0) ? try? group.dataset($0) : nil }
            if datasets.isEmpty { datasets = try datasetsBelow(group, depth: 2) }
            guard let kernel = datasets.first(where: { $0.shape.count == 4 }) else {
                throw fail("layer \(name) has no kernel (a 4-D dataset; weight_names \(weightNames))")
            }
            guard let bias = datasets.first(where: { $0.shape.count == 1 }) else {
                throw fail("layer \(name) has no bias (a 1-D dataset; weight_names \(weightNames))")
            }
            located.append(LocatedLayer(label: name, kernel: kernel, bias: bias, hwioShape: kernel.shape))
        }
        // Keras 2 files saved under Theano hold true-convolution kernels; Keras flips them on load.
        let convention: KernelConvention = backend == "theano" ? .hwioFlipped : .hwio
        return (try readLocated(located, convention: convention), savedByKeras2 ? .kerasSaveWeights : .kerasOfficial)
    }

    /// Datasets in `group` and its subgroups down to `depth` levels, in name order.
    func datasetsBelow(_ group: HDF5Group, depth: Int) throws -> [HDF5Dataset] {
        var found: [HDF5Dataset] = []
        for member in try group.memberNames() {
            if group.isDataset(member) {
                found.append(try group.dataset(member))
            } else if depth > 1, group.isGroup(member) {
                found += try datasetsBelow(try group.group(member), depth: depth - 1)
            }
        }
        return found
    }

    /// Throws for a VGG19 or a network without any VGG16 conv layer, naming what the file has.
    func rejectOtherNetworks(names: [String], what: String) throws {
        if let extra = Self.vgg19OnlyLayers.first(where: names.contains) {
            throw fail(
                "has layer \(extra), which VGG19 has and VGG16 does not — this is a VGG19 weights file "
                    + "(\(Self.expectedLayers))")
        }
        if !names.contains(where: VGG16Weights.convLayerNames.contains) {
            throw fail("has \(what) \(listed(names)) — not a VGG16 weights file (\(Self.expectedLayouts))")
        }
    }

    // MARK: - Keras 3 .weights.h5

    func readKeras3(_ root: HDF5Group) throws -> [ConvLayerWeights] {
        guard let container = try keras3ConvContainer(try root.group("layers"), depth: 3) else {
            let members = try root.group("layers").memberNames()
            throw fail(
                "has Keras 3 layers \(listed(members)) but no conv layers — not a VGG16 weights file "
                    + "(\(Self.expectedLayouts))")
        }
        // Children are named by class name and counter (conv2d, conv2d_1, …, conv2d_12), not by layer name;
        // the counter gives the model order. Newer Keras also stores the layer name as the `name`
        // attribute of `vars`, which is preferred when present.
        var convs: [(order: Int, member: String, layerName: String?, vars: HDF5Group)] = []
        for member in try container.memberNames() where container.isGroup(member + "/vars") {
            let vars = try container.group(member + "/vars")
            guard vars.isDataset("0"), try vars.dataset("0").shape.count == 4 else { continue }
            let layerName = vars.attributes.contains("name") ? try? vars.attributes.string("name") : nil
            convs.append((keras3Counter(member), member, layerName, vars))
        }
        convs.sort { $0.order < $1.order }
        let layerNames = convs.compactMap(\.layerName)
        let named = layerNames.count == convs.count
        if named {
            try rejectOtherNetworks(names: layerNames, what: "conv layers")
        } else if convs.count == 16 {
            throw fail(
                "has 16 conv layers (layers/\(convs[0].member) … layers/\(convs[15].member)) — this looks like a "
                    + "VGG19 weights file (\(Self.expectedLayers))")
        }
        var ordered: [(label: String, vars: HDF5Group)] = []
        if named {
            for name in VGG16Weights.convLayerNames {
                guard let conv = convs.first(where: { $0.layerName == name }) else {
                    throw fail("no layer \(name) (\(Self.expectedLayers))")
                }
                ordered.append(("\(name) (layers/\(conv.member))", conv.vars))
            }
        } else {
            guard convs.count == 13 else {
                throw fail(
                    "has \(convs.count) conv layers (\(listed(convs.map { "layers/" + $0.member }))), "
                        + Self.expectedLayers)
            }
            ordered = zip(VGG16Weights.convLayerNames, convs).map { ("\($0) (layers/\($1.member))", $1.vars) }
        }
        var located: [LocatedLayer] = []
        for (label, vars) in ordered {
            let kernel = try vars.dataset("0")
            guard vars.isDataset("1") else { throw fail("layer \(label) has no bias (vars/1)") }
            located.append(
                LocatedLayer(label: label, kernel: kernel, bias: try vars.dataset("1"), hwioShape: kernel.shape))
        }
        return try readLocated(located, convention: .hwio)
    }

    /// The `layers` group that holds the conv layers: `group` itself, or for a model nested in another
    /// (a Sequential around the conv base), the first nested `layers` group that does.
    func keras3ConvContainer(_ group: HDF5Group, depth: Int) throws -> HDF5Group? {
        let members = try group.memberNames()
        for member in members where group.isDataset(member + "/vars/0") {
            if try group.dataset(member + "/vars/0").shape.count == 4 { return group }
        }
        guard depth > 1 else { return nil }
        for member in members where group.isGroup(member + "/layers") {
            if let nested = try keras3ConvContainer(try group.group(member + "/layers"), depth: depth - 1) {
                return nested
            }
        }
        return nil
    }

    /// 0 for "conv2d", N for "conv2d_N".
    func keras3Counter(_ member: String) -> Int {
        guard let underscore = member.lastIndex(of: "_"), let counter = Int(member[member.index(after: underscore)...])
        else { return 0 }
        return counter
    }

    // MARK: - Theano era

    func readTheano(_ root: HDF5Group) throws -> [ConvLayerWeights] {
        let layerCount = try root.attributes.int("nb_layers")
        var convs: [(group: String, kernel: HDF5Dataset, bias: HDF5Dataset)] = []
        for k in 0..<layerCount {
            let groupName = "layer_\(k)"
            guard root.isGroup(groupName) else {
                throw fail("has nb_layers = \(layerCount) but no group \(groupName) (truncated or damaged file?)")
            }
            let group = try root.group(groupName)
            let paramCount =
                group.attributes.contains("nb_params")
                ? try group.attributes.int("nb_params")
                : (group.isDataset("param_1") ? 2 : group.isDataset("param_0") ? 1 : 0)
            guard paramCount > 0, group.isDataset("param_0") else { continue }
            let kernel = try group.dataset("param_0")
            guard kernel.shape.count == 4 else { continue }  // Dense and other layers after the convs
            guard paramCount >= 2, group.isDataset("param_1") else {
                throw fail("conv layer \(groupName) has no bias (param_1)")
            }
            convs.append((groupName, kernel, try group.dataset("param_1")))
        }
        if convs.isEmpty {
            throw fail(
                "has \(layerCount) Theano-era layers but no conv layers — not a VGG16 weights file "
                    + "(\(Self.expectedLayouts))")
        }
        if convs.count == 16 {
            throw fail(
                "has 16 conv layers (\(convs[0].group) … \(convs[15].group)) — this looks like a VGG19 "
                    + "weights file (\(Self.expectedLayers))")
        }
        guard convs.count == 13 else {
            throw fail("has \(convs.count) conv layers (\(listed(convs.map(\.group)))), \(Self.expectedLayers)")
        }
        let located = zip(VGG16Weights.convLayerNames, convs).map { name, conv in
            let s = conv.kernel.shape  // (out, in, kh, kw)
            return LocatedLayer(
                label: "\(name) (\(conv.group))", kernel: conv.kernel, bias: conv.bias,
                hwioShape: [s[2], s[3], s[1], s[0]])
        }
        return try readLocated(located, convention: .oihwFlipped)
    }

    // MARK: - Shared

    /// Checks the 13 layers' shapes chain, then reads and converts their data to HWIO cross-correlation.
    func readLocated(_ located: [LocatedLayer], convention: KernelConvention) throws -> [ConvLayerWeights] {
        try VGG16Weights.checkChain(
            located.map { ($0.label, $0.hwioShape, $0.bias.shape.count == 1 ? $0.bias.shape[0] : -1) }, path: path)
        var layers: [ConvLayerWeights] = []
        for (index, layer) in located.enumerated() {
            let shape = layer.hwioShape
            let (inChannels, outChannels) = (shape[2], shape[3])
            let stored = try layer.kernel.read(Float.self)
            let bias = try layer.bias.read(Float.self)
            guard stored.count == 9 * inChannels * outChannels, bias.count == outChannels else {
                throw fail("layer \(layer.label): could not read its data (truncated or damaged file?)")
            }
            let kernel: [Float]
            switch convention {
            case .hwio:
                kernel = stored
            case .hwioFlipped:
                kernel = Self.flippedHWIO(stored, inChannels: inChannels, outChannels: outChannels)
            case .oihwFlipped:
                kernel = Self.hwioFromFlippedOIHW(stored, inChannels: inChannels, outChannels: outChannels)
            }
            layers.append(
                ConvLayerWeights(
                    name: VGG16Weights.convLayerNames[index], inChannels: inChannels, outChannels: outChannels,
                    kernel: kernel, bias: bias))
        }
        return layers
    }

    /// HWIO[kh][kw][i][o] = OIHW[o][i][2 - kh][2 - kw]: transpose and undo Theano's kernel flip.
    static func hwioFromFlippedOIHW(_ oihw: [Float], inChannels: Int, outChannels: Int) -> [Float] {
        var hwio = [Float](repeating: 0, count: oihw.count)
        for o in 0..<outChannels {
            for i in 0..<inChannels {
                for kh in 0..<3 {
                    for kw in 0..<3 {
                        hwio[((kh * 3 + kw) * inChannels + i) * outChannels + o] =
                            oihw[((o * inChannels + i) * 3 + (2 - kh)) * 3 + (2 - kw)]
                    }
                }
            }
        }
        return hwio
    }

    /// HWIO[kh][kw] = HWIO[2 - kh][2 - kw].
    static func flippedHWIO(_ kernel: [Float], inChannels: Int, outChannels: Int) -> [Float] {
        let tap = inChannels * outChannels
        var flipped = [Float](repeating: 0, count: kernel.count)
        for kh in 0..<3 {
            for kw in 0..<3 {
                let from = ((2 - kh) * 3 + (2 - kw)) * tap
                let to = (kh * 3 + kw) * tap
                for j in 0..<tap { flipped[to + j] = kernel[from + j] }
            }
        }
        return flipped
    }

    /// "a, b, c, d, e, …" (the first few names).
    func listed(_ names: [String]) -> String {
        names.count <= 5 ? names.joined(separator: ", ") : names.prefix(5).joined(separator: ", ") + ", …"
    }

    /// SHA-256 of the file's bytes.
    func fileSHA256() throws -> String {
        do { return try Checksum.sha256Hex(ofFile: path) } catch let error as FileIOError {
            throw fail("cannot be read (\(error.reason))")
        }
    }
}
