#ifndef CKERNELS_CPU_FEATURES_H
#define CKERNELS_CPU_FEATURES_H

#include <stdint.h>

/// SIMD features of the running CPU, detected once with `__builtin_cpu_supports`
/// (which also checks that the OS saves the wide registers).
typedef struct {
    int32_t sse42;
    int32_t avx;
    int32_t avx2;
    int32_t fma;
    int32_t f16c;
    int32_t avx512f;
    int32_t avx512bw;
    int32_t avx512vl;
    int32_t avx512vnni;
    int32_t avxvnni;
} tk_cpu_features;

/// The features of this CPU (cached after the first call; thread-safe).
tk_cpu_features tk_cpu_features_detect(void);

#endif
