// The AMX Int8 product of the `bitpacked` backend (see include/bitpacked_amx.h and
// docs/performance/amx.md), built twice from bitpacked_amx_impl.h: on the real tile
// instructions and on a scalar emulator of them, so the kernel's layout, blocking and edge
// handling are tested on machines without AMX.
//
// Exactness: TDPBSSD multiplies signed bytes exactly and adds the products into Int32 lanes
// with wrap-around (no saturation); the stores into y add Int32 partial sums (one per K block)
// modulo 2^32 as well. Everything is ring arithmetic modulo 2^32, and the true result
// |W·x| ≤ 128 · in < 2^31 fits, so y is the exact W·x, identical to every other variant.

#include "bitpacked_amx.h"

#include <stdatomic.h>
#include <stdio.h>
#include <string.h>

#include "cpu_features.h"
#include "bitpacked_pack.h"

#if defined(__x86_64__)
/// The tiles, 16 activation rows at a time, as 16 × 16 transposes of 32-bit lanes (AVX-512; every
/// CPU that runs the amx variant or its emulated tests has it).
static BP_PACK_TARGET void bp_amx_pack_x_avx512(const int8_t *x, size_t x_stride, size_t in, size_t batch,
                                                size_t padded_in, int8_t *dst) {
    const size_t tiles = (batch + 15) / 16;
    for (size_t bt = 0; bt < tiles; bt++) {
        const size_t rows = batch - 16 * bt < 16 ? batch - 16 * bt : 16;
        bp_pack_tile16(x + 16 * bt * x_stride, x_stride, rows, in, padded_in, (uint8_t *)dst + 16 * padded_in * bt);
    }
}
#endif

size_t tk_bitpacked_amx_x_bytes(size_t batch, size_t padded_in) {
    return (batch + 15) / 16 * (padded_in / 64) * 1024;
}

void tk_bitpacked_amx_pack_x(const int8_t *x, size_t x_stride, size_t in, size_t batch, size_t padded_in,
                             int8_t *dst) {
#if defined(__x86_64__)
    bp_amx_pack_x_avx512(x, x_stride, in, batch, padded_in, dst);
#else
    const size_t chunks = padded_in / 64, tiles = (batch + 15) / 16;
    for (size_t bt = 0; bt < tiles; bt++)
        for (size_t n = 0; n < 16; n++) {
            const size_t t = 16 * bt + n;
            for (size_t c = 0; c < chunks; c++) {
                int8_t *col = dst + 1024 * (bt * chunks + c) + 4 * n;  // row k at col + 64k
                const size_t valid = t >= batch || in <= 64 * c ? 0 : (in - 64 * c < 64 ? in - 64 * c : 64);
                const int8_t *xr = x + t * x_stride + 64 * c;
                for (size_t k = 0; k < 16; k++)
                    for (size_t i = 0; i < 4; i++) col[64 * k + i] = 4 * k + i < valid ? xr[4 * k + i] : 0;
            }
        }
#endif
}

/// Bytes from one unpacked weight row to the next in the scratch: one K block (at most
/// TK_AMX_K_BLOCK_GROUPS groups plus the half group) and 64 more, so that the 16 rows a tile
/// load reads are not 4 KiB apart (they would all fall into the same L1 set).
static size_t bp_amx_wstride(size_t groups, size_t half) {
    const size_t g = groups < TK_AMX_K_BLOCK_GROUPS ? groups : TK_AMX_K_BLOCK_GROUPS;
    return 256 * g + 128 * half + 64;
}

size_t tk_bitpacked_amx_scratch_bytes(size_t groups, size_t half) {
    return TK_AMX_BLOCK_ROWS * bp_amx_wstride(groups, half) + 4 * 1024;
}

// ---------------------------------------------------------------------------------------
// The tile emulator: a register file of 8 tiles, the palette-1 configuration, and the six
// instructions the kernel uses with their architectural semantics (rows past a tile's
// configured rows, bytes past its configured columns read as zero). Shape rules TDPBSSD
// enforces (#UD on real hardware) are checked and counted as faults.

static _Atomic uint64_t bp_emu_configs, bp_emu_releases, bp_emu_dpbssd_count, bp_emu_faults;

