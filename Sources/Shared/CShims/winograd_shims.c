#include "WinogradShims.h"

// Lane by lane the same operations, in the same order, as the VGG16 module's `winogradInput`, `winogradOutput`,
// `winograd4x4B`, `winograd4x4A` and `winograd4x4Output`; no contraction into fused multiply-adds, which would round differently.
#pragma clang fp contract(off)

#if defined(__x86_64__)
#include <immintrin.h>
#include "avx512_lanes.h"

#define BN_AVX512_TARGET __attribute__((target("avx512f")))

// (x0·4 − x2·5) + x4, c − d·4, e + f·4, a + b·2, a − b·2, (x1·4 − x3·5) + x5 with a = x4 − x2, b = x3 − x1,
// c = x3 + x4, d = x1 + x2, e = x4 − x3, f = x1 − x2.
BN_AVX512_TARGET static inline void input_b(const __m512 x[6], __m512 y[6]) {
    const __m512 four = _mm512_set1_ps(4), five = _mm512_set1_ps(5), two = _mm512_set1_ps(2);
    const __m512 a = _mm512_sub_ps(x[4], x[2]);
    const __m512 b = _mm512_sub_ps(x[3], x[1]);
    const __m512 c = _mm512_add_ps(x[3], x[4]);
    const __m512 d = _mm512_add_ps(x[1], x[2]);
    const __m512 e = _mm512_sub_ps(x[4], x[3]);
    const __m512 f = _mm512_sub_ps(x[1], x[2]);
    y[0] = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(x[0], four), _mm512_mul_ps(x[2], five)), x[4]);
    y[1] = _mm512_sub_ps(c, _mm512_mul_ps(d, four));
    y[2] = _mm512_add_ps(e, _mm512_mul_ps(f, four));
    y[3] = _mm512_add_ps(a, _mm512_mul_ps(b, two));
    y[4] = _mm512_sub_ps(a, _mm512_mul_ps(b, two));
    y[5] = _mm512_add_ps(_mm512_sub_ps(_mm512_mul_ps(x[1], four), _mm512_mul_ps(x[3], five)), x[5]);
}

BN_AVX512_TARGET void bn_winograd4x4_input_row(const float *origin, ptrdiff_t row_floats, int channels, int tiles,
                                               float *out, ptrdiff_t stride) {
    for (int t = 0; t < tiles; t++) {
        const float *tile = origin + (ptrdiff_t)4 * t * channels;
        float *destination = out + (ptrdiff_t)t * channels;
        for (int c = 0; c < channels; c += 16) {
            const __mmask16 mask = bn_lane_mask(channels - c);
            __m512 columns[6][6];  // columns[j][i]: row i of Bᵀ d, column j
            for (int j = 0; j < 6; j++) {
                __m512 x[6];
                const float *p = tile + (ptrdiff_t)j * channels + c;
                for (int i = 0; i < 6; i++) x[i] = _mm512_maskz_loadu_ps(mask, p + i * row_floats);
                input_b(x, columns[j]);
            }
            for (int i = 0; i < 6; i++) {
                const __m512 x[6] = {columns[0][i], columns[1][i], columns[2][i],
                                     columns[3][i], columns[4][i], columns[5][i]};
                __m512 v[6];
                input_b(x, v);
                float *base = destination + c + (ptrdiff_t)6 * i * stride;
                for (int k = 0; k < 6; k++) _mm512_mask_storeu_ps(base + k * stride, mask, v[k]);
            }
        }
    }
}

// (x0 + (x1 + x2)) + (x3 + x4), (x1 − x2) + (x3 − x4)·2, (x1 + x2) + (x3 + x4)·4, ((x1 − x2) + (x3 − x4)·8) + x5.
BN_AVX512_TARGET static inline void output_a(const __m512 x[6], __m512 y[4]) {
    const __m512 sum12 = _mm512_add_ps(x[1], x[2]);
    const __m512 difference12 = _mm512_sub_ps(x[1], x[2]);
    const __m512 sum34 = _mm512_add_ps(x[3], x[4]);
    const __m512 difference34 = _mm512_sub_ps(x[3], x[4]);
    y[0] = _mm512_add_ps(_mm512_add_ps(x[0], sum12), sum34);
    y[1] = _mm512_add_ps(difference12, _mm512_mul_ps(difference34, _mm512_set1_ps(2)));
    y[2] = _mm512_add_ps(sum12, _mm512_mul_ps(sum34, _mm512_set1_ps(4)));
    y[3] = _mm512_add_ps(_mm512_add_ps(difference12, _mm512_mul_ps(difference34, _mm512_set1_ps(8))), x[5]);
}

