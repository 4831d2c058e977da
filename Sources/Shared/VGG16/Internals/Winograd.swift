import BLAS
import CShims

// The Winograd stages, their lanes and transforms live in one file on purpose: debug builds compile file by
// file, and only same-file generic code is specialised and inlined there.

extension ConvStage {
    // MARK: - Winograd F(2×2, 3×3)

    /// U_ξ[i][o] = (G g Gᵀ)[ξ] with g the 3×3 kernel of input channel i and output channel o,
    /// G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]]. Computed in Double, stored as Float.
    static func transformKernel(_ hwio: [Float], inChannels: Int, outChannels: Int, into u: UnsafeMutablePointer<Float>)
    {
        let pairs = inChannels * outChannels
        hwio.withUnsafeBufferPointer { kernel in
            for pair in 0..<pairs {
                @inline(__always) func k(_ kh: Int, _ kw: Int) -> Double {
                    Double(kernel[(kh * 3 + kw) * pairs + pair])
                }
                // G g: 4 rows of 3.
                var gg = (
                    (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0), (0.0, 0.0, 0.0)
                )
                @inline(__always) func rowsOfG(_ kw: Int) -> (Double, Double, Double, Double) {
                    let (k0, k1, k2) = (k(0, kw), k(1, kw), k(2, kw))
                    return (k0, 0.5 * (k0 + k1 + k2), 0.5 * (k0 - k1 + k2), k2)
                }
                let c0 = rowsOfG(0)
                let c1 = rowsOfG(1)
                let c2 = rowsOfG(2)
                gg.0 = (c0.0, c1.0, c2.0)
                gg.1 = (c0.1, c1.1, c2.1)
                gg.2 = (c0.2, c1.2, c2.2)
                gg.3 = (c0.3, c1.3, c2.3)
                // (G g) Gᵀ: each row r of 3 becomes 4.
                @inline(__always) func store(_ row: (Double, Double, Double), _ a: Int) {
                    let (r0, r1, r2) = row
                    u[(a * 4 + 0) * pairs + pair] = Float(r0)
                    u[(a * 4 + 1) * pairs + pair] = Float(0.5 * (r0 + r1 + r2))
                    u[(a * 4 + 2) * pairs + pair] = Float(0.5 * (r0 - r1 + r2))
                    u[(a * 4 + 3) * pairs + pair] = Float(r2)
                }
                store(gg.0, 0)
                store(gg.1, 1)
                store(gg.2, 2)
                store(gg.3, 3)
            }
        }
    }

    /// Whether F(4×4)'s and F(2×2)'s transforms run in the AVX-512F C kernels (`bn_winograd4x4_input_row`,
    /// `bn_winograd4x4_output_tile`, `bn_winograd2x2_…`) rather than the portable code below: on a CPU with
    /// AVX512F. Both compute each value with the same operations in the same order (the same bits,
    /// WinogradTransformTests); the C kernels take 16 channels per instruction, where the portable code, compiled
    /// for any x86-64, takes 4. F(6×6)'s transforms stay portable.
    static let avx512Transforms = CPUFeatures.hasAVX512F

