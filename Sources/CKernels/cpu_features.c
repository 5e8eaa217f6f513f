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

// ---------------------------------------------------------------------------------------
// AMX permission. Linux does not let a process use the 8 KiB tile data state until it asks
// (arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)); without that, the first tile
// instruction raises SIGILL. The request is process-wide and idempotent; it is made once.

#if defined(__linux__) && defined(__x86_64__)
#include <pthread.h>
#include <sys/syscall.h>
#include <unistd.h>

#define TK_ARCH_GET_XCOMP_PERM 0x1022
#define TK_ARCH_REQ_XCOMP_PERM 0x1023
#define TK_XFEATURE_XTILECFG 17
#define TK_XFEATURE_XTILEDATA 18

static pthread_once_t tk_amx_once = PTHREAD_ONCE_INIT;
static int32_t tk_amx_granted = 0;

static void tk_amx_request(void) {
    const tk_cpu_features f = tk_cpu_features_detect();
    if (!f.amx_tile || !f.amx_int8) return;
    // The OS must have enabled XSAVE and the two tile state components in XCR0.
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d) || !((c >> 27) & 1)) return;  // OSXSAVE
    unsigned int xcr0_lo, xcr0_hi;
    __asm__ volatile("xgetbv" : "=a"(xcr0_lo), "=d"(xcr0_hi) : "c"(0));
    const unsigned long long xcr0 = ((unsigned long long)xcr0_hi << 32) | xcr0_lo;
    const unsigned long long tile_bits = (1ULL << TK_XFEATURE_XTILECFG) | (1ULL << TK_XFEATURE_XTILEDATA);
    if ((xcr0 & tile_bits) != tile_bits) return;
    if (syscall(SYS_arch_prctl, TK_ARCH_REQ_XCOMP_PERM, TK_XFEATURE_XTILEDATA) != 0) return;
    unsigned long permitted = 0;
    if (syscall(SYS_arch_prctl, TK_ARCH_GET_XCOMP_PERM, &permitted) != 0) return;
    tk_amx_granted = (permitted >> TK_XFEATURE_XTILEDATA) & 1;
}

int32_t tk_amx_os_granted(void) {
    pthread_once(&tk_amx_once, tk_amx_request);
    return tk_amx_granted;
}

#else

int32_t tk_amx_os_granted(void) { return 0; }

#endif
