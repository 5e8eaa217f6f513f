#ifndef CKERNELS_CPU_FEATURES_H
#define CKERNELS_CPU_FEATURES_H

#include <stdint.h>

/// SIMD features of the running CPU, detected with `__builtin_cpu_supports` (which also checks
/// that the OS saves the wide registers) and, for AMX, CPUID.
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
    int32_t amx_tile;   ///< CPUID: AMX tile instructions (the OS must still grant the state)
    int32_t amx_int8;   ///< CPUID: AMX Int8 dot products (TDPBSSD and friends)
} tk_cpu_features;

/// The features of this CPU (cached after the first call; thread-safe).
tk_cpu_features tk_cpu_features_detect(void);

/// 1 when this process may execute AMX Int8 tile instructions: CPUID reports AMX-TILE and
/// AMX-INT8 and the OS enabled the tile state (XCR0 bits 17, 18), and on Linux the kernel
/// granted the XTILEDATA state to this process (arch_prctl ARCH_REQ_XCOMP_PERM, confirmed with
/// ARCH_GET_XCOMP_PERM). Asked once, the first time; the answer is cached (thread-safe).
/// 0 everywhere else (other CPUs, other operating systems, a refused request).
int32_t tk_amx_os_granted(void);

/// A spin-wait hint (`pause` on x86): lets a sibling hyperthread run and saves power while a
/// thread polls a flag (TensorCore's worker pool).
static inline void tk_cpu_relax(void) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#elif defined(__aarch64__)
    __asm__ __volatile__("yield");
#endif
}

#endif