    /// One Winograd layer pass F(m×m, 3×3), `T` giving m and the transforms: per band of tile rows, the input
    /// tiles of every image are transformed, one matrix product per Winograd point multiplies them by the
    /// transformed kernels, and the output transform adds bias, applies ReLU (and pools) into `destinations`.
    func runWinograd<T: WinogradTransform>(
        _: T.Type, inputs: [UnsafeMutablePointer<Float>], scratch convScratch: ConvScratch,
        into destinations: [UnsafeMutablePointer<Float>], rowStride: Int
    ) {
        let cin = inChannels
        let cout = outChannels
        let m = T.outputSize
        let points = T.points
        let scratch = convScratch.floats
        var firstTileRow = 0
        while firstTileRow < tilesHigh {
            let rows = min(bandRows, tilesHigh - firstTileRow)
            let tiles = rows * tilesWide  // per image
            // Rows of the products: image after image, each image's block padded to a multiple of
            // `groupRowAlignment` when several share a product, so that every image's rows meet the same
            // register blocking (OpenBLAS treats a last, partial block of rows differently).
            let slotRows = inputs.count > 1 ? Self.alignedGroupRows(tiles) : tiles
            let allTiles = inputs.count * slotRows
            let transformed = scratch  // points × allTiles × Cin: V_ξ = Bᵀ d B per tile and input channel
            let products = scratch + points * allTiles * cin  // points × allTiles × Cout: M_ξ = V_ξ U_ξ
            let avx512 = T.self != WinogradF6.self && Self.avx512Transforms
            let inputRow = T.self == WinogradF4.self ? bn_winograd4x4_input_row : bn_winograd2x2_input_row
            let outputTile = T.self == WinogradF4.self ? bn_winograd4x4_output_tile : bn_winograd2x2_output_tile
            for (slot, input) in inputs.enumerated() {
                for bandRow in 0..<rows {
                    let tileRow = firstTileRow + bandRow
                    if avx512 {
                        inputRow(
                            input + m * tileRow * paddedWidth * cin, paddedRowFloats, Int32(cin), Int32(tilesWide),
                            transformed + (slot * slotRows + bandRow * tilesWide) * cin, allTiles * cin)
                        continue
                    }
                    for tileColumn in 0..<tilesWide {
                        let origin = input + (m * tileRow * paddedWidth + m * tileColumn) * cin
                        let out = transformed + (slot * slotRows + bandRow * tilesWide + tileColumn) * cin
                        var c = 0
                        while c + 8 <= cin {
                            T.input(
                                SIMD8<Float>.self, origin + c, rowFloats: paddedRowFloats, pixel: cin, out + c,
                                stride: allTiles * cin)
                            c += 8
                        }
                        while c < cin {
                            T.input(
                                Float.self, origin + c, rowFloats: paddedRowFloats, pixel: cin, out + c,
                                stride: allTiles * cin)
                            c += 1
                        }
                    }
                }
            }
            if slotRows > tiles {
                for xi in 0..<points {
                    for slot in inputs.indices {
                        (transformed + (xi * allTiles + slot * slotRows + tiles) * cin).update(
                            repeating: 0, count: (slotRows - tiles) * cin)
                    }
                }
            }
            let packed = weights.packed
            let fp32Packed = weights.fp32Packed
            for xi in 0..<points {
                if fp32Packed {
                    packedSGEMM(
                        m: allTiles, transformed + xi * allTiles * cin, packedB: kernel + xi * cin * cout, k: cin,
                        n: cout, products + xi * allTiles * cout, workspace: convScratch.productWorkspace)
                } else if packed.isEmpty {
                    sgemm(
                        m: allTiles, n: cout, k: cin, transformed + xi * allTiles * cin, kernel + xi * cin * cout,
                        products + xi * allTiles * cout)
                } else {
                    bf16gemm(
                        m: allTiles, transformed + xi * allTiles * cin, packed[xi], products + xi * allTiles * cout,
                        workspace: convScratch.bf16Workspace)
                }
            }
            for (slot, destination) in destinations.enumerated() {
                for bandRow in 0..<rows {
                    let tileRow = firstTileRow + bandRow
                    for tileColumn in 0..<tilesWide {
                        let source = products + (slot * slotRows + bandRow * tilesWide + tileColumn) * cout
                        let (target, validRows, validColumns) = T.placement(
                            in: self, destination: destination, rowStride: rowStride, tileRow: tileRow,
                            tileColumn: tileColumn)
                        if avx512 {
                            outputTile(
                                source, allTiles * cout, bias, target, rowStride, Int32(cout), pools ? 1 : 0,
                                Int32(validRows), Int32(validColumns))
                            continue
                        }
                        var c = 0
                        while c + 8 <= cout {
                            T.output(
                                SIMD8<Float>.self, source + c, stride: allTiles * cout, bias: bias + c, target + c,
                                rowStride: rowStride, pixel: cout, pools: pools, rows: validRows, columns: validColumns)
                            c += 8
                        }
                        while c < cout {
                            T.output(
                                Float.self, source + c, stride: allTiles * cout, bias: bias + c, target + c,
                                rowStride: rowStride, pixel: cout, pools: pools, rows: validRows, columns: validColumns)
                            c += 1
                        }
                    }
                }
            }
            firstTileRow += rows
        }
    }
}

/// A float or a SIMD vector of floats, so the Winograd transforms are written once for the vector body
/// and the scalar tail of a channel loop.
protocol WinogradLane {
    static var zero: Self { get }
    static func * (a: Self, b: Float) -> Self
    static func + (a: Self, b: Self) -> Self
    static func - (a: Self, b: Self) -> Self
    static func larger(_ a: Self, _ b: Self) -> Self
    static func load(_ pointer: UnsafePointer<Float>) -> Self
    func store(_ pointer: UnsafeMutablePointer<Float>)
}

extension Float: WinogradLane {
    @inline(__always) static func larger(_ a: Float, _ b: Float) -> Float { b > a ? b : a }
    @inline(__always) static func load(_ pointer: UnsafePointer<Float>) -> Float { pointer.pointee }
    @inline(__always) func store(_ pointer: UnsafeMutablePointer<Float>) { pointer.pointee = self }
}

extension SIMD8: WinogradLane where Scalar == Float {
    /// `pointwiseMax` is not inlined and goes lane by lane with NaN rules; a compare and blend is.
    @inline(__always) static func larger(_ a: Self, _ b: Self) -> Self { a.replacing(with: b, where: a .< b) }
    @inline(__always) static func load(_ pointer: UnsafePointer<Float>) -> Self {
        UnsafeRawPointer(pointer).loadUnaligned(as: Self.self)
    }
    @inline(__always) func store(_ pointer: UnsafeMutablePointer<Float>) {
        UnsafeMutableRawPointer(pointer).storeBytes(of: self, as: Self.self)
    }
}

