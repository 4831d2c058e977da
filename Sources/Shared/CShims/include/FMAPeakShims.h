#ifndef BOTTLENECK_FMA_PEAK_SHIMS_H
#define BOTTLENECK_FMA_PEAK_SHIMS_H
#include <stdint.h>

// A kernel that does nothing but AVX-512 fp32 fused multiply-adds, to measure the FMA peak of a core:
// `BN_FMA_PEAK_CHAINS` independent accumulators (more than FMA latency × FMA ports on current cores, so
// the chains never wait on each other), no memory traffic inside the loop. Needs AVX512F
// (`bn_cpu_features`); calling it on a CPU without it stops the process (illegal instruction).

/// Independent 16-lane accumulator chains of `bn_fma_peak`.
#define BN_FMA_PEAK_CHAINS 12

/// Runs `iterations` rounds of one `vfmadd` per chain (16 fp32 lanes each): 2 · 16 · BN_FMA_PEAK_CHAINS ·
/// iterations floating-point operations. Returns a sum of the accumulators, so the work cannot be elided.
float bn_fma_peak(uint64_t iterations);

/// The same with `vdpbf16ps` (AVX512_BF16) in place of `vfmadd`: each instruction does 2 bf16 products and 2
/// fp32 additions per lane, 4 · 16 · BN_FMA_PEAK_CHAINS · iterations floating-point operations. Needs
/// AVX512_BF16.
float bn_bf16_dot_peak(uint64_t iterations);

#endif
