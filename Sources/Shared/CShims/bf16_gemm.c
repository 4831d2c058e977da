#include "BF16GEMMShims.h"

// Micro-tile MR × NR of C in 24 zmm accumulators; k in blocks of KC (even, so that a pair never straddles two
// blocks), rows of A in blocks of MC, columns of B in blocks of NC.
enum { MR = 12, NR = 32, KC = 256, MC = 96, NC = 1024, KCP = KC / 2 };

size_t bn_bf16_gemm_workspace_count(void) { return (size_t)KCP * 2 * NC + (size_t)MC * KCP * 2; }

#if defined(__x86_64__)
#include <immintrin.h>
#include "avx512_lanes.h"

#define BN_BF16_TARGET __attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl")))

static inline int min_int(int x, int y) { return x < y ? x : y; }

// B rows [kc] × columns [nc] into panels of NR columns: per k-pair 2 × 16 dwords, dword j = (b[2p][j] low,
// b[2p + 1][j] high) as vdpbf16ps wants them. Columns past nc and a row past kc are zero.
BN_BF16_TARGET static void pack_b(int kc, int nc, const float *b, int ldb, uint16_t *out) {
    static const uint16_t interleave[32] = {0, 16, 1, 17, 2, 18, 3, 19, 4, 20, 5, 21, 6, 22, 7, 23,
                                            8, 24, 9, 25, 10, 26, 11, 27, 12, 28, 13, 29, 14, 30, 15, 31};
    const __m512i index = _mm512_loadu_si512(interleave);
    const int kcp = (kc + 1) / 2;
    for (int jr = 0; jr < nc; jr += NR) {
        const int cols = min_int(NR, nc - jr);
        for (int p = 0; p < kcp; p++) {
            const float *row0 = b + (size_t)(2 * p) * ldb + jr;
            const int has_row1 = 2 * p + 1 < kc;
            for (int v = 0; v < 2; v++) {
                const __mmask16 mask = bn_lane_mask(cols - 16 * v);
                const __m512 x0 = _mm512_maskz_loadu_ps(mask, row0 + 16 * v);
                const __m512 x1 = has_row1 ? _mm512_maskz_loadu_ps(mask, row0 + ldb + 16 * v) : _mm512_setzero_ps();
                const __m512i pair = (__m512i)_mm512_cvtne2ps_pbh(x1, x0);  // x0 in the low half
                _mm512_storeu_si512(out + (size_t)p * 64 + 32 * v, _mm512_permutexvar_epi16(index, pair));
            }
        }
        out += (size_t)kcp * 64;
    }
}

// A rows [mc] × columns [kc] into panels of MR rows: per k-pair MR dwords, dword r = (a[r][2p] low,
// a[r][2p + 1] high). Rows past mc and a column past kc are zero.
BN_BF16_TARGET static void pack_a(int mc, int kc, const float *a, int lda, uint32_t *out) {
    const int kcp = (kc + 1) / 2;
    uint32_t pairs[16];
    for (int ir = 0; ir < mc; ir += MR) {
        for (int r = 0; r < MR; r++) {
            if (ir + r >= mc) {
                for (int p = 0; p < kcp; p++) out[(size_t)p * MR + r] = 0;
                continue;
            }
            const float *row = a + (size_t)(ir + r) * lda;
            for (int k0 = 0; k0 < kc; k0 += 32) {
                const __m512 x0 = _mm512_maskz_loadu_ps(bn_lane_mask(kc - k0), row + k0);
                const __m512 x1 = _mm512_maskz_loadu_ps(bn_lane_mask(kc - k0 - 16), row + k0 + 16);
                _mm512_storeu_si512(pairs, (__m512i)_mm512_cvtne2ps_pbh(x1, x0));  // k order
                const int count = min_int(16, (kc - k0 + 1) / 2);
                for (int q = 0; q < count; q++) out[(size_t)(k0 / 2 + q) * MR + r] = pairs[q];
            }
        }
        out += (size_t)kcp * MR;
    }
}

// C[rows ≤ MR][cols ≤ NR] (start: 0 zero, 1 load C, 2 beta·C) plus the kcp pairs of the packed panels.
BN_BF16_TARGET static void kernel(int kcp, const uint32_t *pa, const uint16_t *pb, float *c, int ldc, int rows,
                                  int cols, int start, float beta) {
    __m512 acc[MR][2];
    const __mmask16 mask0 = bn_lane_mask(cols), mask1 = bn_lane_mask(cols - 16);
    const __m512 scale = _mm512_set1_ps(beta);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (start == 0 || r >= rows) {
            acc[r][0] = _mm512_setzero_ps();
            acc[r][1] = _mm512_setzero_ps();
        } else {
            acc[r][0] = _mm512_maskz_loadu_ps(mask0, c + (size_t)r * ldc);
            acc[r][1] = _mm512_maskz_loadu_ps(mask1, c + (size_t)r * ldc + 16);
            if (start == 2) {
                acc[r][0] = _mm512_mul_ps(acc[r][0], scale);
                acc[r][1] = _mm512_mul_ps(acc[r][1], scale);
            }
        }
    }
    for (int p = 0; p < kcp; p++) {
        const __m512bh b0 = (__m512bh)_mm512_loadu_si512(pb + (size_t)p * 64);
        const __m512bh b1 = (__m512bh)_mm512_loadu_si512(pb + (size_t)p * 64 + 32);
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            const __m512bh x = (__m512bh)_mm512_set1_epi32((int)pa[(size_t)p * MR + r]);
            acc[r][0] = _mm512_dpbf16_ps(acc[r][0], x, b0);
            acc[r][1] = _mm512_dpbf16_ps(acc[r][1], x, b1);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (r < rows) {
            _mm512_mask_storeu_ps(c + (size_t)r * ldc, mask0, acc[r][0]);
            _mm512_mask_storeu_ps(c + (size_t)r * ldc + 16, mask1, acc[r][1]);
        }
    }
}