/// V = Bᵀ d B for one 4×4 input tile d (rows `rowFloats` apart, columns `pixel` apart), written as
/// V_ξ at `out + ξ·stride`; Bᵀ = [[1, 0, -1, 0], [0, 1, 1, 0], [0, -1, 1, 0], [0, 1, 0, -1]].
@inline(__always)
func winogradInput<L: WinogradLane>(
    _: L.Type, _ origin: UnsafePointer<Float>, rowFloats: Int, pixel: Int, _ out: UnsafeMutablePointer<Float>,
    stride: Int
) {
    @inline(__always) func d(_ i: Int, _ j: Int) -> L { L.load(origin + i * rowFloats + j * pixel) }
    // Bᵀ d, one column j at a time, then (Bᵀ d) B along each row.
    @inline(__always) func column(_ j: Int) -> (L, L, L, L) {
        let d0 = d(0, j)
        let d1 = d(1, j)
        let d2 = d(2, j)
        let d3 = d(3, j)
        return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    }
    let c0 = column(0)
    let c1 = column(1)
    let c2 = column(2)
    let c3 = column(3)
    @inline(__always) func row(_ t0: L, _ t1: L, _ t2: L, _ t3: L, _ i: Int) {
        (t0 - t2).store(out + (i * 4 + 0) * stride)
        (t1 + t2).store(out + (i * 4 + 1) * stride)
        (t2 - t1).store(out + (i * 4 + 2) * stride)
        (t1 - t3).store(out + (i * 4 + 3) * stride)
    }
    row(c0.0, c1.0, c2.0, c3.0, 0)
    row(c0.1, c1.1, c2.1, c3.1, 1)
    row(c0.2, c1.2, c2.2, c3.2, 2)
    row(c0.3, c1.3, c2.3, c3.3, 3)
}

/// Y = Aᵀ M A for one tile (M_ξ at `source + ξ·stride`), Aᵀ = [[1, 1, 1, 0], [0, 1, -1, -1]]; then bias and
/// ReLU, and either the max of the 2×2 outputs (`pools`, one pixel at `target`) or the `rows` × `columns`
/// valid outputs at `target` (rows `rowStride` apart, pixels `pixel` apart).
@inline(__always)
func winogradOutput<L: WinogradLane>(
    _: L.Type, _ source: UnsafePointer<Float>, stride: Int, bias: UnsafePointer<Float>,
    _ target: UnsafeMutablePointer<Float>,
    rowStride: Int, pixel: Int, pools: Bool, rows: Int, columns: Int
) {
    @inline(__always) func m(_ a: Int, _ b: Int) -> L { L.load(source + (a * 4 + b) * stride) }
    // Aᵀ M: two rows of four.
    @inline(__always) func column(_ b: Int) -> (L, L) {
        let m0 = m(0, b)
        let m1 = m(1, b)
        let m2 = m(2, b)
        let m3 = m(3, b)
        return (m0 + m1 + m2, m1 - m2 - m3)
    }
    let s0 = column(0)
    let s1 = column(1)
    let s2 = column(2)
    let s3 = column(3)
    let y00 = s0.0 + s1.0 + s2.0
    let y01 = s1.0 - s2.0 - s3.0
    let y10 = s0.1 + s1.1 + s2.1
    let y11 = s1.1 - s2.1 - s3.1
    let b = L.load(bias)
    if pools {
        let top = L.larger(y00, y01)
        let bottom = L.larger(y10, y11)
        L.larger(L.larger(top, bottom) + b, .zero).store(target)
        return
    }
    L.larger(y00 + b, .zero).store(target)
    if columns > 1 { L.larger(y01 + b, .zero).store(target + pixel) }
    if rows > 1 {
        L.larger(y10 + b, .zero).store(target + rowStride)
        if columns > 1 { L.larger(y11 + b, .zero).store(target + rowStride + pixel) }
    }
}

extension ConvStage {
    // MARK: - Winograd F(4×4, 3×3)

    /// U_ξ[i][o] = (G g Gᵀ)[ξ], ξ over the 6×6 transformed tile, with the interpolation points 0, ±1, ±2, ∞:
    /// G = [[¼, 0, 0], [-⅙, -⅙, -⅙], [-⅙, ⅙, -⅙], [1/24, 1/12, ⅙], [1/24, -1/12, ⅙], [0, 0, 1]].
    /// Computed in Double, stored as Float.
    static func transformKernel4x4(
        _ hwio: [Float], inChannels: Int, outChannels: Int, into u: UnsafeMutablePointer<Float>
    ) {
        let pairs = inChannels * outChannels
        typealias Six = (Double, Double, Double, Double, Double, Double)
        @inline(__always) func gTimes(_ k0: Double, _ k1: Double, _ k2: Double) -> Six {
            (
                k0 / 4, -(k0 + k1 + k2) / 6, -(k0 - k1 + k2) / 6, k0 / 24 + k1 / 12 + k2 / 6,
                k0 / 24 - k1 / 12 + k2 / 6, k2
            )
        }
        hwio.withUnsafeBufferPointer { kernel in
            for pair in 0..<pairs {
                @inline(__always) func k(_ kh: Int, _ kw: Int) -> Double {
                    Double(kernel[(kh * 3 + kw) * pairs + pair])
                }
                // G g, column by column: c_kw holds rows 0…5 of column kw.
                let c0 = gTimes(k(0, 0), k(1, 0), k(2, 0))
                let c1 = gTimes(k(0, 1), k(1, 1), k(2, 1))
                let c2 = gTimes(k(0, 2), k(1, 2), k(2, 2))
                // (G g) Gᵀ, row by row.
                @inline(__always) func store(_ a: Int, _ r0: Double, _ r1: Double, _ r2: Double) {
                    let row = gTimes(r0, r1, r2)
                    let base = u + a * 6 * pairs + pair
                    base[0] = Float(row.0)
                    base[pairs] = Float(row.1)
                    base[2 * pairs] = Float(row.2)
                    base[3 * pairs] = Float(row.3)
                    base[4 * pairs] = Float(row.4)
                    base[5 * pairs] = Float(row.5)
                }
                store(0, c0.0, c1.0, c2.0)
                store(1, c0.1, c1.1, c2.1)
                store(2, c0.2, c1.2, c2.2)
                store(3, c0.3, c1.3, c2.3)
                store(4, c0.4, c1.4, c2.4)
                store(5, c0.5, c1.5, c2.5)
            }
        }
    }

}

