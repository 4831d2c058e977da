#ifndef BOTTLENECK_CPU_FEATURE_SHIMS_H
#define BOTTLENECK_CPU_FEATURE_SHIMS_H
#include <stdint.h>

// The CPU's instruction-set extensions, read with cpuid, that the project's own kernels need. A bit is set
// only when the CPU reports the extension and the operating system saves the AVX-512 register state
// (XCR0 bits 1, 2, 5, 6, 7), i.e. when the instructions can run.

/// Bits of `bn_cpu_features()`.
enum {
    BN_CPU_AVX512F = 1u << 0,     ///< cpuid leaf 7 subleaf 0, EBX bit 16
    BN_CPU_AVX512BW = 1u << 1,    ///< cpuid leaf 7 subleaf 0, EBX bit 30
    BN_CPU_AVX512VL = 1u << 2,    ///< cpuid leaf 7 subleaf 0, EBX bit 31
    BN_CPU_AVX512_BF16 = 1u << 3, ///< cpuid leaf 7 subleaf 1, EAX bit 5
};

/// The `BN_CPU_*` bits of this CPU; 0 on a CPU without cpuid leaf 7 or without OS support for AVX-512.
uint32_t bn_cpu_features(void);

#endif
