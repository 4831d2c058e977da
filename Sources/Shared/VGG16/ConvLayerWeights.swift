/// The weights of one 3×3 convolution layer of VGG16.
///
/// `kernel` is HWIO, shape (3, 3, inChannels, outChannels), flattened row-major, in the cross-correlation
/// convention of TensorFlow/Keras: output(y, x, o) = bias[o] + Σ kernel[dy][dx][i][o] · input(y+dy-1, x+dx-1, i).
/// Read as a matrix it is K × N row-major with K = 9·inChannels and N = outChannels.
public struct ConvLayerWeights: Sendable {
    /// Keras layer name, e.g. "block3_conv2".
    public let name: String
    public let inChannels: Int
    public let outChannels: Int
    /// HWIO (3, 3, inChannels, outChannels), cross-correlation.
    public let kernel: [Float]
    /// outChannels values.
    public let bias: [Float]

    /// Makes a layer; the caller guarantees `kernel.count == 9 * inChannels * outChannels` and
    /// `bias.count == outChannels` (checked with a precondition).
    public init(name: String, inChannels: Int, outChannels: Int, kernel: [Float], bias: [Float]) {
        precondition(kernel.count == 9 * inChannels * outChannels, "\(name): kernel count does not match (3,3,in,out)")
        precondition(bias.count == outChannels, "\(name): bias count does not match outChannels")
        self.name = name
        self.inChannels = inChannels
        self.outChannels = outChannels
        self.kernel = kernel
        self.bias = bias
    }
}
