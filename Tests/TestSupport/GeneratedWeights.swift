import HDF5

/// One conv layer for a weights file written by a test: HWIO kernel (3, 3, in, out), cross-correlation.
public struct GeneratedConvLayer: Sendable {
    public var name: String
    public var inChannels: Int
    public var outChannels: Int
    /// HWIO (3, 3, inChannels, outChannels), row-major.
    public var kernel: [Float]
    public var bias: [Float]
    /// Kernel shape as stored (HWIO); tests may set a wrong one to make a bad file.
    public var kernelShape: [Int]

    public init(name: String, inChannels: Int, outChannels: Int, kernel: [Float], bias: [Float]) {
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.bias = bias
        self.kernelShape = [3, 3, inChannels, outChannels]
    }
}

/// Writes conv weights in the HDF5 layouts VGG16 weights come in, so tests can make good and bad files
/// without TensorFlow. The layouts follow what Keras writes (see the VGG16 weights readers).
public enum GeneratedWeightsFile {
    /// Conv layers named `names` (default: VGG16's block1_conv1 … block5_conv3) with output `widths`,
    /// deterministic values from `seed` (kernels in [-0.2, 0.2), biases in [-0.05, 0.05)).
    public static func convLayers(widths: [Int], names: [String]? = nil, seed: UInt64) -> [GeneratedConvLayer] {
        let names = names ?? vgg16ConvNames
        precondition(names.count == widths.count)
        var state = seed
        func next() -> Float {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            z ^= z >> 31
            return Float(z >> 40) / Float(1 << 24) - 0.5
        }
        var inChannels = 3
        return zip(names, widths).map { name, width in
            let kernel = (0..<(9 * inChannels * width)).map { _ in 0.4 * next() }
            let bias = (0..<width).map { _ in 0.1 * next() }
            defer { inChannels = width }
            return GeneratedConvLayer(
                name: name, inChannels: inChannels, outChannels: width, kernel: kernel, bias: bias)
        }
    }

    public static let vgg16ConvNames = [
        "block1_conv1", "block1_conv2", "block2_conv1", "block2_conv2", "block3_conv1", "block3_conv2", "block3_conv3",
        "block4_conv1", "block4_conv2", "block4_conv3", "block5_conv1", "block5_conv2", "block5_conv3",
    ]

    /// Keras layer names with a pooling layer after each block (a block ends where the next name's
    /// block number changes).
    static func namesWithPooling(_ layers: [GeneratedConvLayer]) -> [String] {
        var names: [String] = []
        for (index, layer) in layers.enumerated() {
            names.append(layer.name)
            let block = layer.name.split(separator: "_").first.map(String.init) ?? layer.name
            let nextBlock =
                index + 1 < layers.count ? layers[index + 1].name.split(separator: "_").first.map(String.init) : nil
            if block.hasPrefix("block"), nextBlock != block { names.append(block + "_pool") }
        }
        return names
    }

    /// The official Keras notop layout: root `layer_names` (fixed-length strings, pooling layers included),
    /// groups with `weight_names` `<layer>_W_1:0`, `<layer>_b_1:0`, no keras_version/backend.
    public static func writeKerasOfficial(_ layers: [GeneratedConvLayer], to path: String) throws {
        let file = try HDF5File.create(path)
        defer { file.close() }
        let root = file.root
        try root.attributes.set("layer_names", strings: namesWithPooling(layers))
        for name in namesWithPooling(layers) {
            let group = try root.createGroup(name)
            guard let layer = layers.first(where: { $0.name == name }) else {
                try group.attributes.set("weight_names", ints: [])
                continue
            }
            try group.attributes.set("weight_names", strings: ["\(name)_W_1:0", "\(name)_b_1:0"])
            _ = try group.write("\(name)_W_1:0", layer.kernel, shape: layer.kernelShape)
            _ = try group.write("\(name)_b_1:0", layer.bias, shape: [layer.bias.count])
        }
    }

