/// Pillow's `Image.resize((width, height), filter)` on an RGB image, bit-exact.
public enum Resize {
    /// Returns `image` unchanged when it already has the target size (Keras skips the resize then).
    public static func apply(_ image: DecodedImage, width: Int, height: Int, interpolation: Interpolation)
        -> DecodedImage
    {
        precondition(width > 0 && height > 0, "target size must be positive")
        if image.width == width && image.height == height { return image }
        let rgb: [UInt8]
        switch interpolation {
        case .nearest: rgb = nearest(image, width: width, height: height)
        case .bilinear: rgb = BilinearResampler.resample(image, width: width, height: height)
        }
        return DecodedImage(width: width, height: height, rgb: rgb, format: image.format, sourceMode: image.sourceMode)
    }

    /// Source column (or row) of each output column (row) for NEAREST, as Pillow's `ImagingScaleAffine`
    /// computes them: `scale = (double)(float)inSize / outSize`, a coordinate starting at `scale * 0.5` and
    /// accumulated by repeated addition (not recomputed), truncated to int.
    static func nearestIndices(inSize: Int, outSize: Int) -> [Int] {
        let scale = Double(Float(inSize)) / Double(outSize)
        var indices = [Int](repeating: 0, count: outSize)
        var coordinate = scale * 0.5
        for i in 0..<outSize {
            let index = coordinate < 0 ? -1 : Int(coordinate)
            indices[i] = min(max(index, 0), inSize - 1)
            coordinate += scale
        }
        return indices
    }

    static func nearest(_ image: DecodedImage, width: Int, height: Int) -> [UInt8] {
        let xs = nearestIndices(inSize: image.width, outSize: width)
        let ys = nearestIndices(inSize: image.height, outSize: height)
        let inRow = image.width * 3
        return [UInt8](unsafeUninitializedCapacity: width * height * 3) { out, initialized in
            image.rgb.withUnsafeBufferPointer { src in
                xs.withUnsafeBufferPointer { xs in
                    var o = 0
                    for y in 0..<height {
                        let row = ys[y] * inRow
                        for x in 0..<width {
                            let s = row + xs[x] * 3
                            out[o] = src[s]
                            out[o + 1] = src[s + 1]
                            out[o + 2] = src[s + 2]
                            o += 3
                        }
                    }
                }
            }
            initialized = width * height * 3
        }
    }
}