/// Bᵀ x for one column or row x of a 6×6 tile, Bᵀ = [[4, 0, -5, 0, 1, 0], [0, -4, -4, 1, 1, 0],
/// [0, 4, -4, -1, 1, 0], [0, -2, -1, 2, 1, 0], [0, 2, -1, -2, 1, 0], [0, 4, 0, -5, 0, 1]].
@inline(__always)
func winograd4x4B<L: WinogradLane>(_ x0: L, _ x1: L, _ x2: L, _ x3: L, _ x4: L, _ x5: L) -> (L, L, L, L, L, L) {
    let a = x4 - x2
    let b = x3 - x1
    let c = x3 + x4
    let d = x1 + x2
    let e = x4 - x3
    let f = x1 - x2
    return (
        x0 * 4 - x2 * 5 + x4, c - d * 4, e + f * 4, a + b * 2, a - b * 2, x1 * 4 - x3 * 5 + x5
    )
}

/// V = Bᵀ d B for one 6×6 input tile d (rows `rowFloats` apart, columns `pixel` apart), written as V_ξ at
/// `out + ξ·stride`, ξ = 6·row + column.
@inline(__always)
func winograd4x4Input<L: WinogradLane>(
    _: L.Type, _ origin: UnsafePointer<Float>, rowFloats: Int, pixel: Int, _ out: UnsafeMutablePointer<Float>,
    stride: Int
) {
    @inline(__always) func column(_ j: Int) -> (L, L, L, L, L, L) {
        let p = origin + j * pixel
        return winograd4x4B(
            L.load(p), L.load(p + rowFloats), L.load(p + 2 * rowFloats), L.load(p + 3 * rowFloats),
            L.load(p + 4 * rowFloats), L.load(p + 5 * rowFloats))
    }
    let c0 = column(0)
    let c1 = column(1)
    let c2 = column(2)
    let c3 = column(3)
    let c4 = column(4)
    let c5 = column(5)
    @inline(__always) func row(_ i: Int, _ t: (L, L, L, L, L, L)) {
        let v = winograd4x4B(t.0, t.1, t.2, t.3, t.4, t.5)
        let base = out + 6 * i * stride
        v.0.store(base)
        v.1.store(base + stride)
        v.2.store(base + 2 * stride)
        v.3.store(base + 3 * stride)
        v.4.store(base + 4 * stride)
        v.5.store(base + 5 * stride)
    }
    row(0, (c0.0, c1.0, c2.0, c3.0, c4.0, c5.0))
    row(1, (c0.1, c1.1, c2.1, c3.1, c4.1, c5.1))
    row(2, (c0.2, c1.2, c2.2, c3.2, c4.2, c5.2))
    row(3, (c0.3, c1.3, c2.3, c3.3, c4.3, c5.3))
    row(4, (c0.4, c1.4, c2.4, c3.4, c4.4, c5.4))
    row(5, (c0.5, c1.5, c2.5, c3.5, c4.5, c5.5))
}

/// Aᵀ x for one column or row x of a 6×6 product tile, Aᵀ = [[1, 1, 1, 1, 1, 0], [0, 1, -1, 2, -2, 0],
/// [0, 1, 1, 4, 4, 0], [0, 1, -1, 8, -8, 1]].
@inline(__always)
func winograd4x4A<L: WinogradLane>(_ x0: L, _ x1: L, _ x2: L, _ x3: L, _ x4: L, _ x5: L) -> (L, L, L, L) {
    let sum12 = x1 + x2
    let difference12 = x1 - x2
    let sum34 = x3 + x4
    let difference34 = x3 - x4
    return (
        x0 + sum12 + sum34, difference12 + difference34 * 2, sum12 + sum34 * 4, difference12 + difference34 * 8 + x5
    )
}