    /// Keras 2 `save_weights`: root `layer_names` (with an input layer), `backend`, `keras_version`;
    /// datasets `<layer>/<layer>/kernel:0` and `bias:0` named by `weight_names` `<layer>/kernel:0`.
    /// With `asWholeModel` the layout sits under `/model_weights`, as `model.save("x.h5")` writes it.
    public static func writeKeras2SaveWeights(
        _ layers: [GeneratedConvLayer], to path: String, backend: String = "tensorflow", asWholeModel: Bool = false
    ) throws {
        let file = try HDF5File.create(path)
        defer { file.close() }
        var root = file.root
        if asWholeModel {
            try root.attributes.set("model_config", string: "{\"class_name\": \"Functional\"}")
            try root.attributes.set("backend", string: backend)
            root = try root.createGroup("model_weights")
        }
        let names = ["input_1"] + namesWithPooling(layers)
        try root.attributes.set("layer_names", strings: names)
        try root.attributes.set("backend", string: backend)
        try root.attributes.set("keras_version", string: "2.15.0")
        for name in names {
            let group = try root.createGroup(name)
            guard let layer = layers.first(where: { $0.name == name }) else {
                try group.attributes.set("weight_names", ints: [])
                continue
            }
            try group.attributes.set("weight_names", strings: ["\(name)/kernel:0", "\(name)/bias:0"])
            let inner = try group.createGroup(name)
            _ = try inner.write("kernel:0", layer.kernel, shape: layer.kernelShape)
            _ = try inner.write("bias:0", layer.bias, shape: [layer.bias.count])
        }
    }

    /// Keras 3 `.weights.h5`: `layers/conv2d[_N]/vars/{0,1}` by class counter, pooling layers as
    /// `layers/max_pooling2d[_N]` with empty `vars`; with `storeNames` each `vars` carries the layer name
    /// as attribute `name` (Keras 3.15 does), without it only the counter gives the order.
    /// With `nestedIn` the conv base sits inside an outer model (`layers/<nestedIn>/layers/...`).
    public static func writeKeras3(
        _ layers: [GeneratedConvLayer], to path: String, storeNames: Bool = true, nestedIn: String? = nil
    ) throws {
        let file = try HDF5File.create(path)
        defer { file.close() }
        var container = try file.root.createGroup("layers")
        if let nestedIn {
            container = try container.createGroup("\(nestedIn)/layers")
            _ = try file.root.createGroup("layers/dense/vars")
        }
        _ = try file.root.createGroup("vars")
        var convCounter = 0
        var poolCounter = 0
        for name in namesWithPooling(layers) {
            if let layer = layers.first(where: { $0.name == name }) {
                let member = convCounter == 0 ? "conv2d" : "conv2d_\(convCounter)"
                convCounter += 1
                let vars = try container.createGroup("\(member)/vars")
                if storeNames { try vars.attributes.set("name", string: name) }
                _ = try vars.write("0", layer.kernel, shape: layer.kernelShape)
                _ = try vars.write("1", layer.bias, shape: [layer.bias.count])
            } else {
                let member = poolCounter == 0 ? "max_pooling2d" : "max_pooling2d_\(poolCounter)"
                poolCounter += 1
                let vars = try container.createGroup("\(member)/vars")
                if storeNames { try vars.attributes.set("name", string: name) }
            }
        }
    }

    /// The Theano-era layout: root `nb_layers`, groups `layer_k` with `nb_params` and `param_p`, one group
    /// per Sequential layer (zero-padding before each conv, pooling after each block, then a dense tail);
    /// kernels OIHW and spatially flipped (Theano's true convolution).
    public static func writeTheano(_ layers: [GeneratedConvLayer], to path: String) throws {
        let file = try HDF5File.create(path)
        defer { file.close() }
        let root = file.root
        var index = 0
        func addLayer(_ params: [([Float], [Int])]) throws {
            let group = try root.createGroup("layer_\(index)")
            try group.attributes.set("nb_params", int: params.count)
            for (p, (values, shape)) in params.enumerated() { _ = try group.write("param_\(p)", values, shape: shape) }
            index += 1
        }
        for name in namesWithPooling(layers) {
            guard let layer = layers.first(where: { $0.name == name }) else {
                try addLayer([])
                continue
            }
            try addLayer([])  // ZeroPadding2D
            let (cin, cout) = (layer.kernelShape[2], layer.kernelShape[3])
            var oihw = [Float](repeating: 0, count: layer.kernel.count)
            for o in 0..<cout {
                for i in 0..<cin {
                    for kh in 0..<3 {
                        for kw in 0..<3 {
                            oihw[((o * cin + i) * 3 + kh) * 3 + kw] =
                                layer.kernel[(((2 - kh) * 3 + (2 - kw)) * cin + i) * cout + o]
                        }
                    }
                }
            }
            try addLayer([(oihw, [cout, cin, 3, 3]), (layer.bias, [layer.bias.count])])
        }
        try addLayer([])  // Flatten
        let last = layers.last?.outChannels ?? 1
        try addLayer([([Float](repeating: 0.01, count: last * 4), [last, 4]), ([0, 0, 0, 0], [4])])  // Dense
        try root.attributes.set("nb_layers", int: index)
    }
}
