/// Pillow's `ImagingResample` with the BILINEAR filter for 8-bit images (libImaging/Resample.c):
/// coefficients computed in double, normalised, converted to fixed point with 22 fractional bits;
/// a horizontal pass over the rows the vertical pass needs, rounded and clipped to 8 bits, then a vertical
/// pass, rounded and clipped again.
enum BilinearResampler {
    static let precisionBits = 32 - 8 - 2

    struct Coefficients {
        var ksize: Int
        /// Per output position: first input index and number of taps.
        var bounds: [(min: Int, count: Int)]
        /// `outSize * ksize` fixed-point weights.
        var weights: [Int32]
    }

    static func filter(_ x: Double) -> Double {
        let x = x < 0 ? -x : x
        return x < 1.0 ? 1.0 - x : 0.0
    }

    static func precompute(inSize: Int, outSize: Int) -> Coefficients {
        let in0 = Float(0), in1 = Float(inSize)
        let scale = Double(in1 - in0) / Double(outSize)
        let filterScale = max(scale, 1.0)
        let support = 1.0 * filterScale
        let ksize = Int(support.rounded(.up)) * 2 + 1
        var bounds = [(min: Int, count: Int)](repeating: (0, 0), count: outSize)
        var weights = [Int32](repeating: 0, count: outSize * ksize)
        var k = [Double](repeating: 0, count: ksize)
        let unit = Double(1 << precisionBits)
        for xx in 0..<outSize {
            let center = Double(in0) + (Double(xx) + 0.5) * scale
            var ww = 0.0
            let ss = 1.0 / filterScale
            var xmin = Int(center - support + 0.5)
            if xmin < 0 { xmin = 0 }
            var xmax = Int(center + support + 0.5)
            if xmax > inSize { xmax = inSize }
            xmax -= xmin
            for x in 0..<ksize { k[x] = 0 }
            for x in 0..<max(xmax, 0) {
                let w = filter((Double(x + xmin) - center + 0.5) * ss)
                k[x] = w
                ww += w
            }
            for x in 0..<max(xmax, 0) where ww != 0.0 { k[x] /= ww }
            for x in 0..<ksize {
                let v = k[x]
                weights[xx * ksize + x] = v < 0 ? Int32(-0.5 + v * unit) : Int32(0.5 + v * unit)
            }
            bounds[xx] = (xmin, max(xmax, 0))
        }
        return Coefficients(ksize: ksize, bounds: bounds, weights: weights)
    }

    @inline(__always)
    static func clip8(_ v: Int32) -> UInt8 {
        if v >= Int32(1 << (precisionBits + 8)) { return 255 }
        if v <= 0 { return 0 }
        return UInt8(truncatingIfNeeded: v >> Int32(precisionBits))
    }

    /// Pass order: Pillow ≥ 13 resamples vertically first when the height shrinks by more than twice as
    /// many pixels as the width (`inH - outH > 2 * (inW - outW)`, with `outH < inH`), otherwise horizontally
    /// first over only the source rows the vertical pass reads. The order changes the 8-bit rounding of
    /// the intermediate image, so it is part of bit-exactness (established by experiment against Pillow
    /// 13.0.0 over several hundred size pairs).
    static func verticalFirst(inW: Int, inH: Int, outW: Int, outH: Int) -> Bool {
        outH < inH && inH - outH > 2 * (inW - outW)
    }

    static func resample(_ image: DecodedImage, width: Int, height: Int) -> [UInt8] {
        let inW = image.width, inH = image.height
        let needHorizontal = width != inW
        let needVertical = height != inH
        if needHorizontal && needVertical && verticalFirst(inW: inW, inH: inH, outW: width, outH: height) {
            let vertical = precompute(inSize: inH, outSize: height)
            let temp = verticalPass(image.rgb, width: inW, coefficients: vertical, outHeight: height)
            let horizontal = precompute(inSize: inW, outSize: width)
            return horizontalPass(
                temp, inWidth: inW, firstRow: 0, rows: height, coefficients: horizontal, outWidth: width)
        }
        var current = image.rgb
        var currentW = inW
        var vertical = precompute(inSize: inH, outSize: height)
        if needHorizontal {
            let firstRow = vertical.bounds[0].min
            let lastRow = vertical.bounds[height - 1].min + vertical.bounds[height - 1].count
            for i in 0..<height { vertical.bounds[i].min -= firstRow }
            let horizontal = precompute(inSize: inW, outSize: width)
            current = horizontalPass(
                image.rgb, inWidth: inW, firstRow: firstRow, rows: lastRow - firstRow, coefficients: horizontal,
                outWidth: width)
            currentW = width
        }
        guard needVertical else { return current }
        return verticalPass(current, width: currentW, coefficients: vertical, outHeight: height)
    }

    /// Resamples rows `firstRow ..< firstRow + rows` of an RGB image horizontally to `outWidth`.
    static func horizontalPass(
        _ source: [UInt8], inWidth: Int, firstRow: Int, rows: Int, coefficients: Coefficients, outWidth: Int
    ) -> [UInt8] {
        let half = Int32(1 << (precisionBits - 1))
        let ksize = coefficients.ksize
        return [UInt8](unsafeUninitializedCapacity: outWidth * rows * 3) { out, initialized in
            source.withUnsafeBufferPointer { src in
                coefficients.weights.withUnsafeBufferPointer { kk in
                    coefficients.bounds.withUnsafeBufferPointer { bounds in
                        for y in 0..<rows {
                            let inRow = (y + firstRow) * inWidth * 3
                            for xx in 0..<outWidth {
                                let (xmin, count) = bounds[xx]
                                let k = xx * ksize
                                var s0 = half, s1 = half, s2 = half
                                for x in 0..<count {
                                    let p = inRow + (x + xmin) * 3
                                    let w = kk[k + x]
                                    s0 &+= Int32(src[p]) &* w
                                    s1 &+= Int32(src[p + 1]) &* w
                                    s2 &+= Int32(src[p + 2]) &* w
                                }
                                let o = (y * outWidth + xx) * 3
                                out[o] = clip8(s0)
                                out[o + 1] = clip8(s1)
                                out[o + 2] = clip8(s2)
                            }
                        }
                    }
                }
            }
            initialized = outWidth * rows * 3
        }
    }

    /// Resamples an RGB image of `width` columns vertically to `outHeight` rows.
    static func verticalPass(_ source: [UInt8], width: Int, coefficients: Coefficients, outHeight: Int) -> [UInt8] {
        let half = Int32(1 << (precisionBits - 1))
        let ksize = coefficients.ksize
        let rowLength = width * 3
        return [UInt8](unsafeUninitializedCapacity: rowLength * outHeight) { out, initialized in
            source.withUnsafeBufferPointer { src in
                coefficients.weights.withUnsafeBufferPointer { kk in
                    for yy in 0..<outHeight {
                        let (ymin, count) = coefficients.bounds[yy]
                        let k = yy * ksize
                        // Channels are independent: walk the row as rowLength samples.
                        for i in 0..<rowLength {
                            var s = half
                            for y in 0..<count {
                                s &+= Int32(src[(y + ymin) * rowLength + i]) &* kk[k + y]
                            }
                            out[yy * rowLength + i] = clip8(s)
                        }
                    }
                }
            }
            initialized = rowLength * outHeight
        }
    }
}
