import BLAS

/// One scratch buffer shared by the stages of a `ConvBase` (they run one after another), and in bf16 the
/// workspace of its bf16 products: allocated once per conv base, i.e. once per compute thread.
final class ConvScratch {
    let floats: UnsafeMutablePointer<Float>
    let count: Int
    /// `bf16gemm`'s packing workspace (`bf16GEMMWorkspaceCount` halves) in bf16; nil in fp32.
    let bf16Workspace: UnsafeMutablePointer<UInt16>?
    /// The packing workspace of the fp32 Winograd products (`packedSGEMM`).
    let productWorkspace = PackedSGEMMWorkspace()

    init(floats count: Int, precision: ConvPrecision = .fp32) {
        self.count = max(1, count)
        floats = allocateFloats(self.count)
        bf16Workspace = precision == .bf16 ? .allocate(capacity: bf16GEMMWorkspaceCount) : nil
    }

    deinit {
        floats.deallocate()
        bf16Workspace?.deallocate()
    }
}

/// 64-byte aligned, zeroed floats; free with `deallocate()`.
func allocateFloats(_ count: Int) -> UnsafeMutablePointer<Float> {
    let raw = UnsafeMutableRawPointer.allocate(byteCount: max(1, count) * MemoryLayout<Float>.stride, alignment: 64)
    return raw.initializeMemory(as: Float.self, repeating: 0, count: max(1, count))
}

/// The read-only weights of one stage, in the form its algorithm wants; shared by the `ConvBase` instances
/// of several threads (never written after init, so safe to read from any thread).
final class StageWeights: @unchecked Sendable {
    let bias: UnsafeMutablePointer<Float>
    /// The fp32 kernel; a single float in bf16, where only `packed` is multiplied.
    let kernel: UnsafeMutablePointer<Float>
    /// With `ConvPrecision.bf16`: the kernel's product matrices packed in bf16 (`.direct`: one; Winograd: one
    /// per point); empty in fp32.
    let packed: [BF16PackedMatrix]
    /// fp32 Winograd on an AVX-512F CPU, at least `ConvStage.packedProductMinimumDepth` input channels and a
    /// multiple of 32 output channels: `kernel`'s matrices U_ξ are packed in place for `packedSGEMM`.
    let fp32Packed: Bool

    init(
        bias: UnsafeMutablePointer<Float>, kernel: UnsafeMutablePointer<Float>, packed: [BF16PackedMatrix] = [],
        fp32Packed: Bool = false
    ) {
        self.bias = bias
        self.kernel = kernel
        self.packed = packed
        self.fp32Packed = fp32Packed
    }

    deinit {
        bias.deallocate()
        kernel.deallocate()
    }
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
        /// Images whose tiles share one matrix product per Winograd point (`runGroup`); 1 for `.direct`.
        var group: Int = 1
        var precision: ConvPrecision = .fp32
        /// A Winograd layer in F(6×6, 3×3) tiles instead (chosen by `.adaptive` in fp32).
        var largeTiles = false

