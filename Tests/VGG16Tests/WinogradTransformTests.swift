import BLAS
import CShims
import Testing

@testable import VGG16

/// The AVX-512F F(4×4) and F(2×2) transforms of the C shims against the portable Swift ones: the same bits.
@Suite("Winograd transforms in AVX-512F")
struct WinogradTransformTests {
    /// Values of both signs and many magnitudes, with zeros, negative zeros and values that round.
    static func values(_ count: Int, seed: UInt64) -> [Float] {
        var state = seed
        return (0..<count).map { index in
            state = state &* 6_364_136_223_846_793_005 &+ 1_442_695_040_888_963_407
            if index % 17 == 0 { return index % 34 == 0 ? 0 : -0.0 }
            let unit = Float(state >> 40) / Float(1 << 24) - 0.5
            return unit * Float(1 << Int((state >> 20) % 12))
        }
    }

    @Test(
        "the input transforms give the portable transforms' bits for any channel count",
        .enabled(if: CPUFeatures.hasAVX512F, "skipped: this CPU lacks AVX512F"),
        arguments: [1, 3, 8, 16, 24, 64, 67, 128])
    func inputTransformMatches(channels: Int) {
        for m in [2, 4] {
            let tiles = 3
            let side = m + 2
            let rowFloats = (m * tiles + 2) * channels
            let input = Self.values(side * rowFloats, seed: UInt64(channels))
            let stride = tiles * channels
            var portable = [Float](repeating: .nan, count: side * side * stride)
            var avx512 = portable
            input.withUnsafeBufferPointer { source in
                portable.withUnsafeMutableBufferPointer { out in
                    for tile in 0..<tiles {
                        for channel in 0..<channels {
                            let origin = source.baseAddress! + m * tile * channels + channel
                            let target = out.baseAddress! + tile * channels + channel
                            if m == 4 {
                                winograd4x4Input(
                                    Float.self, origin, rowFloats: rowFloats, pixel: channels, target, stride: stride)
                            } else {
                                winogradInput(
                                    Float.self, origin, rowFloats: rowFloats, pixel: channels, target, stride: stride)
                            }
                        }
                    }
                }
                avx512.withUnsafeMutableBufferPointer { out in
                    (m == 4 ? bn_winograd4x4_input_row : bn_winograd2x2_input_row)(
                        source.baseAddress!, rowFloats, Int32(channels), Int32(tiles), out.baseAddress!, stride)
                }
            }
            #expect(portable.map(\.bitPattern) == avx512.map(\.bitPattern), "F(\(m)×\(m))")
        }
    }

    @Test(
        "the output transforms give the portable transforms' bits, pooled or not, whole tiles or edges",
        .enabled(if: CPUFeatures.hasAVX512F, "skipped: this CPU lacks AVX512F"),
        arguments: [1, 5, 16, 40, 64])
    func outputTransformMatches(channels: Int) {
        for m in [2, 4] {
            let stride = channels
            let products = Self.values((m + 2) * (m + 2) * stride, seed: 99 + UInt64(channels))
            let bias = Self.values(channels, seed: 7)
            for pools in [false, true] {
                for (rows, columns) in [(m, m), (m - 1, m), (m, 1), (2, 2), (1, m - 1)] {
                    let rowStride = (m + 1) * channels
                    var portable = [Float](repeating: .nan, count: m * rowStride)
                    var avx512 = portable
                    products.withUnsafeBufferPointer { source in
                        bias.withUnsafeBufferPointer { bias in
                            portable.withUnsafeMutableBufferPointer { out in
                                for channel in 0..<channels {
                                    let (from, add, to) =
                                        (
                                            source.baseAddress! + channel, bias.baseAddress! + channel,
                                            out.baseAddress! + channel
                                        )
                                    if m == 4 {
                                        winograd4x4Output(
                                            Float.self, from, stride: stride, bias: add, to, rowStride: rowStride,
                                            pixel: channels, pools: pools, rows: rows, columns: columns)
                                    } else {
                                        winogradOutput(
                                            Float.self, from, stride: stride, bias: add, to, rowStride: rowStride,
                                            pixel: channels, pools: pools, rows: rows, columns: columns)
                                    }
                                }
                            }
                            avx512.withUnsafeMutableBufferPointer { out in
                                (m == 4 ? bn_winograd4x4_output_tile : bn_winograd2x2_output_tile)(
                                    source.baseAddress!, stride, bias.baseAddress!, out.baseAddress!, rowStride,
                                    Int32(channels), pools ? 1 : 0, Int32(rows), Int32(columns))
                            }
                        }
                    }
                    #expect(
                        portable.map(\.bitPattern) == avx512.map(\.bitPattern),
                        "F(\(m)×\(m)), pools \(pools), \(rows)×\(columns) valid outputs")
                }
            }
        }
    }
}