// The larger of a and b as the portable code takes it: b where a < b, else a (NaN and −0 included).
BN_AVX512_TARGET static inline __m512 larger(__m512 a, __m512 b) {
    return _mm512_mask_blend_ps(_mm512_cmp_ps_mask(a, b, _CMP_LT_OQ), a, b);
}

BN_AVX512_TARGET void bn_winograd4x4_output_tile(const float *source, ptrdiff_t stride, const float *bias,
                                                 float *target, ptrdiff_t row_stride, int channels, int pools,
                                                 int rows, int columns) {
    const __m512 zero = _mm512_setzero_ps();
    for (int c = 0; c < channels; c += 16) {
        const __mmask16 mask = bn_lane_mask(channels - c);
        __m512 s[6][4];  // s[b][a]: row a of Aᵀ M, column b
        for (int b = 0; b < 6; b++) {
            __m512 x[6];
            const float *p = source + c + (ptrdiff_t)b * stride;
            for (int i = 0; i < 6; i++) x[i] = _mm512_maskz_loadu_ps(mask, p + (ptrdiff_t)6 * i * stride);
            output_a(x, s[b]);
        }
        __m512 y[4][4];  // y[a][column]
        for (int a = 0; a < 4; a++) {
            const __m512 x[6] = {s[0][a], s[1][a], s[2][a], s[3][a], s[4][a], s[5][a]};
            output_a(x, y[a]);
        }
        const __m512 b = _mm512_maskz_loadu_ps(mask, bias + c);
        float *o = target + c;
        if (pools) {
#define BN_POOLED(r, q) \
    larger(_mm512_add_ps(larger(larger(y[r][q], y[r][q + 1]), larger(y[r + 1][q], y[r + 1][q + 1])), b), zero)
            _mm512_mask_storeu_ps(o, mask, BN_POOLED(0, 0));
            if (columns > 2) _mm512_mask_storeu_ps(o + channels, mask, BN_POOLED(0, 2));
            if (rows > 2) {
                _mm512_mask_storeu_ps(o + row_stride, mask, BN_POOLED(2, 0));
                if (columns > 2) _mm512_mask_storeu_ps(o + row_stride + channels, mask, BN_POOLED(2, 2));
            }
#undef BN_POOLED
            continue;
        }
        for (int r = 0; r < 4 && r < rows; r++) {
            float *row = o + (ptrdiff_t)r * row_stride;
            for (int q = 0; q < 4 && q < columns; q++)
                _mm512_mask_storeu_ps(row + (ptrdiff_t)q * channels, mask, larger(_mm512_add_ps(y[r][q], b), zero));
        }
    }
}
BN_AVX512_TARGET void bn_winograd2x2_input_row(const float *origin, ptrdiff_t row_floats, int channels, int tiles,
                                               float *out, ptrdiff_t stride) {
    for (int t = 0; t < tiles; t++) {
        const float *tile = origin + (ptrdiff_t)2 * t * channels;
        float *destination = out + (ptrdiff_t)t * channels;
        for (int c = 0; c < channels; c += 16) {
            const __mmask16 mask = bn_lane_mask(channels - c);
            __m512 columns[4][4];  // columns[j][i]: row i of Bᵀ d, column j
            for (int j = 0; j < 4; j++) {
                const float *p = tile + (ptrdiff_t)j * channels + c;
                const __m512 d0 = _mm512_maskz_loadu_ps(mask, p);
                const __m512 d1 = _mm512_maskz_loadu_ps(mask, p + row_floats);
                const __m512 d2 = _mm512_maskz_loadu_ps(mask, p + 2 * row_floats);
                const __m512 d3 = _mm512_maskz_loadu_ps(mask, p + 3 * row_floats);
                columns[j][0] = _mm512_sub_ps(d0, d2);
                columns[j][1] = _mm512_add_ps(d1, d2);
                columns[j][2] = _mm512_sub_ps(d2, d1);
                columns[j][3] = _mm512_sub_ps(d1, d3);
            }
            for (int i = 0; i < 4; i++) {
                float *base = destination + c + (ptrdiff_t)4 * i * stride;
                const __m512 t0 = columns[0][i], t1 = columns[1][i], t2 = columns[2][i], t3 = columns[3][i];
                _mm512_mask_storeu_ps(base, mask, _mm512_sub_ps(t0, t2));
                _mm512_mask_storeu_ps(base + stride, mask, _mm512_add_ps(t1, t2));
                _mm512_mask_storeu_ps(base + 2 * stride, mask, _mm512_sub_ps(t2, t1));
                _mm512_mask_storeu_ps(base + 3 * stride, mask, _mm512_sub_ps(t1, t3));
            }
        }
    }
}