tk_amx_emulator_stats tk_amx_emulator_stats_read(void) {
    tk_amx_emulator_stats s = {atomic_load(&bp_emu_configs), atomic_load(&bp_emu_releases),
                               atomic_load(&bp_emu_dpbssd_count), atomic_load(&bp_emu_faults)};
    return s;
}

typedef struct {
    int configured;
    uint8_t rows[8];
    uint16_t colsb[8];
    int8_t t[8][16][64];
} bp_amx_emu;

static void bp_emu_fault(const char *what) {
    atomic_fetch_add(&bp_emu_faults, 1);
    fprintf(stderr, "tk amx emulator fault: %s\n", what);
}

static void bp_emu_init(bp_amx_emu *e) { memset(e, 0, sizeof *e); }

static void bp_emu_loadconfig(bp_amx_emu *e, const void *config) {
    const uint8_t *c = (const uint8_t *)config;
    if (c[0] != 1) { bp_emu_fault("palette is not 1"); return; }
    memset(e, 0, sizeof *e);
    for (int i = 0; i < 8; i++) {
        e->colsb[i] = (uint16_t)(c[16 + 2 * i] | c[17 + 2 * i] << 8);
        e->rows[i] = c[48 + i];
        if (e->rows[i] > 16 || e->colsb[i] > 64) { bp_emu_fault("tile larger than 16 x 64"); return; }
    }
    e->configured = 1;
    atomic_fetch_add(&bp_emu_configs, 1);
}

static int bp_emu_usable(const bp_amx_emu *e, int t) {
    if (!e->configured) { bp_emu_fault("tile instruction without a loaded configuration"); return 0; }
    if (t < 0 || t > 7 || e->rows[t] == 0 || e->colsb[t] == 0) { bp_emu_fault("unconfigured tile"); return 0; }
    return 1;
}

static void bp_emu_loadd(bp_amx_emu *e, int t, const void *base, size_t stride) {
    if (!bp_emu_usable(e, t)) return;
    memset(e->t[t], 0, sizeof e->t[t]);
    for (int r = 0; r < e->rows[t]; r++) memcpy(e->t[t][r], (const int8_t *)base + r * stride, e->colsb[t]);
}

static void bp_emu_stored(bp_amx_emu *e, int t, void *base, size_t stride) {
    if (!bp_emu_usable(e, t)) return;
    for (int r = 0; r < e->rows[t]; r++) memcpy((int8_t *)base + r * stride, e->t[t][r], e->colsb[t]);
}

static void bp_emu_zero(bp_amx_emu *e, int t) {
    if (!bp_emu_usable(e, t)) return;
    memset(e->t[t], 0, sizeof e->t[t]);
}

/// TDPBSSD c, a, b: C[m][n] += Σ_{k < A.colsb/4} Σ_{i < 4} A[m][4k+i] · B[k][4n+i], signed
/// bytes, Int32 lanes wrapping modulo 2^32.
static void bp_emu_dpbssd(bp_amx_emu *e, int c, int a, int b) {
    if (!bp_emu_usable(e, c) || !bp_emu_usable(e, a) || !bp_emu_usable(e, b)) return;
    if (c == a || c == b || a == b) { bp_emu_fault("TDPBSSD operands not distinct"); return; }
    if (e->rows[a] != e->rows[c] || e->colsb[a] != 4 * e->rows[b] || e->colsb[b] != e->colsb[c] || e->colsb[c] % 4) {
        bp_emu_fault("TDPBSSD operand shapes do not match");
        return;
    }
    const int M = e->rows[c], N = e->colsb[c] / 4, K = e->colsb[a] / 4;
    for (int m = 0; m < M; m++)
        for (int n = 0; n < N; n++) {
            int32_t v;
            memcpy(&v, &e->t[c][m][4 * n], 4);
            uint32_t acc = (uint32_t)v;
            for (int k = 0; k < K; k++)
                for (int i = 0; i < 4; i++)
                    acc += (uint32_t)((int32_t)e->t[a][m][4 * k + i] * (int32_t)e->t[b][k][4 * n + i]);
            v = (int32_t)acc;
            memcpy(&e->t[c][m][4 * n], &v, 4);
        }
    atomic_fetch_add(&bp_emu_dpbssd_count, 1);
}

