import COpenBLAS

/// One scratch buffer shared by the stages of a `ConvBase` (they run one after another).
final class ConvScratch {
    let floats: UnsafeMutablePointer<Float>
    let count: Int

    init(floats count: Int) {
        self.count = max(1, count)
        floats = allocateFloats(self.count)
    }

    deinit { floats.deallocate() }
}

/// 64-byte aligned, zeroed floats; free with `deallocate()`.
func allocateFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<Float>.stride, alignment: 64)
    return raw.initializeMemory(as: Float.self, repeating: 0, count: max(1, count))
}

/// One conv layer at a fixed spatial size: its weights in the form its algorithm wants, its zero-padded
/// input buffer, and, for the last conv of a block, the 2×2/2 max-pool fused into its output pass.
final class ConvStage {
    struct Plan {
        let layer: ConvLayerWeights
        let height: Int
        let width: Int
        let pools: Bool
        let algorithm: ConvAlgorithm
    }

    /// Upper bound, in floats, of one im2col band (`.direct`); 1 Mi floats = 4 MiB.
    static let columnBudget = 1 << 20
    /// Upper bound, in floats, of one band of transformed tiles (`.winograd`), for the input and the
    /// product side each.
    static let tileBudget = 1 << 19

    let name: String
    let inChannels: Int
    let outChannels: Int
    /// Spatial size of the layer's input and of its conv output (before pooling).
    let height: Int
    let width: Int
    /// Whether a 2×2/2 'valid' max-pool follows (last conv of a block).
    let pools: Bool
    let algorithm: ConvAlgorithm

    /// HWC input with a zero border: `paddedHeight` × `paddedWidth` × inChannels, the image at (1, 1).
    /// Sized for whole 4×4 Winograd tiles: 2·⌈height/2⌉ + 2 rows, 2·⌈width/2⌉ + 2 columns; only the
    /// interior is ever written, so the border stays zero.
    let input: UnsafeMutablePointer<Float>
    let paddedHeight: Int
    let paddedWidth: Int
    var paddedRowFloats: Int { paddedWidth * inChannels }
    /// Where the previous layer writes pixel (0, 0).
    var interior: UnsafeMutablePointer<Float> { input + paddedRowFloats + inChannels }

    let bias: UnsafeMutablePointer<Float>
    /// `.direct`: HWIO kernel, K × N row-major (K = 9·Cin, N = Cout). `.winograd`: 16 matrices U_ξ
    /// (Cin × Cout row-major), U = G g Gᵀ for each input/output channel pair.
    let kernel: UnsafeMutablePointer<Float>

    /// `.direct`: output rows per im2col band (even when pooling). `.winograd`: tile rows per band.
    let bandRows: Int
    /// Output tiles per row and column (`.winograd`); for a pooled layer only whole pooling windows.
    let tilesHigh: Int
    let tilesWide: Int
    /// Floats of `ConvScratch` this stage needs.
    let scratchFloats: Int

    init(plan: Plan) {
        let layer = plan.layer
        name = layer.name
        inChannels = layer.inChannels
        outChannels = layer.outChannels
        height = plan.height
        width = plan.width
        pools = plan.pools
        algorithm = plan.algorithm
        paddedHeight = 2 * ((height + 1) / 2) + 2
        paddedWidth = 2 * ((width + 1) / 2) + 2
        input = allocateFloats(paddedHeight * paddedWidth * inChannels)
        let bias = allocateFloats(layer.outChannels)
        layer.bias.withUnsafeBufferPointer { bias.update(from: $0.baseAddress!, count: $0.count) }
        self.bias = bias
        switch plan.algorithm {
        case .direct:
            let kernel = allocateFloats(layer.kernel.count)
            layer.kernel.withUnsafeBufferPointer { kernel.update(from: $0.baseAddress!, count: $0.count) }
            self.kernel = kernel
            let rowFloats = plan.width * 9 * layer.inChannels
            var rows = max(1, min(plan.height, Self.columnBudget / max(1, rowFloats)))
            if plan.pools { rows = max(2, rows & ~1) }
            bandRows = rows
            tilesHigh = 0
            tilesWide = 0
            scratchFloats = rows * plan.width * (9 * layer.inChannels + layer.outChannels)
        case .winograd:
            let kernel = allocateFloats(16 * layer.inChannels * layer.outChannels)
            Self.transformKernel(layer.kernel, inChannels: layer.inChannels, outChannels: layer.outChannels, into: kernel)
            self.kernel = kernel
            let high = plan.pools ? plan.height / 2 : (plan.height + 1) / 2
            let wide = plan.pools ? plan.width / 2 : (plan.width + 1) / 2
            let rowFloats = 16 * wide * max(layer.inChannels, layer.outChannels)
            let rows = max(1, min(high, Self.tileBudget / max(1, rowFloats)))
            tilesHigh = high
            tilesWide = wide
            bandRows = rows
            scratchFloats = 16 * rows * wide * (layer.inChannels + layer.outChannels)
        }
    }

