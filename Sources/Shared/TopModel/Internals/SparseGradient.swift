import CShims

/// The hidden kernel's gradient from a hidden-layer gradient that is mostly exact zeros, in the transposed
/// layout: `outT[j, i] = alpha · Σ_b dH[b, j] · x[b, i] + beta · outT[j, i]`, the terms with `dH[b, j] == 0`
/// skipped. Each sum starts at 0 and adds its terms in order of b, one fused multiply-add each, then one fused
/// multiply-add with alpha (beta 1) or a product (beta 0): the same bits as the dense sum in that order, on every
/// CPU. Buffers are caller-owned; the product of a range of output rows runs on the calling thread.
struct SparseGradient {
    /// Column j's non-zero rows and values are `rows[offsets[j]..<offsets[j+1]]`, `values[…]`.
    let offsets: UnsafeMutableBufferPointer<Int32>
    let rows: UnsafeMutableBufferPointer<Int32>
    let values: UnsafeMutableBufferPointer<Float>

    /// Lists the non-zero entries of `dH[batch, hidden]` (row-major) column by column; returns their number.
    /// Needs `offsets.count > hidden` and `rows.count, values.count >= batch · hidden`.
    @discardableResult
    func compress(_ dH: UnsafePointer<Float>, batch: Int, hidden: Int) -> Int {
        precondition(offsets.count > hidden && rows.count >= batch * hidden && values.count >= batch * hidden)
        return Int(
            bn_sparse_columns(
                Int32(batch), Int32(hidden), dH, offsets.baseAddress!, rows.baseAddress!, values.baseAddress!))
    }

    /// Output rows `outputRows` (hidden units) of the product, x `[batch, inputs]`, out `[hidden, inputs]` with rows
    /// `outStride` floats apart (default `inputs`); beta 0 (out not read) or 1. `portable` takes the portable path
    /// whatever the CPU (tests).
    func product(
        inputs: Int, outputRows: Range<Int>, x: UnsafePointer<Float>, alpha: Float, beta: Float,
        out: UnsafeMutablePointer<Float>, outStride: Int? = nil, portable: Bool = false
    ) {
        precondition(beta == 0 || beta == 1)
        guard !outputRows.isEmpty else { return }
        let product = portable ? bn_sparse_transposed_product_portable : bn_sparse_transposed_product
        product(
            Int32(inputs), Int32(outputRows.lowerBound), Int32(outputRows.upperBound), x, Int32(inputs),
            offsets.baseAddress!, rows.baseAddress!, values.baseAddress!, alpha, beta == 1 ? 1 : 0, out,
            Int32(outStride ?? inputs))
    }
}