/// Y = Aᵀ M A for one tile (M_ξ at `source + ξ·stride`), then bias and ReLU; writes either the 2×2 max-pooled
/// outputs of the 4×4 tile (`pools`, at most `rows`/2 × `columns`/2 of them) or its `rows` × `columns`
/// valid outputs, at `target` (rows `rowStride` apart, pixels `pixel` apart).
@inline(__always)
func winograd4x4Output<L: WinogradLane>(
    _: L.Type, _ source: UnsafePointer<Float>, stride: Int, bias: UnsafePointer<Float>,
    _ target: UnsafeMutablePointer<Float>,
    rowStride: Int, pixel: Int, pools: Bool, rows: Int, columns: Int
) {
    @inline(__always) func column(_ b: Int) -> (L, L, L, L) {
        let p = source + b * stride
        return winograd4x4A(
            L.load(p), L.load(p + 6 * stride), L.load(p + 12 * stride), L.load(p + 18 * stride),
            L.load(p + 24 * stride),
            L.load(p + 30 * stride))
    }
    let s0 = column(0)
    let s1 = column(1)
    let s2 = column(2)
    let s3 = column(3)
    let s4 = column(4)
    let s5 = column(5)
    let y0 = winograd4x4A(s0.0, s1.0, s2.0, s3.0, s4.0, s5.0)
    let y1 = winograd4x4A(s0.1, s1.1, s2.1, s3.1, s4.1, s5.1)
    let y2 = winograd4x4A(s0.2, s1.2, s2.2, s3.2, s4.2, s5.2)
    let y3 = winograd4x4A(s0.3, s1.3, s2.3, s3.3, s4.3, s5.3)
    let b = L.load(bias)
    if pools {
        @inline(__always) func pooled(_ top: (L, L), _ bottom: (L, L)) -> L {
            L.larger(L.larger(L.larger(top.0, top.1), L.larger(bottom.0, bottom.1)) + b, .zero)
        }
        pooled((y0.0, y0.1), (y1.0, y1.1)).store(target)
        if columns > 2 { pooled((y0.2, y0.3), (y1.2, y1.3)).store(target + pixel) }
        if rows > 2 {
            pooled((y2.0, y2.1), (y3.0, y3.1)).store(target + rowStride)
            if columns > 2 { pooled((y2.2, y2.3), (y3.2, y3.3)).store(target + rowStride + pixel) }
        }
        return
    }
    @inline(__always) func writeRow(_ y: (L, L, L, L), _ row: UnsafeMutablePointer<Float>) {
        L.larger(y.0 + b, .zero).store(row)
        if columns > 1 { L.larger(y.1 + b, .zero).store(row + pixel) }
        if columns > 2 { L.larger(y.2 + b, .zero).store(row + 2 * pixel) }
        if columns > 3 { L.larger(y.3 + b, .zero).store(row + 3 * pixel) }
    }
    writeRow(y0, target)
    if rows > 1 { writeRow(y1, target + rowStride) }
    if rows > 2 { writeRow(y2, target + 2 * rowStride) }
    if rows > 3 { writeRow(y3, target + 3 * rowStride) }
}

// MARK: - The two Winograd algorithms as parameters of `runWinograd`

/// One Winograd algorithm F(m×m, 3×3): its output tile size, its transforms, and where a tile's outputs go.
protocol WinogradTransform {
    /// m: output pixels per tile side (input tiles are m + 2 wide).
    static var outputSize: Int { get }
    /// (m + 2)²: Winograd points, one matrix product each.
    static var points: Int { get }
    static func input<L: WinogradLane>(
        _: L.Type, _ origin: UnsafePointer<Float>, rowFloats: Int, pixel: Int, _ out: UnsafeMutablePointer<Float>,
        stride: Int)
    static func output<L: WinogradLane>(
        _: L.Type, _ source: UnsafePointer<Float>, stride: Int, bias: UnsafePointer<Float>,
        _ target: UnsafeMutablePointer<Float>, rowStride: Int, pixel: Int, pools: Bool, rows: Int, columns: Int)
    /// Where the tile at (`tileRow`, `tileColumn`) writes, and how many of its output rows and columns are valid.
    static func placement(
        in stage: ConvStage, destination: UnsafeMutablePointer<Float>, rowStride: Int, tileRow: Int, tileColumn: Int
    ) -> (target: UnsafeMutablePointer<Float>, rows: Int, columns: Int)
}

/// F(2×2, 3×3): 4×4 input tiles, 16 points.
enum WinogradF2: WinogradTransform {
    static var outputSize: Int { 2 }
    static var points: Int { 16 }

    @inline(__always)
    static func input<L: WinogradLane>(
        _ lane: L.Type, _ origin: UnsafePointer<Float>, rowFloats: Int, pixel: Int, _ out: UnsafeMutablePointer<Float>,
        stride: Int
    ) {
        winogradInput(lane, origin, rowFloats: rowFloats, pixel: pixel, out, stride: stride)
    }

    @inline(__always)
    static func output<L: WinogradLane>(
        _ lane: L.Type, _ source: UnsafePointer<Float>, stride: Int, bias: UnsafePointer<Float>,
        _ target: UnsafeMutablePointer<Float>, rowStride: Int, pixel: Int, pools: Bool, rows: Int, columns: Int
    ) {
        winogradOutput(
            lane, source, stride: stride, bias: bias, target, rowStride: rowStride, pixel: pixel, pools: pools,
            rows: rows, columns: columns)
    }

    /// Pooling: one pooled pixel per tile (the tile grid covers only whole 2×2 windows). Otherwise up to 2×2
    /// pixels, fewer at the bottom and right edges of an odd-sized map.
    @inline(__always)
    static func placement(
        in stage: ConvStage, destination: UnsafeMutablePointer<Float>, rowStride: Int, tileRow: Int, tileColumn: Int
    ) -> (target: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        let cout = stage.outChannels
        if stage.pools { return (destination + tileRow * rowStride + tileColumn * cout, 2, 2) }
        return (
            destination + 2 * tileRow * rowStride + 2 * tileColumn * cout, min(2, stage.height - 2 * tileRow),
            min(2, stage.width - 2 * tileColumn)
        )
    }
}

/// F(4×4, 3×3): 6×6 input tiles, 36 points.
enum WinogradF4: WinogradTransform {
    static var outputSize: Int { 4 }
    static var points: Int { 36 }

    @inline(__always)
    static func input<L: WinogradLane>(
        _ lane: L.Type, _ origin: UnsafePointer<Float>, rowFloats: Int, pixel: Int, _ out: UnsafeMutablePointer<Float>,
        stride: Int
    ) {
        winograd4x4Input(lane, origin, rowFloats: rowFloats, pixel: pixel, out, stride: stride)
    }

