import VGG16

/// A straight-loop VGG16 conv base in Double: the reference the engine is checked against.
/// Input and outputs HWC; kernels HWIO, cross-correlation, zero padding 1; max-pool 2×2/2 with floor.
struct ReferenceConvBase {
    struct Activation {
        var values: [Double]
        var height: Int
        var width: Int
        var channels: Int
    }

    let weights: VGG16Weights

    /// The output of every pooling layer, block1_pool … block5_pool (as far as the image size allows).
    func poolingOutputs(image: [Float], height: Int, width: Int) -> [PoolingLayer: Activation] {
        var activation = Activation(values: image.map(Double.init), height: height, width: width, channels: 3)
        var outputs: [PoolingLayer: Activation] = [:]
        var layerIndex = 0
        for (block, count) in VGG16Weights.convLayersPerBlock.enumerated() {
            for _ in 0..<count {
                activation = convolve(activation, weights.layers[layerIndex])
                layerIndex += 1
            }
            activation = maxPool(activation)
            outputs[PoolingLayer.allCases[block]] = activation
        }
        return outputs
    }

    func convolve(_ input: Activation, _ layer: ConvLayerWeights) -> Activation {
        let (h, w, cin, cout) = (input.height, input.width, input.channels, layer.outChannels)
        precondition(cin == layer.inChannels)
        var out = [Double](repeating: 0, count: h * w * cout)
        for y in 0..<h {
            for x in 0..<w {
                for o in 0..<cout {
                    var sum = Double(layer.bias[o])
                    for dy in 0..<3 {
                        let sy = y + dy - 1
                        if sy < 0 || sy >= h { continue }
                        for dx in 0..<3 {
                            let sx = x + dx - 1
                            if sx < 0 || sx >= w { continue }
                            for i in 0..<cin {
                                sum +=
                                    input.values[(sy * w + sx) * cin + i]
                                    * Double(layer.kernel[((dy * 3 + dx) * cin + i) * cout + o])
                            }
                        }
                    }
                    out[(y * w + x) * cout + o] = max(0, sum)
                }
            }
        }
        return Activation(values: out, height: h, width: w, channels: cout)
    }

    func maxPool(_ input: Activation) -> Activation {
        let (h, w, c) = (input.height / 2, input.width / 2, input.channels)
        var out = [Double](repeating: 0, count: h * w * c)
        for y in 0..<h {
            for x in 0..<w {
                for ch in 0..<c {
                    var m = -Double.infinity
                    for dy in 0..<2 {
                        for dx in 0..<2 {
                            m = max(m, input.values[((2 * y + dy) * input.width + 2 * x + dx) * c + ch])
                        }
                    }
                    out[(y * w + x) * c + ch] = m
                }
            }
        }
        return Activation(values: out, height: h, width: w, channels: c)
    }
}

/// max |a - b| / max |b| (b is the reference).
func relativeError(_ a: [Float], _ b: [Double]) -> Double {
    precondition(a.count == b.count)
    let scale = b.map(abs).max() ?? 0
    let worst = zip(a, b).map { abs(Double($0) - $1) }.max() ?? 0
    return scale == 0 ? worst : worst / scale
}
