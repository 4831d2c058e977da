#ifndef BOTTLENECK_FP32_GEMM_SHIMS_H
#define BOTTLENECK_FP32_GEMM_SHIMS_H
#include <stddef.h>

// A matrix product in fp32 with AVX-512F FMAs, for products whose B is known ahead of time (a layer's
// weights): B packed once, A packed per call into a caller-owned workspace. Needs AVX512F (`bn_cpu_features`);
// calling it on a CPU without it stops the process (illegal instruction). Single-threaded; one workspace per
// thread.
//
// Order of the sums: for each depth block of 128 (p = 0…127, 128…255, …) a block sum starts at 0 and adds
// a[i][p]·b[p][j] in order of p, one fused multiply-add (one rounding) each; the output is the first block's
// sum plus each later block's sum in order. The order depends on k only, never on m, the row's place in A, or
// the other rows.

/// Floats of the workspace `bn_fp32_gemm_packed` needs, whatever the sizes.
size_t bn_fp32_gemm_workspace_count(void);

/// Floats of B `[k, n]` packed by `bn_fp32_pack_b` (k · n, columns padded to whole 32-column panels).
size_t bn_fp32_packed_b_count(int k, int n);

/// Packs B `[k, n]` (row-major, row stride `ldb`) into `packed` (`bn_fp32_packed_b_count(k, n)` floats).
void bn_fp32_pack_b(int k, int n, const float *b, int ldb, float *packed);

/// Row-major `C = A · B` with A `[m, k]` (row stride `lda` floats), B packed by `bn_fp32_pack_b(k, n, …)`,
/// C `[m, n]` (`ldc`), not read. `workspace`: `bn_fp32_gemm_workspace_count()` floats, 64-byte aligned.
void bn_fp32_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed_b, float *c, int ldc,
                         float *workspace);

#endif
