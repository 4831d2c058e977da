#include "FP32GEMMShims.h"

// Micro-tile MR × NR of C in 24 zmm accumulators (12 rows × 2 × 16 columns); k in blocks of KC, rows of A in
// blocks of MC (packed, 48 KiB), B in panels of NR columns (KC × NR, 16 KiB: stays in L1 while the micro-tiles
// of one block of rows pass over it). Each depth block's sum starts at 0 and is then added to C: sums of 128
// terms, not one chain of k, which keeps the rounding error of deep products (k = 512) down.
enum { MR = 12, NR = 32, KC = 128, MC = 96 };

size_t bn_fp32_gemm_workspace_count(void) { return (size_t)MC * KC; }

static inline int min_int(int x, int y) { return x < y ? x : y; }

static size_t panel_count(int k, int n) { return (size_t)((n + NR - 1) / NR) * (size_t)k * NR; }

size_t bn_fp32_packed_b_count(int k, int n) { return panel_count(k, n); }

// Layout: depth blocks of KC rows, in each the NR-column panels, in each row p the NR floats b[p][jr…jr+31]
// (columns past n zero).
void bn_fp32_pack_b(int k, int n, const float *b, int ldb, float *packed) {
    for (int pc = 0; pc < k; pc += KC) {
        const int kc = min_int(KC, k - pc);
        for (int jr = 0; jr < n; jr += NR) {
            const int cols = min_int(NR, n - jr);
            for (int p = 0; p < kc; p++) {
                const float *row = b + (size_t)(pc + p) * ldb + jr;
                for (int j = 0; j < NR; j++) packed[j] = j < cols ? row[j] : 0.0f;
                packed += NR;
            }
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#include "avx512_lanes.h"

#define BN_FP32_TARGET __attribute__((target("avx512f")))

// A rows [mc] × columns [kc] into panels of MR rows: per p, the MR floats a[ir…ir+11][p] (rows past mc zero).
BN_FP32_TARGET static void pack_a(int mc, int kc, const float *a, int lda, float *out) {
    for (int ir = 0; ir < mc; ir += MR) {
        const int rows = min_int(MR, mc - ir);
        if (rows == MR) {
            const float *r0 = a + (size_t)ir * lda;
            for (int p = 0; p < kc; p++) {
                const float *column = r0 + p;
#pragma clang loop unroll(full)
                for (int r = 0; r < MR; r++) out[(size_t)p * MR + r] = column[(size_t)r * lda];
            }
        } else {
            for (int p = 0; p < kc; p++)
                for (int r = 0; r < MR; r++) out[(size_t)p * MR + r] = r < rows ? a[(size_t)(ir + r) * lda + p] : 0.0f;
        }
        out += (size_t)kc * MR;
    }
}

// C[rows ≤ MR][cols ≤ NR] = (accumulate ? C + : ) the sum of the kc products of the packed panels, in order of
// p, from 0.
BN_FP32_TARGET static void kernel(int kc, const float *pa, const float *pb, float *c, int ldc, int rows, int cols,
                                  int accumulate) {
    __m512 acc[MR][2];
    const __mmask16 mask0 = bn_lane_mask(cols), mask1 = bn_lane_mask(cols - 16);
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        acc[r][0] = _mm512_setzero_ps();
        acc[r][1] = _mm512_setzero_ps();
    }
    for (int p = 0; p < kc; p++) {
        const __m512 b0 = _mm512_load_ps(pb + (size_t)p * NR);
        const __m512 b1 = _mm512_load_ps(pb + (size_t)p * NR + 16);
#pragma clang loop unroll(full)
        for (int r = 0; r < MR; r++) {
            const __m512 x = _mm512_set1_ps(pa[(size_t)p * MR + r]);
            acc[r][0] = _mm512_fmadd_ps(x, b0, acc[r][0]);
            acc[r][1] = _mm512_fmadd_ps(x, b1, acc[r][1]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < MR; r++) {
        if (r < rows) {
            float *row = c + (size_t)r * ldc;
            if (accumulate) {
                acc[r][0] = _mm512_add_ps(_mm512_maskz_loadu_ps(mask0, row), acc[r][0]);
                acc[r][1] = _mm512_add_ps(_mm512_maskz_loadu_ps(mask1, row + 16), acc[r][1]);
            }
            _mm512_mask_storeu_ps(row, mask0, acc[r][0]);
            _mm512_mask_storeu_ps(row + 16, mask1, acc[r][1]);
        }
    }
}

BN_FP32_TARGET void bn_fp32_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed_b,
                                        float *c, int ldc, float *workspace) {
    if (m <= 0 || n <= 0) return;
    if (k <= 0) {
        for (int i = 0; i < m; i++)
            for (int j = 0; j < n; j++) c[(size_t)i * ldc + j] = 0;
        return;
    }
    for (int pc = 0; pc < k; pc += KC) {
        const int kc = min_int(KC, k - pc);
        const float *block = packed_b + panel_count(pc, n);
        for (int ic = 0; ic < m; ic += MC) {
            const int mc = min_int(MC, m - ic);
            pack_a(mc, kc, a + (size_t)ic * lda + pc, lda, workspace);
            for (int jr = 0; jr < n; jr += NR) {
                const float *pb = block + (size_t)(jr / NR) * kc * NR;
                for (int ir = 0; ir < mc; ir += MR) {
                    kernel(kc, workspace + (size_t)(ir / MR) * kc * MR, pb, c + (size_t)(ic + ir) * ldc + jr, ldc,
                           min_int(MR, mc - ir), min_int(NR, n - jr), pc > 0);
                }
            }
        }
    }
}
#else
void bn_fp32_gemm_packed(int m, int n, int k, const float *a, int lda, const float *packed_b, float *c, int ldc,
                         float *workspace) {
    (void)m; (void)n; (void)k; (void)a; (void)lda; (void)packed_b; (void)c; (void)ldc; (void)workspace;
}
#endif