        /// Output pixels per tile side: 1 (`.direct`), 2, 4 or 6.
        var tileSide: Int {
            switch algorithm {
            case .direct: 1
            case .winograd: largeTiles ? 6 : 2
            case .winograd4x4, .adaptive: largeTiles ? 6 : 4
            }
        }
    }

    /// Each image's rows in a grouped product start at a multiple of this. 1: with OpenBLAS' AVX-512 kernels,
    /// the only ones grouping is used with (`ConvBase.recommendedBatch`), a row's results were measured not to
    /// depend on its place in the product (GroupedLayersTests); a larger value would pad each image's block with
    /// zero rows.
    static let groupRowAlignment = 1

    static func alignedGroupRows(_ tiles: Int) -> Int {
        (tiles + groupRowAlignment - 1) / groupRowAlignment * groupRowAlignment
    }

    /// Smallest input width whose fp32 Winograd products use the project's own packed product (`packedSGEMM`);
    /// shallower ones (64 channels: block 1's second layer, block 2's first) stay with OpenBLAS' `sgemm`, which
    /// was measured faster at that depth (BENCHMARKS.md).
    static let packedProductMinimumDepth = 128

    /// Upper bound, in floats, of one im2col band (`.direct`); 1 Mi floats = 4 MiB.
    static let columnBudget = 1 << 20
    /// Upper bound, in floats, of one band of transformed tiles (`.winograd`), for the input and the
    /// product side each.
    /// Larger bands mean larger matrix products; on a 2-core Zen 5 the time stops improving at about 2 Mi
    /// floats (8 MiB), so the whole map of most layers at 224×224 is one band.
    static let tileBudget = 1 << 21
    /// Bands are cut smaller, to about this many floats (2 MiB) per side, where that still leaves at least
    /// `bandMinimumTiles` tiles per product: the transforms of the shallow layers on large maps then work in
    /// cache instead of streaming whole maps through memory (BENCHMARKS.md).
    static let cachedTileBudget = 1 << 19
    /// Fewest tiles per product for which a band is cut below `tileBudget`.
    static let bandMinimumTiles = 196

    let name: String
    let inChannels: Int
    let outChannels: Int
    /// Spatial size of the layer's input and of its conv output (before pooling).
    let height: Int
    let width: Int
    /// Whether a 2×2/2 'valid' max-pool follows (last conv of a block).
    let pools: Bool
    let algorithm: ConvAlgorithm
    /// Output pixels per tile side: 1 (`.direct`), 2 (`.winograd`), 4 (`.winograd4x4`), or 6 (`Plan.largeTiles`:
    /// F(6×6, 3×3)).
    let tileSide: Int
    /// Images computed together by `runGroup` (always exactly this many, so that the products' shapes never
    /// depend on how many real images there are).
    let group: Int

    /// HWC input with a zero border: `paddedHeight` × `paddedWidth` × inChannels, the image at (1, 1).
    /// Sized for whole input tiles of every Winograd size (`paddedSide`); only the
    /// interior is ever written, so the border stays zero.
    let input: UnsafeMutablePointer<Float>
    static func paddedSide(_ side: Int) -> Int { max(4 * ((side + 3) / 4), 6 * ((side + 5) / 6)) + 2 }
    let paddedHeight: Int
    let paddedWidth: Int
    var paddedRowFloats: Int { paddedWidth * inChannels }
    /// Where the previous layer writes pixel (0, 0).
    var interior: UnsafeMutablePointer<Float> { input + paddedRowFloats + inChannels }

    /// Owner of `bias` and `kernel`, possibly shared with the same stage of other `ConvBase` instances.
    let weights: StageWeights
    var bias: UnsafeMutablePointer<Float> { weights.bias }
    /// `.direct`: HWIO kernel, K × N row-major (K = 9·Cin, N = Cout). `.winograd`: 16 matrices U_ξ
    /// (Cin × Cout row-major), U = G g Gᵀ for each input/output channel pair; `.winograd4x4`: 36;
    /// F(6×6): 64. Packed in place per point for `packedSGEMM` when `weights.fp32Packed`.
    var kernel: UnsafeMutablePointer<Float> { weights.kernel }

    /// `.direct`: output rows per im2col band (even when pooling). `.winograd`: tile rows per band.
    let bandRows: Int
    /// Output tiles per row and column (`.winograd`); for a pooled layer only whole pooling windows.
    let tilesHigh: Int
    let tilesWide: Int
    /// Floats of `ConvScratch` this stage needs.
    let scratchFloats: Int

    init(plan: Plan) throws(MissingCPUFeature) {
        let layer = plan.layer
        name = layer.name
        inChannels = layer.inChannels
        outChannels = layer.outChannels
        height = plan.height
        width = plan.width
        pools = plan.pools
        algorithm = plan.algorithm
        tileSide = plan.tileSide
        group = plan.algorithm == .direct ? 1 : max(1, plan.group)
        // Room for whole input tiles of every Winograd size: max(4·⌈n/4⌉, 6·⌈n/6⌉) + 2 ≥ 2·⌈n/2⌉ + 2 ≥ n + 2.
        paddedHeight = Self.paddedSide(height)
        paddedWidth = Self.paddedSide(width)
        input = allocateFloats(paddedHeight * paddedWidth * inChannels)
        let bias = allocateFloats(layer.outChannels)
        layer.bias.withUnsafeBufferPointer { bias.update(from: $0.baseAddress!, count: $0.count) }
        let kernel: UnsafeMutablePointer<Float>
        switch plan.algorithm {
        case .direct:
            kernel = allocateFloats(layer.kernel.count)
            layer.kernel.withUnsafeBufferPointer { kernel.update(from: $0.baseAddress!, count: $0.count) }
            let rowFloats = plan.width * 9 * layer.inChannels
            var rows = max(1, min(plan.height, Self.columnBudget / max(1, rowFloats)))
            if plan.pools { rows = max(2, rows & ~1) }
            bandRows = rows
            tilesHigh = 0
            tilesWide = 0
            scratchFloats = rows * plan.width * (9 * layer.inChannels + layer.outChannels)
        case .winograd, .winograd4x4, .adaptive:
            precondition(plan.algorithm != .adaptive, "resolve .adaptive per layer first")
            let m = plan.tileSide  // output tile side
            let points = (m + 2) * (m + 2)  // transformed tile size: 16, 36 or 64
            kernel = allocateFloats(points * layer.inChannels * layer.outChannels)
            if m == 2 {
                Self.transformKernel(
                    layer.kernel, inChannels: layer.inChannels, outChannels: layer.outChannels, into: kernel)
            } else if m == 6 {
                Self.transformKernel6x6(
                    layer.kernel, inChannels: layer.inChannels, outChannels: layer.outChannels, into: kernel)
            } else {
                Self.transformKernel4x4(
                    layer.kernel, inChannels: layer.inChannels, outChannels: layer.outChannels, into: kernel)
            }
            // A pooled layer needs conv outputs only in whole pooling windows: 2·⌊n/2⌋ rows and columns.
            let rowsNeeded = plan.pools ? (plan.height / 2) * 2 : plan.height
            let columnsNeeded = plan.pools ? (plan.width / 2) * 2 : plan.width
            let high = (rowsNeeded + m - 1) / m
            let wide = (columnsNeeded + m - 1) / m
            let rowFloats = points * wide * max(layer.inChannels, layer.outChannels)
            let largest = max(1, min(high, Self.tileBudget / max(1, rowFloats)))
            let cached = max(Self.cachedTileBudget / max(1, rowFloats), (Self.bandMinimumTiles + wide - 1) / wide)
            let rows = group > 1 ? high : min(largest, max(1, cached))
            tilesHigh = high
            tilesWide = wide
            bandRows = rows
            let slotRows = group > 1 ? Self.alignedGroupRows(rows * wide) : rows * wide
            scratchFloats = group * points * slotRows * (layer.inChannels + layer.outChannels)
        }
        var packed: [BF16PackedMatrix] = []
        if plan.precision == .bf16 {
            let (cin, cout) = (layer.inChannels, layer.outChannels)
            switch plan.algorithm {
            case .direct: packed = [try BF16PackedMatrix(k: 9 * cin, n: cout, kernel)]
            default:
                let points = (plan.tileSide + 2) * (plan.tileSide + 2)
                for xi in 0..<points { packed.append(try BF16PackedMatrix(k: cin, n: cout, kernel + xi * cin * cout)) }
            }
        }
        let fp32Packed =
            plan.precision == .fp32 && plan.algorithm != .direct && layer.inChannels >= Self.packedProductMinimumDepth
            && layer.outChannels % 32 == 0 && FP32PackedMatrix.useForWinograd
        if fp32Packed {
            let (cin, cout) = (layer.inChannels, layer.outChannels)
            let points = (plan.tileSide + 2) * (plan.tileSide + 2)
            let scratch = allocateFloats(cin * cout)
            for xi in 0..<points {
                FP32PackedMatrix.packInPlace(k: cin, n: cout, kernel + xi * cin * cout, scratch: scratch)
            }
            scratch.deallocate()
        }
        if packed.isEmpty {
            weights = StageWeights(bias: bias, kernel: kernel, packed: packed, fp32Packed: fp32Packed)
        } else {
            // bf16 multiplies only the packed matrices: the fp32 kernel is not kept beside them.
            kernel.deallocate()
            weights = StageWeights(bias: bias, kernel: allocateFloats(1), packed: packed, fp32Packed: fp32Packed)
        }
    }

    /// The same layer with its own input buffer, sharing `other`'s read-only weights.
    init(sharingWeightsOf other: ConvStage) {
        name = other.name
        inChannels = other.inChannels
        outChannels = other.outChannels
        height = other.height
        width = other.width
        pools = other.pools
        algorithm = other.algorithm
        tileSide = other.tileSide
        group = other.group
        paddedHeight = other.paddedHeight
        paddedWidth = other.paddedWidth
        input = allocateFloats(paddedHeight * paddedWidth * inChannels)
        weights = other.weights
        bandRows = other.bandRows
        tilesHigh = other.tilesHigh
        tilesWide = other.tilesWide
        scratchFloats = other.scratchFloats
    }

    deinit {
        input.deallocate()
    }

    /// Runs the layer over its input and writes ReLU(conv + bias), pooled if `pools`, as HWC rows of
    /// `rowStride` floats starting at `destination` (which may be the interior of the next layer's padded
    /// input).
    func run(scratch: ConvScratch, into destination: UnsafeMutablePointer<Float>, rowStride: Int) {
        precondition(scratch.count >= scratchFloats)
        switch tileSide {
        case 1:
            runDirect(
                scratch: scratch.floats, workspace: scratch.bf16Workspace, into: destination, rowStride: rowStride)
        case 2:
            runWinograd(
                WinogradF2.self, inputs: [input], scratch: scratch, into: [destination], rowStride: rowStride)
        case 6:
            runWinograd(
                WinogradF6.self, inputs: [input], scratch: scratch, into: [destination], rowStride: rowStride)
        default:
            runWinograd(
                WinogradF4.self, inputs: [input], scratch: scratch, into: [destination], rowStride: rowStride)
        }
    }

    /// `run` for `group` images at once: the padded inputs of `stages` (this stage and others sharing its
    /// weights, `group` in all) into `destinations`, with one matrix product per Winograd point over the tiles
    /// of all of them. Each output element is the same sum of the same products as when one image is run alone
    /// at this group size, whatever the other images hold.
    func runGroup(
        stages: [ConvStage], scratch: ConvScratch, into destinations: [UnsafeMutablePointer<Float>], rowStride: Int
    ) {
        precondition(stages.count == group && destinations.count == group && algorithm != .direct)
        precondition(scratch.count >= scratchFloats)
        let inputs = stages.map(\.input)
        switch tileSide {
        case 2:
            runWinograd(
                WinogradF2.self, inputs: inputs, scratch: scratch, into: destinations, rowStride: rowStride)
        case 6:
            runWinograd(
                WinogradF6.self, inputs: inputs, scratch: scratch, into: destinations, rowStride: rowStride)
        default:
            runWinograd(
                WinogradF4.self, inputs: inputs, scratch: scratch, into: destinations, rowStride: rowStride)
        }
    }

    // MARK: - Direct: im2col + sgemm

    private func runDirect(
        scratch: UnsafeMutablePointer<Float>, workspace: UnsafeMutablePointer<UInt16>?,
        into destination: UnsafeMutablePointer<Float>, rowStride: Int
    ) {
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
            if let packed = weights.packed.first {
                bf16gemm(m: rows * width, columns, packed, products, workspace: workspace)
            } else {
                sgemm(m: rows * width, n: channels, k: depth, columns, kernel, products)
            }
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
}