    @inline(__always)
    static func output<L: WinogradLane>(
        _ lane: L.Type, _ source: UnsafePointer<Float>, stride: Int, bias: UnsafePointer<Float>,
        _ target: UnsafeMutablePointer<Float>, rowStride: Int, pixel: Int, pools: Bool, rows: Int, columns: Int
    ) {
        winograd4x4Output(
            lane, source, stride: stride, bias: bias, target, rowStride: rowStride, pixel: pixel, pools: pools,
            rows: rows, columns: columns)
    }

    /// Up to 4×4 outputs (2×2 pooled) per tile, fewer where the map (cut to whole pooling windows) ends.
    @inline(__always)
    static func placement(
        in stage: ConvStage, destination: UnsafeMutablePointer<Float>, rowStride: Int, tileRow: Int, tileColumn: Int
    ) -> (target: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        let cout = stage.outChannels
        let rowsNeeded = stage.pools ? (stage.height / 2) * 2 : stage.height
        let columnsNeeded = stage.pools ? (stage.width / 2) * 2 : stage.width
        let scale = stage.pools ? 2 : 4
        return (
            destination + scale * tileRow * rowStride + scale * tileColumn * cout, min(4, rowsNeeded - 4 * tileRow),
            min(4, columnsNeeded - 4 * tileColumn)
        )
    }
}

// MARK: - Winograd F(6×6, 3×3)

extension ConvStage {
    /// U_ξ[i][o] = (G g Gᵀ)[ξ], ξ over the 8×8 transformed tile, with the interpolation points 0, ±1, ±2, ±½, ∞:
    /// G = [[1, 0, 0], [-2/9, -2/9, -2/9], [-2/9, 2/9, -2/9], [1/90, 1/45, 2/45], [1/90, -1/45, 2/45],
    /// [32/45, 16/45, 8/45], [32/45, -16/45, 8/45], [0, 0, 1]]. Computed in Double, stored as Float.
    static func transformKernel6x6(
        _ hwio: [Float], inChannels: Int, outChannels: Int, into u: UnsafeMutablePointer<Float>
    ) {
        let pairs = inChannels * outChannels
        typealias Eight = (Double, Double, Double, Double, Double, Double, Double, Double)
        @inline(__always) func gTimes(_ k0: Double, _ k1: Double, _ k2: Double) -> Eight {
            (
                k0, -2 * (k0 + k1 + k2) / 9, -2 * (k0 - k1 + k2) / 9, k0 / 90 + k1 / 45 + 2 * k2 / 45,
                k0 / 90 - k1 / 45 + 2 * k2 / 45, 32 * k0 / 45 + 16 * k1 / 45 + 8 * k2 / 45,
                32 * k0 / 45 - 16 * k1 / 45 + 8 * k2 / 45, k2
            )
        }
        hwio.withUnsafeBufferPointer { kernel in
            for pair in 0..<pairs {
                @inline(__always) func k(_ kh: Int, _ kw: Int) -> Double {
                    Double(kernel[(kh * 3 + kw) * pairs + pair])
                }
                // G g, column by column: c_kw holds rows 0…7 of column kw.
                let c0 = gTimes(k(0, 0), k(1, 0), k(2, 0))
                let c1 = gTimes(k(0, 1), k(1, 1), k(2, 1))
                let c2 = gTimes(k(0, 2), k(1, 2), k(2, 2))
                // (G g) Gᵀ, row by row.
                @inline(__always) func store(_ a: Int, _ r0: Double, _ r1: Double, _ r2: Double) {
                    let row = gTimes(r0, r1, r2)
                    let base = u + a * 8 * pairs + pair
                    base[0] = Float(row.0)
                    base[pairs] = Float(row.1)
                    base[2 * pairs] = Float(row.2)
                    base[3 * pairs] = Float(row.3)
                    base[4 * pairs] = Float(row.4)
                    base[5 * pairs] = Float(row.5)
                    base[6 * pairs] = Float(row.6)
                    base[7 * pairs] = Float(row.7)
                }
                store(0, c0.0, c1.0, c2.0)
                store(1, c0.1, c1.1, c2.1)
                store(2, c0.2, c1.2, c2.2)
                store(3, c0.3, c1.3, c2.3)
                store(4, c0.4, c1.4, c2.4)
                store(5, c0.5, c1.5, c2.5)
                store(6, c0.6, c1.6, c2.6)
                store(7, c0.7, c1.7, c2.7)
            }
        }
    }
}

/// Bᵀ x for one column or row x of an 8×8 tile, Bᵀ = [[1, 0, -21/4, 0, 21/4, 0, -1, 0],
/// [0, 1, 1, -17/4, -17/4, 1, 1, 0], [0, -1, 1, 17/4, -17/4, -1, 1, 0], [0, ½, ¼, -5/2, -5/4, 2, 1, 0],
/// [0, -½, ¼, 5/2, -5/4, -2, 1, 0], [0, 2, 4, -5/2, -5, ½, 1, 0], [0, -2, 4, 5/2, -5, -½, 1, 0],
/// [0, -1, 0, 21/4, 0, -21/4, 0, 1]].
@inline(__always)
func winograd6x6B<L: WinogradLane>(
    _ x0: L, _ x1: L, _ x2: L, _ x3: L, _ x4: L, _ x5: L, _ x6: L, _ x7: L
) -> (L, L, L, L, L, L, L, L) {
    let t1 = x2 + x6 - x4 * 4.25
    let t2 = x1 + x5 - x3 * 4.25
    let t3 = x6 + x2 * 0.25 - x4 * 1.25
    let t4 = x1 * 0.5 - x3 * 2.5 + x5 * 2
    let t5 = x6 + x2 * 4 - x4 * 5
    let t6 = x1 * 2 - x3 * 2.5 + x5 * 0.5
    return (
        x0 - x6 + (x4 - x2) * 5.25, t1 + t2, t1 - t2, t3 + t4, t3 - t4, t5 + t6, t5 - t6,
        x7 - x1 + (x3 - x5) * 5.25
    )
}

