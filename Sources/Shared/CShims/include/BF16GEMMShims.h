#ifndef BOTTLENECK_BF16_GEMM_SHIMS_H
#define BOTTLENECK_BF16_GEMM_SHIMS_H
#include <stddef.h>
#include <stdint.h>

// A matrix product in bf16 with fp32 accumulation (AVX512_BF16 `vdpbf16ps`): the kernel, the packing of A
// and B to bf16 (round to nearest even, `vcvtne2ps2bf16`) and the cache blocking. Needs AVX512F, AVX512BW,
// AVX512VL and AVX512_BF16 (`bn_cpu_features`); calling it on a CPU without them stops the process
// (illegal instruction). Single-threaded; the caller owns the workspace and may run one product per thread,
// each with its own workspace.
//
// Order of the sums: each output starts at 0 (beta 0), C (beta 1) or beta·C (rounded to fp32), then adds
// the products of k-pairs in increasing order, for pair p first a[2p+1]·b[2p+1] then a[2p]·b[2p], each
// rounded to nearest even in fp32 (a missing a[k]·b[k] for odd k is +0). The order does not depend on the
// blocking. bf16 inputs that are subnormal count as zero; subnormal sums are flushed to zero.

/// uint16_t elements of the workspace `bn_bf16_gemm` needs, whatever the sizes.
size_t bn_bf16_gemm_workspace_count(void);

/// Row-major `C = A · B + beta · C` with A `[m, k]` (row stride `lda` floats), B `[k, n]` (`ldb`), C `[m, n]`
/// (`ldc`). A and B are rounded to bf16 while packed into `workspace` (`bn_bf16_gemm_workspace_count()`
/// elements, any alignment). C is not read when beta is 0.
void bn_bf16_gemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta, float *c,
                  int ldc, uint16_t *workspace);

/// uint16_t elements of B `[k, n]` packed by `bn_bf16_pack_b` (about k · n, padded to whole pairs and
/// 32-column panels: half of B's bytes).
size_t bn_bf16_packed_b_count(int k, int n);

/// Rounds B `[k, n]` (row stride `ldb`) to bf16 into `packed` (`bn_bf16_packed_b_count(k, n)` elements) once,
/// for any number of `bn_bf16_gemm_packed` calls with the same k and n (e.g. a layer's weights).
void bn_bf16_pack_b(int k, int n, const float *b, int ldb, uint16_t *packed);

/// `bn_bf16_gemm` with B already packed by `bn_bf16_pack_b(k, n, ...)`: the same result, bit for bit.
void bn_bf16_gemm_packed(int m, int n, int k, const float *a, int lda, const uint16_t *packed_b, float beta,
                         float *c, int ldc, uint16_t *workspace);

#endif