static void bp_emu_release(bp_amx_emu *e) {
    memset(e, 0, sizeof *e);
    atomic_fetch_add(&bp_emu_releases, 1);
}

#if defined(__x86_64__)
#include <immintrin.h>

/// The palette-1 tile configuration (64 bytes, the LDTILECFG memory format).
typedef struct __attribute__((aligned(64))) {
    uint8_t palette_id;
    uint8_t start_row;
    uint8_t reserved[14];
    uint16_t colsb[16];
    uint8_t rows[16];
} bp_amx_tilecfg;

/// Every one of tmm0..7: 16 rows × 64 bytes.
static inline __attribute__((always_inline)) void bp_amx_config(bp_amx_tilecfg *cfg) {
    memset(cfg, 0, sizeof *cfg);
    cfg->palette_id = 1;
    for (int i = 0; i < 8; i++) {
        cfg->colsb[i] = TK_AMX_TILE_BYTES;
        cfg->rows[i] = TK_AMX_TILE_ROWS;
    }
}

#define BP_AMX_AVX512 __attribute__((target("avx512f,avx512bw")))

/// Unpacks row o's full groups g0 ..< g1 (and its half group when `with_half`) into signed
/// Int8 weights at dst, inputs in order: 64 · (g − g0) · 4 + ... (one 64-byte chunk per field).
/// Field k of a group b is (b >> 2k) & 3, minus 1: three operations per 64 weights.
static inline __attribute__((always_inline)) BP_AMX_AVX512 void bp_amx_unpack_row(
    const tk_bitpacked_amx_args *a, size_t o, size_t g0, size_t g1, int with_half, int8_t *dst)
{
    const size_t tile = o >> 2, r = o & 3;
    const size_t h = a->rows - 4 * tile < 4 ? a->rows - 4 * tile : 4;
    const uint8_t *base = a->weights + 4 * tile * a->row_bytes;
    const uint8_t *full = base + 64 * r;
    const size_t stride = 64 * h;
    const __m512i m3 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    for (size_t g = g0; g < g1; g++) {
        const __m512i b = _mm512_loadu_si512((const void *)(full + stride * g));
        int8_t *d = dst + 256 * (g - g0);
        _mm512_storeu_si512((void *)d, _mm512_sub_epi8(_mm512_and_si512(b, m3), one));
        _mm512_storeu_si512((void *)(d + 64), _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(b, 2), m3), one));
        _mm512_storeu_si512((void *)(d + 128), _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(b, 4), m3), one));
        _mm512_storeu_si512((void *)(d + 192), _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(b, 6), m3), one));
    }
    if (with_half) {
        // 32 bytes; field k holds inputs 32k ..< 32k + 32 of the half group: fields 0 and 1
        // make the first 64-input chunk, fields 2 and 3 the second.
        const __m256i b = _mm256_loadu_si256((const __m256i *)(base + 64 * h * a->groups + 32 * r));
        const __m512i lo = _mm512_inserti64x4(_mm512_castsi256_si512(b), _mm256_srli_epi16(b, 2), 1);
        const __m512i hi = _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(b, 4)), _mm256_srli_epi16(b, 6), 1);
        int8_t *d = dst + 256 * (g1 - g0);
        _mm512_storeu_si512((void *)d, _mm512_sub_epi8(_mm512_and_si512(lo, m3), one));
        _mm512_storeu_si512((void *)(d + 64), _mm512_sub_epi8(_mm512_and_si512(hi, m3), one));
    }
}

/// Writes (first K block) or adds (later K blocks) the stored C tiles into y: rows
/// ob ..< ob + nrows, activation rows t0 ..< t0 + 16 (or + 32 when two_b), those < batch.
/// cbuf holds C0..C3, 256 Int32 each, C[m][n] at 16m + n.
static inline __attribute__((always_inline)) void bp_amx_store_y(
    const tk_bitpacked_amx_args *a, const int32_t *cbuf, size_t ob, size_t nrows, size_t t0, int two_b, int first)
{
    for (int qb = 0; qb < 1 + two_b; qb++)
        for (size_t n = 0; n < 16; n++) {
            const size_t t = t0 + 16 * (size_t)qb + n;
            if (t >= a->batch) break;
            int32_t *yr = a->y + t * a->y_stride + ob;
            for (size_t qa = 0; qa < 2 && 16 * qa < nrows; qa++) {
                const int32_t *ct = cbuf + 256 * (2 * qa + (size_t)qb);
                const size_t mmax = nrows - 16 * qa < 16 ? nrows - 16 * qa : 16;
                if (first)
                    for (size_t m = 0; m < mmax; m++) yr[16 * qa + m] = ct[16 * m + n];
                else
                    for (size_t m = 0; m < mmax; m++)
                        yr[16 * qa + m] = (int32_t)((uint32_t)yr[16 * qa + m] + (uint32_t)ct[16 * m + n]);
            }
        }
}