BN_AVX512_TARGET void bn_winograd2x2_output_tile(const float *source, ptrdiff_t stride, const float *bias,
                                                 float *target, ptrdiff_t row_stride, int channels, int pools,
                                                 int rows, int columns) {
    const __m512 zero = _mm512_setzero_ps();
    for (int c = 0; c < channels; c += 16) {
        const __mmask16 mask = bn_lane_mask(channels - c);
        __m512 s[4][2];  // s[b][a]: row a of Aᵀ M, column b
        for (int b = 0; b < 4; b++) {
            const float *p = source + c + (ptrdiff_t)b * stride;
            const __m512 m0 = _mm512_maskz_loadu_ps(mask, p);
            const __m512 m1 = _mm512_maskz_loadu_ps(mask, p + 4 * stride);
            const __m512 m2 = _mm512_maskz_loadu_ps(mask, p + 8 * stride);
            const __m512 m3 = _mm512_maskz_loadu_ps(mask, p + 12 * stride);
            s[b][0] = _mm512_add_ps(_mm512_add_ps(m0, m1), m2);
            s[b][1] = _mm512_sub_ps(_mm512_sub_ps(m1, m2), m3);
        }
        const __m512 y00 = _mm512_add_ps(_mm512_add_ps(s[0][0], s[1][0]), s[2][0]);
        const __m512 y01 = _mm512_sub_ps(_mm512_sub_ps(s[1][0], s[2][0]), s[3][0]);
        const __m512 y10 = _mm512_add_ps(_mm512_add_ps(s[0][1], s[1][1]), s[2][1]);
        const __m512 y11 = _mm512_sub_ps(_mm512_sub_ps(s[1][1], s[2][1]), s[3][1]);
        const __m512 b = _mm512_maskz_loadu_ps(mask, bias + c);
        float *o = target + c;
        if (pools) {
            const __m512 top = larger(y00, y01), bottom = larger(y10, y11);
            _mm512_mask_storeu_ps(o, mask, larger(_mm512_add_ps(larger(top, bottom), b), zero));
            continue;
        }
        _mm512_mask_storeu_ps(o, mask, larger(_mm512_add_ps(y00, b), zero));
        if (columns > 1) _mm512_mask_storeu_ps(o + channels, mask, larger(_mm512_add_ps(y01, b), zero));
        if (rows > 1) {
            _mm512_mask_storeu_ps(o + row_stride, mask, larger(_mm512_add_ps(y10, b), zero));
            if (columns > 1)
                _mm512_mask_storeu_ps(o + row_stride + channels, mask, larger(_mm512_add_ps(y11, b), zero));
        }
    }
}
#else
void bn_winograd4x4_input_row(const float *origin, ptrdiff_t row_floats, int channels, int tiles, float *out,
                              ptrdiff_t stride) {
    (void)origin; (void)row_floats; (void)channels; (void)tiles; (void)out; (void)stride;
}
void bn_winograd4x4_output_tile(const float *source, ptrdiff_t stride, const float *bias, float *target,
                                ptrdiff_t row_stride, int channels, int pools, int rows, int columns) {
    (void)source; (void)stride; (void)bias; (void)target; (void)row_stride; (void)channels; (void)pools;
    (void)rows; (void)columns;
}
void bn_winograd2x2_input_row(const float *origin, ptrdiff_t row_floats, int channels, int tiles, float *out,
                              ptrdiff_t stride) {
    (void)origin; (void)row_floats; (void)channels; (void)tiles; (void)out; (void)stride;
}
void bn_winograd2x2_output_tile(const float *source, ptrdiff_t stride, const float *bias, float *target,
                                ptrdiff_t row_stride, int channels, int pools, int rows, int columns) {
    (void)source; (void)stride; (void)bias; (void)target; (void)row_stride; (void)channels; (void)pools;
    (void)rows; (void)columns;
}
#endif