    deinit {
        input.deallocate()
        bias.deallocate()
        kernel.deallocate()
    }

    /// Runs the layer over its input and writes ReLU(conv + bias), pooled if `pools`, as HWC rows of
    /// `rowStride` floats starting at `destination` (which may be the interior of the next layer's padded
    /// input).
    func run(scratch: ConvScratch, into destination: UnsafeMutablePointer<Float>, rowStride: Int) {
        precondition(scratch.count >= scratchFloats)
        switch algorithm {
        case .direct: runDirect(scratch: scratch.floats, into: destination, rowStride: rowStride)
        case .winograd: runWinograd(scratch: scratch.floats, into: destination, rowStride: rowStride)
        }
    }

    // MARK: - Direct: im2col + sgemm

    private func runDirect(scratch: UnsafeMutablePointer<Float>, into destination: UnsafeMutablePointer<Float>, rowStride: Int) {
        let depth = 9 * inChannels
        let tapRow = 3 * inChannels
        let paddedRow = paddedRowFloats
        let channels = outChannels
        let columns = scratch
        let products = scratch + bandRows * width * depth
        // Rows past the last full pooling window are never used: floor semantics of 'valid' pooling.
        let rowsNeeded = pools ? (height / 2) * 2 : height
        var firstRow = 0
        while firstRow < rowsNeeded {
            let rows = min(bandRows, rowsNeeded - firstRow)
            // im2col: row (y, x) holds the 3×3×Cin patch in HWIO order; each of its three kernel rows is
            // 3·Cin contiguous floats of the padded input.
            for bandRow in 0..<rows {
                let y = firstRow + bandRow
                for x in 0..<width {
                    let patch = columns + (bandRow * width + x) * depth
                    for dy in 0..<3 {
                        (patch + dy * tapRow).update(from: input + (y + dy) * paddedRow + x * inChannels, count: tapRow)
                    }
                }
            }
            cblas_sgemm(
                CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(rows * width), blasint(channels), blasint(depth), 1,
                columns, blasint(depth), kernel, blasint(channels), 0, products, blasint(channels))
            if pools {
                // max-pool, then bias, then ReLU equals bias, ReLU, then max-pool exactly: adding the same
                // bias and clamping at 0 are monotone, and rounding preserves order.
                for pair in 0..<(rows / 2) {
                    let top = products + 2 * pair * width * channels
                    let bottom = top + width * channels
                    let out = destination + (firstRow / 2 + pair) * rowStride
                    for px in 0..<(width / 2) {
                        let a = top + 2 * px * channels
                        let b = a + channels
                        let c = bottom + 2 * px * channels
                        let d = c + channels
                        let o = out + px * channels
                        for ch in 0..<channels {
                            var m = a[ch]
                            if b[ch] > m { m = b[ch] }
                            if c[ch] > m { m = c[ch] }
                            if d[ch] > m { m = d[ch] }
                            let v = m + bias[ch]
                            o[ch] = v > 0 ? v : 0
                        }
                    }
                }
            } else {
                for bandRow in 0..<rows {
                    let source = products + bandRow * width * channels
                    let out = destination + (firstRow + bandRow) * rowStride
                    for x in 0..<width {
                        let s = source + x * channels
                        let o = out + x * channels
                        for ch in 0..<channels {
                            let v = s[ch] + bias[ch]
                            o[ch] = v > 0 ? v : 0
                        }
                    }
                }
            }
            firstRow += rows
        }
    }

    // MARK: - Winograd F(2×2, 3×3)

    /// U_ξ[i][o] = (G g Gᵀ)[ξ] with g the 3×3 kernel of input channel i and output channel o,
    /// G = [[1, 0, 0], [½, ½, ½], [½, -½, ½], [0, 0, 1]]. Computed in Double, stored as Float.
    static func transformKernel(_ hwio: [Float], inChannels: Int, outChannels: Int, into u: UnsafeMutablePointer<Float>) {
        let g: [[Double]] = [[1, 0, 0], [0.5, 0.5, 0.5], [0.5, -0.5, 0.5], [0, 0, 1]]
        let pairs = inChannels * outChannels
        for pair in 0..<pairs {
            var k = [[Double]](repeating: [0, 0, 0], count: 3)
            for kh in 0..<3 { for kw in 0..<3 { k[kh][kw] = Double(hwio[(kh * 3 + kw) * pairs + pair]) } }
            for a in 0..<4 {
                for b in 0..<4 {
                    var sum = 0.0
                    for kh in 0..<3 { for kw in 0..<3 { sum += g[a][kh] * k[kh][kw] * g[b][kw] } }
                    u[(a * 4 + b) * pairs + pair] = Float(sum)
                }
            }
        }
    }

