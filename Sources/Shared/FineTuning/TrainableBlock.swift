import BLAS
import TopModel
import VGG16

/// The trainable part of the fine-tuning model: the last convolution block (its 3×3 'same' conv layers with
/// ReLU, then 2×2 max pooling) and the top model, from the frozen base's output (`block4_pool` features).
///
/// Parameters are value types; `batchGradient` computes the loss and every parameter's gradient for a batch
/// without changing anything, so the step can be applied separately (and gradients summed across
/// processes first). GEMMs run on the calling thread's OpenBLAS settings; pin OpenBLAS to a fixed thread
/// count for reproducible bits.
public struct TrainableBlock: Sendable {
    /// The block's conv layers in order (`block5_conv1` … `block5_conv3`), HWIO kernels.
    public var convLayers: [ConvLayerWeights]
    /// How many of `convLayers`, from the first, are frozen: run forward, never trained (`--trainable-from`
    /// a later layer of the block). Their tensors are not in `tensors` and get no gradient.
    public let frozenLayers: Int
    public var top: TopModelWeights
    /// The input feature map: `[inputHeight, inputWidth, inputChannels]` per image.
    public let inputHeight: Int
    public let inputWidth: Int
    public let inputChannels: Int

    /// Throws `FineTuningError` when the layers do not chain, or when the top model's input size is not the
    /// pooled block's output size.
    public init(
        convLayers: [ConvLayerWeights], top: TopModelWeights, inputHeight: Int, inputWidth: Int, inputChannels: Int,
        frozenLayers: Int = 0
    ) throws {
        guard !convLayers.isEmpty else { throw FineTuningError.structure("the trainable block has no conv layer") }
        guard frozenLayers >= 0 && frozenLayers < convLayers.count else {
            throw FineTuningError.structure(
                "\(frozenLayers) frozen layers of a block of \(convLayers.count): at least one conv layer trains")
        }
        self.frozenLayers = frozenLayers
        var channels = inputChannels
        for layer in convLayers {
            guard layer.inChannels == channels, layer.kernel.count == 9 * channels * layer.outChannels,
                layer.bias.count == layer.outChannels
            else {
                throw FineTuningError.structure(
                    "layer \(layer.name) has kernel (3,3,\(layer.inChannels),\(layer.outChannels)), expected "
                        + "(3,3,\(channels),out) after the previous layer")
            }
            channels = layer.outChannels
        }
        let pooled = (inputHeight / 2) * (inputWidth / 2) * channels
        guard inputHeight >= 2, inputWidth >= 2, top.inputs == pooled else {
            throw FineTuningError.structure(
                "the top model takes \(top.inputs) features, the block gives \(inputHeight / 2)×\(inputWidth / 2)"
                    + "×\(channels) = \(pooled)")
        }
        self.convLayers = convLayers
        self.top = top
        self.inputHeight = inputHeight
        self.inputWidth = inputWidth
        self.inputChannels = inputChannels
    }

    /// Values per image of the input feature map.
    public var inputCount: Int { inputHeight * inputWidth * inputChannels }

    /// Every trainable tensor, in Keras' `trainable_weights` order: each trained conv layer's kernel and bias,
    /// then the top model's hidden kernel, hidden bias, output kernel and output bias.
    public var tensors: [[Float]] {
        get { convLayers[frozenLayers...].flatMap { [$0.kernel, $0.bias] } + top.tensors }
        set {
            let trained = convLayers.count - frozenLayers
            precondition(newValue.count == 2 * trained + 4)
            for k in 0..<trained {
                let i = frozenLayers + k
                let layer = convLayers[i]
                convLayers[i] = ConvLayerWeights(
                    name: layer.name, inChannels: layer.inChannels, outChannels: layer.outChannels,
                    kernel: newValue[2 * k], bias: newValue[2 * k + 1])
            }
            top.tensors = Array(newValue[(2 * trained)...])
        }
    }

    /// The loss, accuracy count and gradients of one batch.
    public struct Gradient: Sendable {
        /// Mean categorical cross-entropy over the batch.
        public var loss: Float
        public var correct: Int
        /// `d loss / d tensor`, in the order and sizes of `tensors`.
        public var tensors: [[Float]]
        /// `d loss / d input` `[batch, inputCount]` when asked for, else empty.
        public var input: [Float]

        public init(loss: Float, correct: Int, tensors: [[Float]], input: [Float] = []) {
            self.loss = loss
            self.correct = correct
            self.tensors = tensors
            self.input = input
        }
    }

