import BLAS
import CShims
import Testing

@testable import VGG16

/// The AVX-512F F(4×4) transforms of the C shims against the portable Swift ones: the same bits.
@Suite("Winograd F(4×4) transforms in AVX-512F")
struct WinogradTransformTests {
    /// Values of both signs and many magnitudes, with zeros, a negative zero and values that round.
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
        "the input transform gives the portable transform's bits for any channel count",
        .enabled(if: CPUFeatures.hasAVX512F, "skipped: this CPU lacks AVX512F"),
        arguments: [1, 3, 8, 16, 24, 64, 67, 128])
    func inputTransformMatches(channels: Int) {
        let tiles = 3
        let width = 4 * tiles + 2
        let rowFloats = width * channels
        let input = Self.values(6 * rowFloats, seed: UInt64(channels))
        let stride = tiles * channels
        var portable = [Float](repeating: .nan, count: 36 * stride)
        var avx512 = [Float](repeating: .nan, count: 36 * stride)
        input.withUnsafeBufferPointer { source in
            portable.withUnsafeMutableBufferPointer { out in
                for tile in 0..<tiles {
                    for channel in 0..<channels {
                        winograd4x4Input(
                            Float.self, source.baseAddress! + 4 * tile * channels + channel, rowFloats: rowFloats,
                            pixel: channels, out.baseAddress! + tile * channels + channel, stride: stride)
                    }
                }
            }
            avx512.withUnsafeMutableBufferPointer { out in
                bn_winograd4x4_input_row(
                    source.baseAddress!, rowFloats, Int32(channels), Int32(tiles), out.baseAddress!, stride)
            }
        }
        #expect(portable.map(\.bitPattern) == avx512.map(\.bitPattern))
    }

    @Test(
        "the output transform gives the portable transform's bits, pooled or not, whole tiles or edges",
        .enabled(if: CPUFeatures.hasAVX512F, "skipped: this CPU lacks AVX512F"),
        arguments: [1, 5, 16, 40, 64])
    func outputTransformMatches(channels: Int) {
        let stride = channels
        let products = Self.values(36 * stride, seed: 99 + UInt64(channels))
        let bias = Self.values(channels, seed: 7)
        for pools in [false, true] {
            for (rows, columns) in [(4, 4), (3, 4), (4, 1), (2, 2), (1, 3)] {
                let rowStride = 5 * channels
                var portable = [Float](repeating: .nan, count: 4 * rowStride)
                var avx512 = portable
                products.withUnsafeBufferPointer { source in
                    bias.withUnsafeBufferPointer { bias in
                        portable.withUnsafeMutableBufferPointer { out in
                            for channel in 0..<channels {
                                winograd4x4Output(
                                    Float.self, source.baseAddress! + channel, stride: stride,
                                    bias: bias.baseAddress! + channel, out.baseAddress! + channel,
                                    rowStride: rowStride, pixel: channels, pools: pools, rows: rows, columns: columns)
                            }
                        }
                        avx512.withUnsafeMutableBufferPointer { out in
                            bn_winograd4x4_output_tile(
                                source.baseAddress!, stride, bias.baseAddress!, out.baseAddress!, rowStride,
                                Int32(channels), pools ? 1 : 0, Int32(rows), Int32(columns))
                        }
                    }
                }
                #expect(
                    portable.map(\.bitPattern) == avx512.map(\.bitPattern),
                    "pools \(pools), \(rows)×\(columns) valid outputs")
            }
        }
    }
}
