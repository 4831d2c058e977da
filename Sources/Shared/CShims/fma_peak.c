#include "FMAPeakShims.h"

#if defined(__x86_64__)
#include <immintrin.h>

__attribute__((target("avx512f"))) float bn_fma_peak(uint64_t iterations) {
    // acc = acc * m + d converges to d / (1 - m) without denormals or overflow.
    const __m512 m = _mm512_set1_ps(0.999f);
    const __m512 d = _mm512_set1_ps(0.001f);
    __m512 acc[BN_FMA_PEAK_CHAINS];
    for (int c = 0; c < BN_FMA_PEAK_CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (uint64_t i = 0; i < iterations; i++) {
#pragma clang loop unroll(full)
        for (int c = 0; c < BN_FMA_PEAK_CHAINS; c++) acc[c] = _mm512_fmadd_ps(acc[c], m, d);
    }
    __m512 sum = acc[0];
    for (int c = 1; c < BN_FMA_PEAK_CHAINS; c++) sum = _mm512_add_ps(sum, acc[c]);
    return _mm512_reduce_add_ps(sum);
}

__attribute__((target("avx512bf16,avx512f,avx512bw,avx512vl"))) float bn_bf16_dot_peak(uint64_t iterations) {
    // Pairs (1, 2⁻¹⁰)·(2⁻¹⁰, 2⁻¹⁰): each vdpbf16ps adds about 2⁻¹⁰ per lane; no overflow in any run length
    // this probe is given, and the sums stay normal.
    const __m512bh x = (__m512bh)_mm512_set1_epi32(0x3A803F80);  // bf16 pair (1.0 low, 2^-10 high)
    const __m512bh y = (__m512bh)_mm512_set1_epi32(0x3A803A80);  // bf16 pair (2^-10, 2^-10)
    __m512 acc[BN_FMA_PEAK_CHAINS];
    for (int c = 0; c < BN_FMA_PEAK_CHAINS; c++) acc[c] = _mm512_set1_ps((float)c);
    for (uint64_t i = 0; i < iterations; i++) {
#pragma clang loop unroll(full)
        for (int c = 0; c < BN_FMA_PEAK_CHAINS; c++) acc[c] = _mm512_dpbf16_ps(acc[c], x, y);
    }
    __m512 sum = acc[0];
    for (int c = 1; c < BN_FMA_PEAK_CHAINS; c++) sum = _mm512_add_ps(sum, acc[c]);
    return _mm512_reduce_add_ps(sum);
}
#else
float bn_fma_peak(uint64_t iterations) { (void)iterations; return 0; }
float bn_bf16_dot_peak(uint64_t iterations) { (void)iterations; return 0; }
#endif
