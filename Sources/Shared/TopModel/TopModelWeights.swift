/// The trainable parameters of `Flatten → Dense(hidden, relu) → Dropout → Dense(classes, softmax)`.
///
/// Layouts are Keras': `hiddenKernel` `[inputs, hidden]`, `hiddenBias` `[hidden]`, `outputKernel`
/// `[hidden, classes]`, `outputBias` `[classes]`, all row-major float32. `inputs` is the flattened
/// feature size `h·w·c` in channels_last order (Keras' Flatten order).
public struct TopModelWeights: Sendable, Equatable {
    public var inputs: Int
    public var hidden: Int
    public var classes: Int
    public var hiddenKernel: [Float]
    public var hiddenBias: [Float]
    public var outputKernel: [Float]
    public var outputBias: [Float]

    public init(
        inputs: Int, hidden: Int, classes: Int, hiddenKernel: [Float], hiddenBias: [Float],
        outputKernel: [Float], outputBias: [Float]
    ) throws {
        guard inputs > 0, hidden > 0, classes > 0 else {
            throw TopModelError.invalidArgument(
                "weights need positive sizes, got inputs \(inputs), hidden \(hidden), classes \(classes)")
        }
        let expected = [
            ("hidden kernel", hiddenKernel.count, inputs * hidden), ("hidden bias", hiddenBias.count, hidden),
            ("output kernel", outputKernel.count, hidden * classes), ("output bias", outputBias.count, classes),
        ]
        for (name, got, want) in expected where got != want {
            throw TopModelError.invalidArgument("weights: \(name) has \(got) values, expected \(want)")
        }
        self.init(
            unchecked: inputs, hidden: hidden, classes: classes, hiddenKernel: hiddenKernel, hiddenBias: hiddenBias,
            outputKernel: outputKernel, outputBias: outputBias)
    }

    /// Weights whose sizes the caller guarantees (buffers allocated from the same sizes).
    init(
        unchecked inputs: Int, hidden: Int, classes: Int, hiddenKernel: [Float], hiddenBias: [Float],
        outputKernel: [Float], outputBias: [Float]
    ) {
        self.inputs = inputs
        self.hidden = hidden
        self.classes = classes
        self.hiddenKernel = hiddenKernel
        self.hiddenBias = hiddenBias
        self.outputKernel = outputKernel
        self.outputBias = outputBias
    }

    /// Keras' default initialisation: Glorot-uniform kernels (limit `sqrt(6 / (fan_in + fan_out))`), zero
    /// biases, drawn from a deterministic generator seeded with `seed` (hidden kernel first).
    public static func glorotUniform(inputs: Int, hidden: Int, classes: Int, seed: UInt64) throws -> TopModelWeights {
        var random = SeededRandom(seed: seed, stream: 1)
        func kernel(_ fanIn: Int, _ fanOut: Int) -> [Float] {
            let limit = Float((6.0 / Double(fanIn + fanOut)).squareRoot())
            return (0..<(fanIn * fanOut)).map { _ in (random.unitFloat() * 2 - 1) * limit }
        }
        let k1 = kernel(inputs, hidden)
        let k2 = kernel(hidden, classes)
        return try TopModelWeights(
            inputs: inputs, hidden: hidden, classes: classes, hiddenKernel: k1,
            hiddenBias: [Float](repeating: 0, count: hidden), outputKernel: k2,
            outputBias: [Float](repeating: 0, count: classes))
    }

    /// All parameters as a byte string (for comparing models bit for bit).
    public var bytes: [UInt8] {
        var out: [UInt8] = []
        for tensor in [hiddenKernel, hiddenBias, outputKernel, outputBias] {
            tensor.withUnsafeBytes { out.append(contentsOf: $0) }
        }
        return out
    }
}