/// V = Bᵀ d B for one 8×8 input tile d (rows `rowFloats` apart, columns `pixel` apart), written as V_ξ at
/// `out + ξ·stride`, ξ = 8·row + column.
@inline(__always)
func winograd6x6Input<L: WinogradLane>(
    _: L.Type, _ origin: UnsafePointer<Float>, rowFloats: Int, pixel: Int, _ out: UnsafeMutablePointer<Float>,
    stride: Int
) {
    @inline(__always) func column(_ j: Int) -> (L, L, L, L, L, L, L, L) {
        let p = origin + j * pixel
        return winograd6x6B(
            L.load(p), L.load(p + rowFloats), L.load(p + 2 * rowFloats), L.load(p + 3 * rowFloats),
            L.load(p + 4 * rowFloats), L.load(p + 5 * rowFloats), L.load(p + 6 * rowFloats),
            L.load(p + 7 * rowFloats))
    }
    let c0 = column(0)
    let c1 = column(1)
    let c2 = column(2)
    let c3 = column(3)
    let c4 = column(4)
    let c5 = column(5)
    let c6 = column(6)
    let c7 = column(7)
    @inline(__always) func row(_ i: Int, _ t: (L, L, L, L, L, L, L, L)) {
        let v = winograd6x6B(t.0, t.1, t.2, t.3, t.4, t.5, t.6, t.7)
        let base = out + 8 * i * stride
        v.0.store(base)
        v.1.store(base + stride)
        v.2.store(base + 2 * stride)
        v.3.store(base + 3 * stride)
        v.4.store(base + 4 * stride)
        v.5.store(base + 5 * stride)
        v.6.store(base + 6 * stride)
        v.7.store(base + 7 * stride)
    }
    row(0, (c0.0, c1.0, c2.0, c3.0, c4.0, c5.0, c6.0, c7.0))
    row(1, (c0.1, c1.1, c2.1, c3.1, c4.1, c5.1, c6.1, c7.1))
    row(2, (c0.2, c1.2, c2.2, c3.2, c4.2, c5.2, c6.2, c7.2))
    row(3, (c0.3, c1.3, c2.3, c3.3, c4.3, c5.3, c6.3, c7.3))
    row(4, (c0.4, c1.4, c2.4, c3.4, c4.4, c5.4, c6.4, c7.4))
    row(5, (c0.5, c1.5, c2.5, c3.5, c4.5, c5.5, c6.5, c7.5))
    row(6, (c0.6, c1.6, c2.6, c3.6, c4.6, c5.6, c6.6, c7.6))
    row(7, (c0.7, c1.7, c2.7, c3.7, c4.7, c5.7, c6.7, c7.7))
}

/// Aᵀ x for one column or row x of an 8×8 product tile, Aᵀ = [[1, 1, 1, 1, 1, 1, 1, 0],
/// [0, 1, -1, 2, -2, ½, -½, 0], [0, 1, 1, 4, 4, ¼, ¼, 0], [0, 1, -1, 8, -8, ⅛, -⅛, 0],
/// [0, 1, 1, 16, 16, 1/16, 1/16, 0], [0, 1, -1, 32, -32, 1/32, -1/32, 1]].
@inline(__always)
func winograd6x6A<L: WinogradLane>(
    _ x0: L, _ x1: L, _ x2: L, _ x3: L, _ x4: L, _ x5: L, _ x6: L, _ x7: L
) -> (L, L, L, L, L, L) {
    let s1 = x1 + x2
    let d1 = x1 - x2
    let s2 = x3 + x4
    let d2 = x3 - x4
    let s3 = x5 + x6
    let d3 = x5 - x6
    return (
        x0 + s1 + s2 + s3, d1 + d2 * 2 + d3 * 0.5, s1 + s2 * 4 + s3 * 0.25, d1 + d2 * 8 + d3 * 0.125,
        s1 + s2 * 16 + s3 * 0.0625, d1 + d2 * 32 + d3 * 0.03125 + x7
    )
}

