/// The layout a VGG16 weights file was read from.
public enum WeightsFormat: String, Sendable, Codable {
    /// The official Keras file (notop or full): root `layer_names`, per-layer `weight_names` such as
    /// `block1_conv1_W_1:0`, HWIO kernels; the fully-connected layers of a full file are ignored.
    case kerasOfficial
    /// Keras 2 `save_weights`: root `layer_names`, `backend`, `keras_version`; datasets
    /// `<layer>/<layer>/kernel:0` and `<layer>/<layer>/bias:0`; also a whole model saved with
    /// `model.save("x.h5")`, which holds that layout under `/model_weights`.
    case kerasSaveWeights
    /// Keras 3 `.weights.h5`: `layers/conv2d[_N]/vars/{0,1}` in model order.
    case keras3
    /// Theano-era file: root `nb_layers`, groups `layer_k` with `nb_params`, datasets `param_p`;
    /// kernels OIHW and spatially flipped (true convolution).
    case theano
    /// Made in memory by `VGG16Weights.generated(widths:seed:)`.
    case generated
}
