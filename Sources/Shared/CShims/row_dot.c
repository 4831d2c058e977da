#include "RowDotShims.h"

#if defined(__x86_64__)
#include <immintrin.h>

#define BN_ROW_DOT_TARGET __attribute__((target("avx512f")))

// Register tile: RB rows of A × JB rows of B, RB · JB = 20 accumulators plus RB + JB operands of 32 zmm.
// K-block: RB + JB rows of 4 KiB stay in L1, A's and B's blocks (the batch and a part's hidden units) in L2.
enum { RB = 5, JB = 4, KB = 1024 };

static inline __mmask16 lanes(int count) {
    if (count <= 0) return 0;
    if (count >= 16) return 0xFFFF;
    return (__mmask16)((1u << count) - 1u);
}

// The documented pairwise sum of the 16 lanes.
BN_ROW_DOT_TARGET static inline float lane_sum(__m512 v) {
    const __m256 high = _mm256_castpd_ps(_mm512_extractf64x4_pd(_mm512_castps_pd(v), 1));
    __m256 h = _mm256_add_ps(_mm512_castps512_ps256(v), high);
    __m128 q = _mm_add_ps(_mm256_castps256_ps128(h), _mm256_extractf128_ps(h, 1));
    q = _mm_add_ps(q, _mm_movehl_ps(q, q));
    q = _mm_add_ss(q, _mm_movehdup_ps(q));
    return _mm_cvtss_f32(q);
}

BN_ROW_DOT_TARGET static void tile(int p0, int kc, const float *a, int lda, const float *b, int ldb, float *c,
                                   int ldc) {
    __m512 acc[RB][JB];
#pragma clang loop unroll(full)
    for (int r = 0; r < RB; r++)
#pragma clang loop unroll(full)
        for (int j = 0; j < JB; j++) acc[r][j] = _mm512_setzero_ps();
    int p = 0;
    for (; p + 16 <= kc; p += 16) {
        __m512 bv[JB];
#pragma clang loop unroll(full)
        for (int j = 0; j < JB; j++) bv[j] = _mm512_loadu_ps(b + (size_t)j * ldb + p0 + p);
#pragma clang loop unroll(full)
        for (int r = 0; r < RB; r++) {
            const __m512 av = _mm512_loadu_ps(a + (size_t)r * lda + p0 + p);
#pragma clang loop unroll(full)
            for (int j = 0; j < JB; j++) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
        }
    }
    if (p < kc) {
        const __mmask16 m = lanes(kc - p);
        __m512 bv[JB];
#pragma clang loop unroll(full)
        for (int j = 0; j < JB; j++) bv[j] = _mm512_maskz_loadu_ps(m, b + (size_t)j * ldb + p0 + p);
#pragma clang loop unroll(full)
        for (int r = 0; r < RB; r++) {
            const __m512 av = _mm512_maskz_loadu_ps(m, a + (size_t)r * lda + p0 + p);
#pragma clang loop unroll(full)
            for (int j = 0; j < JB; j++) acc[r][j] = _mm512_fmadd_ps(av, bv[j], acc[r][j]);
        }
    }
#pragma clang loop unroll(full)
    for (int r = 0; r < RB; r++)
#pragma clang loop unroll(full)
        for (int j = 0; j < JB; j++) c[(size_t)r * ldc + j] += lane_sum(acc[r][j]);
}

// One output at a time, in the same order as `tile` (edges of the tiling).
BN_ROW_DOT_TARGET static void single(int p0, int kc, const float *a, const float *b, float *c) {
    __m512 acc = _mm512_setzero_ps();
    int p = 0;
    for (; p + 16 <= kc; p += 16)
        acc = _mm512_fmadd_ps(_mm512_loadu_ps(a + p0 + p), _mm512_loadu_ps(b + p0 + p), acc);
    if (p < kc) {
        const __mmask16 m = lanes(kc - p);
        acc = _mm512_fmadd_ps(_mm512_maskz_loadu_ps(m, a + p0 + p), _mm512_maskz_loadu_ps(m, b + p0 + p), acc);
    }
    *c += lane_sum(acc);
}

BN_ROW_DOT_TARGET void bn_row_dot_accumulate(int m, int j_begin, int j_end, int k, const float *a, int lda,
                                             const float *b, int ldb, float *c, int ldc) {
    for (int p0 = 0; p0 < k; p0 += KB) {
        const int kc = k - p0 < KB ? k - p0 : KB;
        for (int j0 = j_begin; j0 < j_end; j0 += JB) {
            const int jb = j_end - j0 < JB ? j_end - j0 : JB;
            for (int r0 = 0; r0 < m; r0 += RB) {
                const int rb = m - r0 < RB ? m - r0 : RB;
                const float *at = a + (size_t)r0 * lda;
                const float *bt = b + (size_t)j0 * ldb;
                float *ct = c + (size_t)r0 * ldc + j0;
                if (rb == RB && jb == JB) {
                    tile(p0, kc, at, lda, bt, ldb, ct, ldc);
                } else {
                    for (int r = 0; r < rb; r++)
                        for (int j = 0; j < jb; j++)
                            single(p0, kc, at + (size_t)r * lda, bt + (size_t)j * ldb, ct + (size_t)r * ldc + j);
                }
            }
        }
    }
}
#else
void bn_row_dot_accumulate(int m, int j_begin, int j_end, int k, const float *a, int lda, const float *b, int ldb,
                           float *c, int ldc) {
    (void)m, (void)j_begin, (void)j_end, (void)k, (void)a, (void)lda, (void)b, (void)ldb, (void)c, (void)ldc;
    __builtin_trap();
}
#endif