/// Y = Aᵀ M A for one tile (M_ξ at `source + ξ·stride`), then bias and ReLU; writes either the 3×3 max-pooled
/// outputs of the 6×6 tile (`pools`, `rows`/2 × `columns`/2 of them; `rows` and `columns` are even then) or its
/// `rows` × `columns` valid outputs, at `target` (rows `rowStride` apart, pixels `pixel` apart).
@inline(__always)
func winograd6x6Output<L: WinogradLane>(
    _: L.Type, _ source: UnsafePointer<Float>, stride: Int, bias: UnsafePointer<Float>,
    _ target: UnsafeMutablePointer<Float>,
    rowStride: Int, pixel: Int, pools: Bool, rows: Int, columns: Int
) {
    @inline(__always) func column(_ b: Int) -> (L, L, L, L, L, L) {
        let p = source + b * stride
        return winograd6x6A(
            L.load(p), L.load(p + 8 * stride), L.load(p + 16 * stride), L.load(p + 24 * stride),
            L.load(p + 32 * stride), L.load(p + 40 * stride), L.load(p + 48 * stride), L.load(p + 56 * stride))
    }
    let s0 = column(0)
    let s1 = column(1)
    let s2 = column(2)
    let s3 = column(3)
    let s4 = column(4)
    let s5 = column(5)
    let s6 = column(6)
    let s7 = column(7)
    let y0 = winograd6x6A(s0.0, s1.0, s2.0, s3.0, s4.0, s5.0, s6.0, s7.0)
    let y1 = winograd6x6A(s0.1, s1.1, s2.1, s3.1, s4.1, s5.1, s6.1, s7.1)
    let y2 = winograd6x6A(s0.2, s1.2, s2.2, s3.2, s4.2, s5.2, s6.2, s7.2)
    let y3 = winograd6x6A(s0.3, s1.3, s2.3, s3.3, s4.3, s5.3, s6.3, s7.3)
    let y4 = winograd6x6A(s0.4, s1.4, s2.4, s3.4, s4.4, s5.4, s6.4, s7.4)
    let y5 = winograd6x6A(s0.5, s1.5, s2.5, s3.5, s4.5, s5.5, s6.5, s7.5)
    let b = L.load(bias)
    if pools {
        @inline(__always) func pooledRow(
            _ top: (L, L, L, L, L, L), _ bottom: (L, L, L, L, L, L), _ row: UnsafeMutablePointer<Float>
        ) {
            @inline(__always) func window(_ a: L, _ b2: L, _ c: L, _ d: L) -> L {
                L.larger(L.larger(L.larger(a, b2), L.larger(c, d)) + b, .zero)
            }
            window(top.0, top.1, bottom.0, bottom.1).store(row)
            if columns > 2 { window(top.2, top.3, bottom.2, bottom.3).store(row + pixel) }
            if columns > 4 { window(top.4, top.5, bottom.4, bottom.5).store(row + 2 * pixel) }
        }
        pooledRow(y0, y1, target)
        if rows > 2 { pooledRow(y2, y3, target + rowStride) }
        if rows > 4 { pooledRow(y4, y5, target + 2 * rowStride) }
        return
    }
    @inline(__always) func writeRow(_ y: (L, L, L, L, L, L), _ row: UnsafeMutablePointer<Float>) {
        L.larger(y.0 + b, .zero).store(row)
        if columns > 1 { L.larger(y.1 + b, .zero).store(row + pixel) }
        if columns > 2 { L.larger(y.2 + b, .zero).store(row + 2 * pixel) }
        if columns > 3 { L.larger(y.3 + b, .zero).store(row + 3 * pixel) }
        if columns > 4 { L.larger(y.4 + b, .zero).store(row + 4 * pixel) }
        if columns > 5 { L.larger(y.5 + b, .zero).store(row + 5 * pixel) }
    }
    writeRow(y0, target)
    if rows > 1 { writeRow(y1, target + rowStride) }
    if rows > 2 { writeRow(y2, target + 2 * rowStride) }
    if rows > 3 { writeRow(y3, target + 3 * rowStride) }
    if rows > 4 { writeRow(y4, target + 4 * rowStride) }
    if rows > 5 { writeRow(y5, target + 5 * rowStride) }
}

/// F(6×6, 3×3): 8×8 input tiles, 64 points.
enum WinogradF6: WinogradTransform {
    static var outputSize: Int { 6 }
    static var points: Int { 64 }

    @inline(__always)
    static func input<L: WinogradLane>(
        _ lane: L.Type, _ origin: UnsafePointer<Float>, rowFloats: Int, pixel: Int, _ out: UnsafeMutablePointer<Float>,
        stride: Int
    ) {
        winograd6x6Input(lane, origin, rowFloats: rowFloats, pixel: pixel, out, stride: stride)
    }

    @inline(__always)
    static func output<L: WinogradLane>(
        _ lane: L.Type, _ source: UnsafePointer<Float>, stride: Int, bias: UnsafePointer<Float>,
        _ target: UnsafeMutablePointer<Float>, rowStride: Int, pixel: Int, pools: Bool, rows: Int, columns: Int
    ) {
        winograd6x6Output(
            lane, source, stride: stride, bias: bias, target, rowStride: rowStride, pixel: pixel, pools: pools,
            rows: rows, columns: columns)
    }

    /// Up to 6×6 outputs (3×3 pooled) per tile, fewer where the map (cut to whole pooling windows) ends.
    @inline(__always)
    static func placement(
        in stage: ConvStage, destination: UnsafeMutablePointer<Float>, rowStride: Int, tileRow: Int, tileColumn: Int
    ) -> (target: UnsafeMutablePointer<Float>, rows: Int, columns: Int) {
        let cout = stage.outChannels
        let rowsNeeded = stage.pools ? (stage.height / 2) * 2 : stage.height
        let columnsNeeded = stage.pools ? (stage.width / 2) * 2 : stage.width
        let scale = stage.pools ? 3 : 6
        return (
            destination + scale * tileRow * rowStride + scale * tileColumn * cout, min(6, rowsNeeded - 6 * tileRow),
            min(6, columnsNeeded - 6 * tileColumn)
        )
    }
}
