#ifndef BOTTLENECK_ROW_DOT_SHIMS_H
#define BOTTLENECK_ROW_DOT_SHIMS_H

// `C += A · Bᵀ` for A `[m, k]` and B `[n, k]`, both row-major with k contiguous (the top model's forward product
// with its kernel held transposed): every output a dot product of two rows, read in place (nothing packed).
// Needs AVX512F (`bn_cpu_features`); calling it on a CPU without it stops the process. Single-threaded; callers
// split the output columns.
//
// Order of the sums: k in blocks of 1024; in each block, lane l (0…15) of a 16-lane sum adds a[i]·b[i] for
// i ≡ l (mod 16) in order of i, one fused multiply-add each; the lanes are then summed pairwise (8 + 8, 4 + 4,
// 2 + 2, 1 + 1) and the block's sum added to c. The order depends on k only, never on the output's place or on
// how the columns are split.

/// For columns j in [j_begin, j_end) and every row r < m: `c[r][j] += Σ_i a[r][i] · b[j][i]` (strides lda, ldb,
/// ldc in floats).
void bn_row_dot_accumulate(int m, int j_begin, int j_end, int k, const float *a, int lda, const float *b, int ldb,
                           float *c, int ldc);

#endif
