#ifndef BOTTLENECK_SPARSE_UPDATE_SHIMS_H
#define BOTTLENECK_SPARSE_UPDATE_SHIMS_H
#include <stdint.h>

// The top model's kernel gradient `dKᵀ = dHᵀ · X` from a gradient dH that is mostly exact zeros (ReLU and dropout
// zero about three quarters of it), skipping the zero terms. Single-threaded; callers split the output rows.
//
// Order of the sums: for each output element, a sum that starts at 0 and adds values[t]·x[rows[t]][i] for t in
// order (rows ascending), one fused multiply-add (one rounding) each; then one fused multiply-add with alpha.
// The same bits on every CPU: the AVX-512F path and the portable path round alike.

/// Lists dH's non-zero entries column by column: for column j of `dh` `[batch, hidden]` (row-major), its rows
/// (ascending) and values go to `rows[offsets[j]..<offsets[j+1]]` and `values[…]`; `offsets` has hidden + 1
/// entries, `rows` and `values` room for batch · hidden. Returns the number of non-zero entries.
int32_t bn_sparse_columns(int batch, int hidden, const float *dh, int32_t *offsets, int32_t *rows, float *values);

/// For output rows j in [j_begin, j_end): `out[j][i] = alpha · Σ_t values[t] · x[rows[t]][i] + beta · out[j][i]`
/// over t in `offsets[j]..<offsets[j+1]` and i in [0, n); beta is 0 (out not read) or 1 (fused: one rounding of
/// `alpha · sum + out`). x `[batch, n]` with row stride `ldx`, out `[hidden, n]` with row stride `ldo`.
void bn_sparse_transposed_product(int n, int j_begin, int j_end, const float *x, int ldx, const int32_t *offsets,
                                  const int32_t *rows, const float *values, float alpha, int beta_one, float *out,
                                  int ldo);

/// `bn_sparse_transposed_product` on the portable path whatever the CPU (the same bits), for tests.
void bn_sparse_transposed_product_portable(int n, int j_begin, int j_end, const float *x, int ldx,
                                           const int32_t *offsets, const int32_t *rows, const float *values,
                                           float alpha, int beta_one, float *out, int ldo);

#endif
