#include "SparseUpdateShims.h"
#include "CPUFeatureShims.h"
#include <math.h>
#include <stdatomic.h>
#include <stddef.h>

// bn_cpu_features() once (cpuid can trap to the hypervisor in a virtual machine): -1 until read.
static atomic_int avx512 = -1;

__attribute__((unused)) static int has_avx512(void) {
    int known = atomic_load_explicit(&avx512, memory_order_relaxed);
    if (known < 0) {
        known = (bn_cpu_features() & BN_CPU_AVX512F) != 0;
        atomic_store_explicit(&avx512, known, memory_order_relaxed);
    }
    return known;
}

int32_t bn_sparse_columns(int batch, int hidden, const float *dh, int32_t *offsets, int32_t *rows, float *values) {
    int32_t count = 0;
    for (int j = 0; j < hidden; j++) {
        offsets[j] = count;
        for (int b = 0; b < batch; b++) {
            const float v = dh[(size_t)b * hidden + j];
            if (v != 0.0f) {
                rows[count] = b;
                values[count] = v;
                count++;
            }
        }
    }
    offsets[hidden] = count;
    return count;
}

// The portable path, element by element in the documented order (fmaf: the same roundings as the vector path).
void bn_sparse_transposed_product_portable(int n, int j_begin, int j_end, const float *x, int ldx,
                                           const int32_t *offsets, const int32_t *rows, const float *values,
                                           float alpha, int beta_one, float *out, int ldo) {
    for (int j = j_begin; j < j_end; j++) {
        float *o = out + (size_t)j * ldo;
        for (int i = 0; i < n; i++) {
            float sum = 0.0f;
            for (int32_t t = offsets[j]; t < offsets[j + 1]; t++)
                sum = fmaf(values[t], x[(size_t)rows[t] * ldx + i], sum);
            o[i] = beta_one ? fmaf(alpha, sum, o[i]) : alpha * sum;
        }
    }
}

#if defined(__x86_64__)
#include <immintrin.h>
#include "avx512_lanes.h"

#define BN_SPARSE_TARGET __attribute__((target("avx512f")))

// Columns of x in tiles of 64 (four zmm accumulators): a tile of x over the batch (100 rows: 25 KiB) stays in L1
// while every output row of [j_begin, j_end) passes over it.
BN_SPARSE_TARGET static void product_avx512(int n, int j_begin, int j_end, const float *x, int ldx,
                                            const int32_t *offsets, const int32_t *rows, const float *values,
                                            float alpha, int beta_one, float *out, int ldo) {
    const __m512 a = _mm512_set1_ps(alpha);
    for (int i0 = 0; i0 < n; i0 += 64) {
        const int left = n - i0;
        const __mmask16 m0 = bn_lane_mask(left), m1 = bn_lane_mask(left - 16);
        const __mmask16 m2 = bn_lane_mask(left - 32), m3 = bn_lane_mask(left - 48);
        const float *xt = x + i0;
        for (int j = j_begin; j < j_end; j++) {
            __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps(), s2 = _mm512_setzero_ps(),
                   s3 = _mm512_setzero_ps();
            for (int32_t t = offsets[j]; t < offsets[j + 1]; t++) {
                const float *r = xt + (size_t)rows[t] * ldx;
                const __m512 v = _mm512_set1_ps(values[t]);
                s0 = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m0, r), s0);
                s1 = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m1, r + 16), s1);
                s2 = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m2, r + 32), s2);
                s3 = _mm512_fmadd_ps(v, _mm512_maskz_loadu_ps(m3, r + 48), s3);
            }
            float *o = out + (size_t)j * ldo + i0;
            if (beta_one) {
                _mm512_mask_storeu_ps(o, m0, _mm512_fmadd_ps(a, s0, _mm512_maskz_loadu_ps(m0, o)));
                _mm512_mask_storeu_ps(o + 16, m1, _mm512_fmadd_ps(a, s1, _mm512_maskz_loadu_ps(m1, o + 16)));
                _mm512_mask_storeu_ps(o + 32, m2, _mm512_fmadd_ps(a, s2, _mm512_maskz_loadu_ps(m2, o + 32)));
                _mm512_mask_storeu_ps(o + 48, m3, _mm512_fmadd_ps(a, s3, _mm512_maskz_loadu_ps(m3, o + 48)));
            } else {
                _mm512_mask_storeu_ps(o, m0, _mm512_mul_ps(a, s0));
                _mm512_mask_storeu_ps(o + 16, m1, _mm512_mul_ps(a, s1));
                _mm512_mask_storeu_ps(o + 32, m2, _mm512_mul_ps(a, s2));
                _mm512_mask_storeu_ps(o + 48, m3, _mm512_mul_ps(a, s3));
            }
        }
    }
}
#endif

void bn_sparse_transposed_product(int n, int j_begin, int j_end, const float *x, int ldx, const int32_t *offsets,
                                  const int32_t *rows, const float *values, float alpha, int beta_one, float *out,
                                  int ldo) {
#if defined(__x86_64__)
    if (has_avx512()) {
        product_avx512(n, j_begin, j_end, x, ldx, offsets, rows, values, alpha, beta_one, out, ldo);
        return;
    }
#endif
    bn_sparse_transposed_product_portable(n, j_begin, j_end, x, ldx, offsets, rows, values, alpha, beta_one, out, ldo);
}