    private func runWinograd(scratch: UnsafeMutablePointer<Float>, into destination: UnsafeMutablePointer<Float>, rowStride: Int) {
        let cin = inChannels
        let cout = outChannels
        var firstTileRow = 0
        while firstTileRow < tilesHigh {
            let rows = min(bandRows, tilesHigh - firstTileRow)
            let tiles = rows * tilesWide
            let transformed = scratch  // 16 × tiles × Cin: V_ξ = Bᵀ d B per tile and input channel
            let products = scratch + 16 * tiles * cin  // 16 × tiles × Cout: M_ξ = V_ξ U_ξ
            for bandRow in 0..<rows {
                let tileRow = firstTileRow + bandRow
                for tileColumn in 0..<tilesWide {
                    let origin = input + (2 * tileRow * paddedWidth + 2 * tileColumn) * cin
                    let out = transformed + (bandRow * tilesWide + tileColumn) * cin
                    var c = 0
                    while c + 8 <= cin {
                        winogradInput(SIMD8<Float>.self, origin + c, rowFloats: paddedRowFloats, pixel: cin, out + c, stride: tiles * cin)
                        c += 8
                    }
                    while c < cin {
                        winogradInput(Float.self, origin + c, rowFloats: paddedRowFloats, pixel: cin, out + c, stride: tiles * cin)
                        c += 1
                    }
                }
            }
            for xi in 0..<16 {
                cblas_sgemm(
                    CblasRowMajor, CblasNoTrans, CblasNoTrans, blasint(tiles), blasint(cout), blasint(cin), 1,
                    transformed + xi * tiles * cin, blasint(cin), kernel + xi * cin * cout, blasint(cout), 0,
                    products + xi * tiles * cout, blasint(cout))
            }
            for bandRow in 0..<rows {
                let tileRow = firstTileRow + bandRow
                for tileColumn in 0..<tilesWide {
                    let source = products + (bandRow * tilesWide + tileColumn) * cout
                    let target: UnsafeMutablePointer<Float>
                    var validRows = 2
                    var validColumns = 2
                    if pools {
                        target = destination + tileRow * rowStride + tileColumn * cout
                    } else {
                        target = destination + 2 * tileRow * rowStride + 2 * tileColumn * cout
                        validRows = min(2, height - 2 * tileRow)
                        validColumns = min(2, width - 2 * tileColumn)
                    }
                    var c = 0
                    while c + 8 <= cout {
                        winogradOutput(
                            SIMD8<Float>.self, source + c, stride: tiles * cout, bias: bias + c, target + c, rowStride: rowStride,
                            pixel: cout, pools: pools, rows: validRows, columns: validColumns)
                        c += 8
                    }
                    while c < cout {
                        winogradOutput(
                            Float.self, source + c, stride: tiles * cout, bias: bias + c, target + c, rowStride: rowStride,
                            pixel: cout, pools: pools, rows: validRows, columns: validColumns)
                        c += 1
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
    @inline(__always) static func larger(_ a: Self, _ b: Self) -> Self { pointwiseMax(a, b) }
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
    _: L.Type, _ origin: UnsafePointer<Float>, rowFloats: Int, pixel: Int, _ out: UnsafeMutablePointer<Float>, stride: Int
) {
    @inline(__always) func d(_ i: Int, _ j: Int) -> L { L.load(origin + i * rowFloats + j * pixel) }
    // Bᵀ d, one column j at a time, then (Bᵀ d) B along each row.
    @inline(__always) func column(_ j: Int) -> (L, L, L, L) {
        let d0 = d(0, j), d1 = d(1, j), d2 = d(2, j), d3 = d(3, j)
        return (d0 - d2, d1 + d2, d2 - d1, d1 - d3)
    }
    let c0 = column(0), c1 = column(1), c2 = column(2), c3 = column(3)
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
    _: L.Type, _ source: UnsafePointer<Float>, stride: Int, bias: UnsafePointer<Float>, _ target: UnsafeMutablePointer<Float>,
    rowStride: Int, pixel: Int, pools: Bool, rows: Int, columns: Int
) {
    @inline(__always) func m(_ a: Int, _ b: Int) -> L { L.load(source + (a * 4 + b) * stride) }
    // Aᵀ M: two rows of four.
    @inline(__always) func column(_ b: Int) -> (L, L) {
        let m0 = m(0, b), m1 = m(1, b), m2 = m(2, b), m3 = m(3, b)
        return (m0 + m1 + m2, m1 - m2 - m3)
    }
    let s0 = column(0), s1 = column(1), s2 = column(2), s3 = column(3)
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