// Elements of one packed block of B: whole NR-column panels of kc rows (pairs).
static size_t packed_block_count(int kc, int nc) { return (size_t)((nc + NR - 1) / NR) * ((kc + 1) / 2) * 64; }

size_t bn_bf16_packed_b_count(int k, int n) {
    size_t count = 0;
    for (int jc = 0; jc < n; jc += NC)
        for (int pc = 0; pc < k; pc += KC) count += packed_block_count(min_int(KC, k - pc), min_int(NC, n - jc));
    return count;
}

// Blocks of B, in the order the product visits them: column blocks of NC, in each the depth blocks of KC.
BN_BF16_TARGET void bn_bf16_pack_b(int k, int n, const float *b, int ldb, uint16_t *packed) {
    for (int jc = 0; jc < n; jc += NC) {
        const int nc = min_int(NC, n - jc);
        for (int pc = 0; pc < k; pc += KC) {
            const int kc = min_int(KC, k - pc);
            pack_b(kc, nc, b + (size_t)pc * ldb + jc, ldb, packed);
            packed += packed_block_count(kc, nc);
        }
    }
}

// The product; B from `b` (packed block by block into the workspace) or, when `b` is NULL, from `packed_b`.
BN_BF16_TARGET static void product(int m, int n, int k, const float *a, int lda, const float *b, int ldb,
                                   const uint16_t *packed_b, float beta, float *c, int ldc, uint16_t *workspace) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = beta == 0 ? 0 : beta * c[(size_t)i * ldc + j];
        return;
    }
    uint32_t *packed_a = (uint32_t *)(void *)(workspace + (size_t)KCP * 2 * NC);
    const int first_start = beta == 0 ? 0 : (beta == 1 ? 1 : 2);
    for (int jc = 0; jc < n; jc += NC) {
        const int nc = min_int(NC, n - jc);
        for (int pc = 0; pc < k; pc += KC) {
            const int kc = min_int(KC, k - pc);
            const int kcp = (kc + 1) / 2;
            const uint16_t *block = packed_b;
            if (b) {
                pack_b(kc, nc, b + (size_t)pc * ldb + jc, ldb, workspace);
                block = workspace;
            } else {
                packed_b += packed_block_count(kc, nc);
            }
            const int start = pc == 0 ? first_start : 1;
            for (int ic = 0; ic < m; ic += MC) {
                const int mc = min_int(MC, m - ic);
                pack_a(mc, kc, a + (size_t)ic * lda + pc, lda, packed_a);
                for (int jr = 0; jr < nc; jr += NR) {
                    const uint16_t *pb = block + (size_t)(jr / NR) * kcp * 64;
                    for (int ir = 0; ir < mc; ir += MR) {
                        kernel(kcp, packed_a + (size_t)(ir / MR) * kcp * MR, pb,
                               c + (size_t)(ic + ir) * ldc + jc + jr, ldc, min_int(MR, mc - ir),
                               min_int(NR, nc - jr), start, beta);
                    }
                }
            }
        }
    }
}

BN_BF16_TARGET void bn_bf16_gemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta,
                                 float *c, int ldc, uint16_t *workspace) {
    product(m, n, k, a, lda, b, ldb, NULL, beta, c, ldc, workspace);
}

BN_BF16_TARGET void bn_bf16_gemm_packed(int m, int n, int k, const float *a, int lda, const uint16_t *packed_b,
                                        float beta, float *c, int ldc, uint16_t *workspace) {
    product(m, n, k, a, lda, NULL, 0, packed_b, beta, c, ldc, workspace);
}
#else
size_t bn_bf16_packed_b_count(int k, int n) { (void)k; (void)n; return 0; }
void bn_bf16_pack_b(int k, int n, const float *b, int ldb, uint16_t *packed) {
    (void)k; (void)n; (void)b; (void)ldb; (void)packed;
}
void bn_bf16_gemm(int m, int n, int k, const float *a, int lda, const float *b, int ldb, float beta, float *c,
                  int ldc, uint16_t *workspace) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)b; (void)ldb; (void)beta; (void)c; (void)ldc;
    (void)workspace;
}
void bn_bf16_gemm_packed(int m, int n, int k, const float *a, int lda, const uint16_t *packed_b, float beta,
                         float *c, int ldc, uint16_t *workspace) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed_b; (void)beta; (void)c; (void)ldc;
    (void)workspace;
}
#endif
