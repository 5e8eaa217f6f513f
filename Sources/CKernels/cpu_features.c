#include "cpu_features.h"

#if defined(__x86_64__) || defined(__i386__)
#include <cpuid.h>
#endif

tk_cpu_features tk_cpu_features_detect(void) {
    tk_cpu_features f = {0};
#if defined(__x86_64__) || defined(__i386__)
    __builtin_cpu_init();
    f.sse42 = __builtin_cpu_supports("sse4.2") != 0;
    f.avx = __builtin_cpu_supports("avx") != 0;
    f.avx2 = __builtin_cpu_supports("avx2") != 0;
    f.fma = __builtin_cpu_supports("fma") != 0;
    f.f16c = __builtin_cpu_supports("f16c") != 0;
    f.avx512f = __builtin_cpu_supports("avx512f") != 0;
    f.avx512bw = __builtin_cpu_supports("avx512bw") != 0;
    f.avx512vl = __builtin_cpu_supports("avx512vl") != 0;
    f.avx512vnni = __builtin_cpu_supports("avx512vnni") != 0;
    f.avxvnni = __builtin_cpu_supports("avxvnni") != 0;
    // AMX: CPUID leaf 7, sub-leaf 0, EDX bit 24 (AMX-TILE) and bit 25 (AMX-INT8). Whether the
    // OS grants the tile state is a separate question (Linux: arch_prctl), asked by the kernels
    // that use it.
    unsigned int a, b, c, d;
    if (__get_cpuid_count(7, 0, &a, &b, &c, &d)) {
        f.amx_tile = (d >> 24) & 1;
        f.amx_int8 = (d >> 25) & 1;
    }
#endif
    return f;
}