// The emulated build: every tile macro calls the emulator on a state local to the call.
#define BP_AMX_NAME tk_bitpacked_i8_amx_emulated
#define BP_AMX_ATTR BP_AMX_AVX512
#define BP_AMX_LINKAGE
#define BP_AMX_STATE bp_amx_emu emu_state, *emu = &emu_state; bp_emu_init(emu);
#define BP_AMX_STATE_PARAM bp_amx_emu *emu,
#define BP_AMX_STATE_ARG emu,
#define BP_TILE_LOADCONFIG(cfg) bp_emu_loadconfig(emu, cfg)
#define BP_TILE_LOADD(t, base, stride) bp_emu_loadd(emu, t, base, stride)
#define BP_TILE_STORED(t, base, stride) bp_emu_stored(emu, t, base, stride)
#define BP_TILE_ZERO(t) bp_emu_zero(emu, t)
#define BP_TILE_DPBSSD(c, a, b) bp_emu_dpbssd(emu, c, a, b)
#define BP_TILE_RELEASE() bp_emu_release(emu)
#define BP_AMX_FINISH \
    if (emu->configured) bp_emu_fault("returned with tiles still configured");
#include "bitpacked_amx_impl.h"
#undef BP_AMX_NAME
#undef BP_AMX_ATTR
#undef BP_AMX_LINKAGE
#undef BP_AMX_STATE
#undef BP_AMX_STATE_PARAM
#undef BP_AMX_STATE_ARG
#undef BP_TILE_LOADCONFIG
#undef BP_TILE_LOADD
#undef BP_TILE_STORED
#undef BP_TILE_ZERO
#undef BP_TILE_DPBSSD
#undef BP_TILE_RELEASE
#undef BP_AMX_FINISH

// The real build: the AMX intrinsics (tile numbers are immediates).
#define BP_AMX_NAME bp_i8_amx_tiles
#define BP_AMX_ATTR __attribute__((target("amx-tile,amx-int8,avx512f,avx512bw")))
#define BP_AMX_LINKAGE static
#define BP_AMX_STATE
#define BP_AMX_STATE_PARAM
#define BP_AMX_STATE_ARG
#define BP_TILE_LOADCONFIG(cfg) _tile_loadconfig(cfg)
#define BP_TILE_LOADD(t, base, stride) _tile_loadd(t, base, stride)
#define BP_TILE_STORED(t, base, stride) _tile_stored(t, base, stride)
#define BP_TILE_ZERO(t) _tile_zero(t)
#define BP_TILE_DPBSSD(c, a, b) _tile_dpbssd(c, a, b)
#define BP_TILE_RELEASE() _tile_release()
#define BP_AMX_FINISH
#include "bitpacked_amx_impl.h"

void tk_bitpacked_i8_amx(const tk_bitpacked_amx_args *a) {
    // Swift only calls this where tk_amx_os_granted() is 1; checked again (a cached load) so
    // that a mistaken call computes the right answer instead of dying of SIGILL.
    if (!tk_amx_os_granted()) {
        tk_bitpacked_i8_amx_emulated(a);
        return;
    }
    bp_i8_amx_tiles(a);
}

#else  // not x86-64: no AMX. Swift never selects these (the amx variant needs AVX-512 and AMX).

void tk_bitpacked_i8_amx(const tk_bitpacked_amx_args *a) {
    (void)a;
    bp_emu_fault("AMX kernel called on a CPU that is not x86-64");
}
void tk_bitpacked_i8_amx_emulated(const tk_bitpacked_amx_args *a) { tk_bitpacked_i8_amx(a); }

#endif