    /// Forward and backward pass on `input[batch, inputHeight, inputWidth, inputChannels]` (the frozen base's
    /// output) with integer `labels`; `dropoutMask` as in `TopModelWeights.batchGradient`.
    public func batchGradient(
        input: UnsafePointer<Float>, labels: [Int32], batch: Int, dropoutMask: UnsafePointer<Float>? = nil,
        inputGradient: Bool = false
    ) -> Gradient {
        let (h, w) = (inputHeight, inputWidth)
        let pixels = batch * h * w
        let forward = forwardPass(input: input, batch: batch, keepingActivations: true)
        let (columns, outputs, x, pooled) = (forward.columns, forward.outputs, forward.last, forward.pooled)
        let channels = convLayers.last?.outChannels ?? inputChannels
        let topGradient = pooled.withUnsafeBufferPointer {
            top.batchGradient(x: $0.baseAddress!, labels: labels, batch: batch, dropoutMask: dropoutMask)
        }
        // Backward.
        var dA = [Float](repeating: 0, count: pixels * channels)
        MaxPool2x2.backward(
            x, dy: topGradient.input, batch: batch, height: h, width: w, channels: channels, into: &dA)
        var gradients = [[Float]](repeating: [], count: 2 * (convLayers.count - frozenLayers))
        var dInput: [Float] = []
        // Frozen layers get no gradient, and nothing flows below the first trained one unless the input's
        // gradient is asked for (then the frozen layers pass it down without a weight gradient).
        let lowest = inputGradient ? 0 : frozenLayers
        for index in convLayers.indices.reversed() where index >= lowest {
            let layer = convLayers[index]
            ReLU.backward(output: outputs[index], gradient: &dA, count: dA.count)
            var dKernel = [Float](repeating: 0, count: layer.kernel.count)
            var dBias = [Float](repeating: 0, count: layer.outChannels)
            let needInput = index > lowest || inputGradient
            var dColumns = [Float](repeating: 0, count: needInput ? pixels * 9 * layer.inChannels : 0)
            dColumns.withUnsafeMutableBufferPointer { dColumns in
                Conv3x3.backward(
                    columns: columns[index], dz: dA, pixels: pixels, inChannels: layer.inChannels,
                    outChannels: layer.outChannels, kernel: layer.kernel, dKernel: &dKernel, dBias: &dBias,
                    dColumns: needInput ? dColumns.baseAddress! : nil)
            }
            if index >= frozenLayers {
                gradients[2 * (index - frozenLayers)] = dKernel
                gradients[2 * (index - frozenLayers) + 1] = dBias
            }
            if needInput {
                var dx = [Float](repeating: 0, count: pixels * layer.inChannels)
                Conv3x3.col2im(dColumns, batch: batch, height: h, width: w, channels: layer.inChannels, into: &dx)
                if index > 0 { dA = dx } else { dInput = dx }
            }
        }
        return Gradient(
            loss: topGradient.loss, correct: topGradient.correct, tensors: gradients + topGradient.weights.tensors,
            input: dInput)
    }
}

extension TrainableBlock {
    /// Inference (dropout off): the pooled block output `[batch, top.inputs]` for
    /// `input[batch, inputHeight, inputWidth, inputChannels]`, the top model's input.
    public func pooledFeatures(input: UnsafePointer<Float>, batch: Int) -> [Float] {
        forwardPass(input: input, batch: batch, keepingActivations: false).pooled
    }

    /// The conv layers (im2col, product, bias, ReLU) and the 2×2 max-pool on `input`; with `keepingActivations`,
    /// each layer's im2col columns and output too, as the backward pass needs them.
    private func forwardPass(input: UnsafePointer<Float>, batch: Int, keepingActivations: Bool) -> (
        columns: [[Float]], outputs: [[Float]], last: [Float], pooled: [Float]
    ) {
        let (h, w) = (inputHeight, inputWidth)
        let pixels = batch * h * w
        var columns: [[Float]] = []
        var outputs: [[Float]] = []
        var x = Array(UnsafeBufferPointer(start: input, count: batch * inputCount))
        var channels = inputChannels
        for layer in convLayers {
            var col = [Float](repeating: 0, count: pixels * 9 * channels)
            Conv3x3.im2col(x, batch: batch, height: h, width: w, channels: channels, into: &col)
            var z = [Float](repeating: 0, count: pixels * layer.outChannels)
            Conv3x3.forward(
                columns: col, pixels: pixels, inChannels: channels, outChannels: layer.outChannels,
                kernel: layer.kernel, bias: layer.bias, z: &z)
            ReLU.forward(&z, count: z.count)
            if keepingActivations {
                columns.append(col)
                outputs.append(z)
            }
            x = z
            channels = layer.outChannels
        }
        var pooled = [Float](repeating: 0, count: batch * (h / 2) * (w / 2) * channels)
        MaxPool2x2.forward(x, batch: batch, height: h, width: w, channels: channels, into: &pooled)
        return (columns, outputs, x, pooled)
    }
}
