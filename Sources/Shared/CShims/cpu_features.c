#include "CPUFeatureShims.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>

static uint64_t read_xcr0(void) {
    uint32_t eax, edx;
    __asm__ volatile("xgetbv" : "=a"(eax), "=d"(edx) : "c"(0));
    return ((uint64_t)edx << 32) | eax;
}

uint32_t bn_cpu_features(void) {
    unsigned eax, ebx, ecx, edx;
    if (!__get_cpuid(1, &eax, &ebx, &ecx, &edx)) return 0;
    if (!(ecx & (1u << 27))) return 0;  // OSXSAVE: xgetbv is usable
    // SSE, AVX, opmask, ZMM0-15 upper halves, ZMM16-31 state enabled by the OS.
    if ((read_xcr0() & 0xE6u) != 0xE6u) return 0;
    if (__get_cpuid_max(0, 0) < 7) return 0;
    uint32_t features = 0;
    __cpuid_count(7, 0, eax, ebx, ecx, edx);
    unsigned max_subleaf = eax;
    if (ebx & (1u << 16)) features |= BN_CPU_AVX512F;
    if (ebx & (1u << 30)) features |= BN_CPU_AVX512BW;
    if (ebx & (1u << 31)) features |= BN_CPU_AVX512VL;
    if (max_subleaf >= 1) {
        __cpuid_count(7, 1, eax, ebx, ecx, edx);
        if (eax & (1u << 5)) features |= BN_CPU_AVX512_BF16;
    }
    return features;
}
#else
uint32_t bn_cpu_features(void) { return 0; }
#endif
