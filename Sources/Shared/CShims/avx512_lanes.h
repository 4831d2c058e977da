#ifndef BOTTLENECK_AVX512_LANES_H
#define BOTTLENECK_AVX512_LANES_H
// Helpers shared by the AVX-512 kernels (bf16_gemm.c, fp32_gemm.c, sparse_update.c, winograd_shims.c); not part
// of the module's interface. Include inside an `#if defined(__x86_64__)` block.
#include <immintrin.h>

// The mask of the first `count` of 16 lanes: none when count ≤ 0, all when count ≥ 16.
static inline __mmask16 bn_lane_mask(int count) {
    if (count <= 0) return 0;
    if (count >= 16) return 0xFFFF;
    return (__mmask16)((1u << count) - 1u);
}

#endif
