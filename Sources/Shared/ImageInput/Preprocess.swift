/// Converts an RGB image (already at target size) into network input, float32 HWC.
public enum Preprocess {
    /// ImageNet channel means in BGR order, as float32 (Keras subtracts the Python floats from a float32
    /// array, so NumPy rounds them to float32 first).
    static let caffeMeansBGR: (Float, Float, Float) = (Float(103.939), Float(116.779), Float(123.68))
    /// `float32(1/255)`: NumPy multiplies the float32 array by the Python float rounded to float32.
    static let rescaleFactor = Float(1.0 / 255.0)

    /// Writes `image.height * image.width * 3` floats to `into`, HWC.
    /// - caffe: channel order B, G, R, each `Float(v) - mean` in float32;
    /// - rescale: channel order R, G, B, each `Float(v) * Float(1/255)` in float32.
    public static func apply(_ image: DecodedImage, mode: Preprocessing, into: UnsafeMutablePointer<Float>) {
        let count = image.width * image.height
        image.rgb.withUnsafeBufferPointer { src in
            switch mode {
            case .caffe:
                let (mb, mg, mr) = caffeMeansBGR
                for i in 0..<count {
                    let r = Float(src[3 * i]), g = Float(src[3 * i + 1]), b = Float(src[3 * i + 2])
                    into[3 * i] = b - mb
                    into[3 * i + 1] = g - mg
                    into[3 * i + 2] = r - mr
                }
            case .rescale:
                let f = rescaleFactor
                for i in 0..<(count * 3) { into[i] = Float(src[i]) * f }
            }
        }
    }
}

extension Preprocess {
    /// The same arithmetic on float RGB pixel values (HWC, `count` pixels), e.g. after augmentation:
    /// Keras preprocesses the float32 array that `apply_transform` returned.
    public static func apply(
        pixels: UnsafePointer<Float>, count: Int, mode: Preprocessing, into: UnsafeMutablePointer<Float>
    ) {
        switch mode {
        case .caffe:
            let (mb, mg, mr) = caffeMeansBGR
            for i in 0..<count {
                let r = pixels[3 * i], g = pixels[3 * i + 1], b = pixels[3 * i + 2]
                into[3 * i] = b - mb
                into[3 * i + 1] = g - mg
                into[3 * i + 2] = r - mr
            }
        case .rescale:
            let f = rescaleFactor
            for i in 0..<(count * 3) { into[i] = pixels[i] * f }
        }
    }

    /// `apply(Resize.apply(image, width, height, .nearest), mode)` without the intermediate image.
    static func applyNearest(
        _ image: DecodedImage, width: Int, height: Int, mode: Preprocessing, into: UnsafeMutablePointer<Float>
    ) {
        let xs = Resize.nearestIndices(inSize: image.width, outSize: width)
        let ys = Resize.nearestIndices(inSize: image.height, outSize: height)
        let inRow = image.width * 3
        let (mb, mg, mr) = caffeMeansBGR
        let f = rescaleFactor
        image.rgb.withUnsafeBufferPointer { src in
            xs.withUnsafeBufferPointer { xs in
                var o = 0
                for y in 0..<height {
                    let row = ys[y] * inRow
                    for x in 0..<width {
                        let s = row + xs[x] * 3
                        let r = Float(src[s]), g = Float(src[s + 1]), b = Float(src[s + 2])
                        switch mode {
                        case .caffe:
                            into[o] = b - mb
                            into[o + 1] = g - mg
                            into[o + 2] = r - mr
                        case .rescale:
                            into[o] = r * f
                            into[o + 1] = g * f
                            into[o + 2] = b * f
                        }
                        o += 3
                    }
                }
            }
        }
    }
}
