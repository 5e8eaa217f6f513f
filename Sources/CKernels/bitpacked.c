// Inner loops of the `bitpacked` backend; the layout is described in include/bitpacked.h.
//
// Three variants of each product, chosen at run time in Swift (BitPackedVariant):
//   portable   plain C;
//   avx2       shift + mask unpacking, vpmaddubsw (u8 × s8 → s16 pairs), widened early;
//   avx512vnni vpdpbusd (u8 × s8 → s32, 4 products): mask-only unpacking of "scaled" codes for
//              batch 1, shift + mask for the 4-row × 4-activation-row batch kernel.
// The 4-row kernels work on whole tiles (4 rows stored interleaved, see bitpacked.h); Swift
// hands each thread whole tiles (row_begin is a multiple of 4).
//
// Exactness of the Int8 path (every input, in ≤ TernaryMatrix.maxInFeatures < 2^24):
// the SIMD variants compute Σ c·x with codes c = w + 1 ∈ {0, 1, 2} (unsigned, as both
// vpmaddubsw and vpdpbusd need the unsigned operand), then subtract Σ x once per row.
// Everything after the narrow stages is additions and subtractions in 32-bit two's complement,
// which are exact modulo 2^32; the true result |W·x| ≤ 128 · in ≤ 2^31 − 1 fits, so the
// wrapped result is the true one. The narrow stages and the arithmetic shifts are not ring
// operations, so each is bounded below where it is used.

#include "bitpacked.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

#define TK_INLINE static inline __attribute__((always_inline))

/// Where row o's groups are: full group g at `full + stride · g`, the half group at `half`.
typedef struct {
    const uint8_t *full;
    size_t stride;
    const uint8_t *half;
} bp_row;

TK_INLINE bp_row bp_row_at(const uint8_t *weights, size_t row_bytes, size_t groups, size_t rows, size_t o) {
    const size_t tile = o >> 2, r = o & 3;
    const size_t h = rows - 4 * tile < 4 ? rows - 4 * tile : 4;
    const uint8_t *base = weights + 4 * tile * row_bytes;
    bp_row row = {base + 64 * r, 64 * h, base + 64 * h * groups + 32 * r};
    return row;
}

// ---------------------------------------------------------------------------------------
// Portable: decode one group to Int8 weights, then plain dot products for up to 8 rows of x.

/// Decodes the unit at `src` (a full group when q = 64, a half group when q = 32) into 4q weights.
TK_INLINE void bp_decode(const uint8_t *src, size_t q, int8_t *dst) {
    for (size_t k = 0; k < 4; k++)
        for (size_t j = 0; j < q; j++) dst[k * q + j] = (int8_t)((int)((src[j] >> (2 * k)) & 3) - 1);
}

void tk_bitpacked_i8_portable(const tk_bitpacked_i8_args *a) {
    int8_t w[256];
    const size_t units = a->groups + a->half;
    for (size_t o = a->row_begin; o < a->row_end; o++) {
        const bp_row row = bp_row_at(a->weights, a->row_bytes, a->groups, a->rows, o);
        for (size_t t0 = 0; t0 < a->batch; t0 += 8) {
            const size_t tn = a->batch - t0 < 8 ? a->batch - t0 : 8;
            uint32_t acc[8] = {0};
            for (size_t u = 0; u < units; u++) {
                const size_t q = u < a->groups ? 64 : 32;
                bp_decode(u < a->groups ? row.full + row.stride * u : row.half, q, w);
                for (size_t t = 0; t < tn; t++) {
                    const int8_t *x = a->x + (t0 + t) * a->x_stride + 256 * u;
                    // 16-bit sums of 64 products (|s| ≤ 64 · 128 = 8192), which compilers
                    // vectorize as 16-bit lanes without widening every product.
                    for (size_t c = 0; c < 4 * q; c += 64) {
                        int16_t s = 0;
                        for (size_t i = 0; i < 64; i++) s = (int16_t)(s + (int16_t)(w[c + i] * x[c + i]));
                        acc[t] += (uint32_t)(int32_t)s;
                    }
                }
            }
            for (size_t t = 0; t < tn; t++) a->y[(t0 + t) * a->y_stride + o] = (int32_t)acc[t];
        }
    }
}

void tk_bitpacked_f32_portable(const tk_bitpacked_f32_args *a) {
    int8_t w[256];
    const size_t units = a->groups + a->half;
    for (size_t o = a->row_begin; o < a->row_end; o++) {
        const bp_row row = bp_row_at(a->weights, a->row_bytes, a->groups, a->rows, o);
        for (size_t t0 = 0; t0 < a->batch; t0 += 8) {
            const size_t tn = a->batch - t0 < 8 ? a->batch - t0 : 8;
            float acc[8] = {0};
            for (size_t u = 0; u < units; u++) {
                const size_t q = u < a->groups ? 64 : 32;
                bp_decode(u < a->groups ? row.full + row.stride * u : row.half, q, w);
                for (size_t t = 0; t < tn; t++) {
                    const float *x = a->x + (t0 + t) * a->x_stride + 256 * u;
                    float s = 0;
                    for (size_t i = 0; i < 4 * q; i++) s += (float)w[i] * x[i];
                    acc[t] += s;
                }
            }
            for (size_t t = 0; t < tn; t++) a->y[(t0 + t) * a->y_stride + o] = acc[t] * a->scale;
        }
    }
}

#if defined(__x86_64__)

// ---------------------------------------------------------------------------------------
// AVX2. Codes are unpacked with a 16-bit shift and a byte mask: c_k = (b >> 2k) & 3.
// vpmaddubsw(c, x) gives, per 16-bit lane, c1·x1 + c2·x2 with c ∈ {0, 1, 2} and x ∈ [-128, 127],
// so each lane is in [-512, 508]: it never saturates. At most 8 such lanes (one full group:
// 4 fields × 2 halves) are added in 16 bits, |sum| ≤ 4096 < 32767, then vpmaddwd with ones
// widens to 32 bits. So no 16-bit value ever holds more than 16 products.

#define AVX2 __attribute__((target("avx2,fma")))
#define BP_PREFETCH_AVX2 4096

TK_INLINE AVX2 int32_t bp_hsum_epi32_avx2(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

TK_INLINE AVX2 float bp_hsum_ps_avx2(__m256 v) {
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));
    s = _mm_add_ps(s, _mm_movehl_ps(s, s));
    s = _mm_add_ss(s, _mm_movehdup_ps(s));
    return _mm_cvtss_f32(s);
}

/// One row o, T activation rows from t0: the unpacked codes of each 32-byte half are reused
/// for all T rows.
TK_INLINE AVX2 void bp_i8_avx2_block(const tk_bitpacked_i8_args *a, size_t o, size_t t0, const int T) {
    const bp_row row = bp_row_at(a->weights, a->row_bytes, a->groups, a->rows, o);
    const int8_t *x[4];
    for (int t = 0; t < T; t++) x[t] = a->x + (t0 + t) * a->x_stride;
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i acc[4];
    for (int t = 0; t < T; t++) acc[t] = _mm256_setzero_si256();
    const size_t units = a->groups + a->half;
    for (size_t u = 0; u < units; u++) {
        const int full = u < a->groups;
        const size_t cs = full ? 64 : 32;  // distance between the 4 fields' activations
        __m256i s16[4];
        for (int t = 0; t < T; t++) s16[t] = _mm256_setzero_si256();
        for (int h = 0; h < 1 + full; h++) {
            const uint8_t *src = full ? row.full + row.stride * u + 32 * h : row.half;
            const __m256i b = _mm256_loadu_si256((const __m256i *)src);
            const __m256i c0 = _mm256_and_si256(b, m3);
            const __m256i c1 = _mm256_and_si256(_mm256_srli_epi16(b, 2), m3);
            const __m256i c2 = _mm256_and_si256(_mm256_srli_epi16(b, 4), m3);
            const __m256i c3 = _mm256_and_si256(_mm256_srli_epi16(b, 6), m3);
            for (int t = 0; t < T; t++) {
                const int8_t *xp = x[t] + 256 * u + 32 * h;
                __m256i s = _mm256_maddubs_epi16(c0, _mm256_loadu_si256((const __m256i *)xp));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(c1, _mm256_loadu_si256((const __m256i *)(xp + cs))));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(c2, _mm256_loadu_si256((const __m256i *)(xp + 2 * cs))));
                s = _mm256_add_epi16(s, _mm256_maddubs_epi16(c3, _mm256_loadu_si256((const __m256i *)(xp + 3 * cs))));
                s16[t] = _mm256_add_epi16(s16[t], s);
            }
        }
        for (int t = 0; t < T; t++) acc[t] = _mm256_add_epi32(acc[t], _mm256_madd_epi16(s16[t], ones));
    }
    for (int t = 0; t < T; t++)
        a->y[(t0 + t) * a->y_stride + o] = (int32_t)((uint32_t)bp_hsum_epi32_avx2(acc[t]) - (uint32_t)a->x_sum[t0 + t]);
}

/// One unit of bp_i8_avx2_tile1 (a macro for the same reason as BP_F32_TILE_UNIT below: an
/// accumulator array handed to an inlined helper stayed in memory). SRC(r, h): row r's 32 bytes
/// of half h; XP: the unit's first activation; CS: distance between fields; HALVES: 2 or 1.
#define BP_AVX2_TILE_UNIT(SRC, XP, CS, HALVES)                                                    \
    {                                                                                             \
        __m256i s16[4];                                                                           \
        for (int r = 0; r < 4; r++) s16[r] = _mm256_setzero_si256();                             \
        for (int h = 0; h < (HALVES); h++)                                                        \
            for (int k = 0; k < 4; k++) {                                                         \
                const __m256i xv = _mm256_loadu_si256((const __m256i *)((XP) + (CS) * k + 32 * h)); \
                for (int r = 0; r < 4; r++) {                                                     \
                    const __m256i b = _mm256_loadu_si256((const __m256i *)(SRC(r, h)));           \
                    const __m256i c = _mm256_and_si256(k ? _mm256_srli_epi16(b, 2 * k) : b, m3);  \
                    s16[r] = _mm256_add_epi16(s16[r], _mm256_maddubs_epi16(c, xv));               \
                }                                                                                 \
            }                                                                                     \
        for (int r = 0; r < 4; r++) acc[r] = _mm256_add_epi32(acc[r], _mm256_madd_epi16(s16[r], ones)); \
    }

/// A whole tile (rows o ..< o + 4) × one activation row (batch 1): each 32-byte activation
/// vector serves the tile's 4 rows, and the tile is read as one stream. The same int16 bound
/// as above: 8 vpmaddubsw lanes per group before widening.
TK_INLINE AVX2 void bp_i8_avx2_tile1(const tk_bitpacked_i8_args *a, size_t o, size_t t0) {
    bp_row row[4];
    for (int r = 0; r < 4; r++) row[r] = bp_row_at(a->weights, a->row_bytes, a->groups, a->rows, o + r);
    const size_t gs = row[0].stride;
    const int8_t *x = a->x + t0 * a->x_stride;
    const __m256i m3 = _mm256_set1_epi8(3), ones = _mm256_set1_epi16(1);
    __m256i acc[4];
    for (int r = 0; r < 4; r++) acc[r] = _mm256_setzero_si256();
    const size_t G = a->groups;
    for (size_t g = 0; g < G; g++) {
        for (int r = 0; r < 4; r++) _mm_prefetch((const char *)(row[r].full + gs * g + BP_PREFETCH_AVX2), _MM_HINT_T0);
#define BP_SRC_FULL(r, h) (row[r].full + gs * g + 32 * (h))
        BP_AVX2_TILE_UNIT(BP_SRC_FULL, x + 256 * g, 64, 2)
#undef BP_SRC_FULL
    }
    if (a->half) {
#define BP_SRC_HALF(r, h) (row[r].half)
        BP_AVX2_TILE_UNIT(BP_SRC_HALF, x + 256 * G, 32, 1)
#undef BP_SRC_HALF
    }
    for (int r = 0; r < 4; r++)
        a->y[t0 * a->y_stride + o + r] = (int32_t)((uint32_t)bp_hsum_epi32_avx2(acc[r]) - (uint32_t)a->x_sum[t0]);
}

/// Tile by tile: 4 activation rows per pass of a row (1 row at a time), remainders of 2 or 3 the
/// same way, a remainder of 1 with the 4-row kernel when the tile is whole.
void AVX2 tk_bitpacked_i8_avx2(const tk_bitpacked_i8_args *a) {
    const size_t n = a->batch, full = n / 4 * 4, rem = n - full;
    for (size_t o = a->row_begin; o < a->row_end; o += 4) {
        const size_t h = a->row_end - o < 4 ? a->row_end - o : 4;
        for (size_t r = 0; r < h; r++) {
            for (size_t t = 0; t < full; t += 4) bp_i8_avx2_block(a, o + r, t, 4);
            if (rem == 3) bp_i8_avx2_block(a, o + r, full, 3);
            if (rem == 2) bp_i8_avx2_block(a, o + r, full, 2);
            if (rem == 1 && h < 4) bp_i8_avx2_block(a, o + r, full, 1);
        }
        if (rem == 1 && h == 4) bp_i8_avx2_tile1(a, o, full);
    }
}

/// Float: the signed weights w = c − 1 are widened to 8 Int32 at a time, converted to Float
/// (exact) and multiplied by the activations with FMA; each converted vector serves T rows.
TK_INLINE AVX2 void bp_f32_avx2_block(const tk_bitpacked_f32_args *a, size_t o, size_t t0, const int T) {
    const bp_row row = bp_row_at(a->weights, a->row_bytes, a->groups, a->rows, o);
    const float *x[4];
    for (int t = 0; t < T; t++) x[t] = a->x + (t0 + t) * a->x_stride;
    const __m256i m3 = _mm256_set1_epi8(3), one = _mm256_set1_epi8(1);
    __m256 acc[4][2];
    for (int t = 0; t < T; t++) acc[t][0] = acc[t][1] = _mm256_setzero_ps();
    const size_t units = a->groups + a->half;
    for (size_t u = 0; u < units; u++) {
        const int full = u < a->groups;
        const size_t cs = full ? 64 : 32;
        for (int h = 0; h < 1 + full; h++) {
            const uint8_t *src = full ? row.full + row.stride * u + 32 * h : row.half;
            const __m256i b = _mm256_loadu_si256((const __m256i *)src);
            for (int k = 0; k < 4; k++) {
                const __m256i sw = _mm256_sub_epi8(_mm256_and_si256(_mm256_srli_epi16(b, 2 * k), m3), one);
                const __m128i lo = _mm256_castsi256_si128(sw), hi = _mm256_extracti128_si256(sw, 1);
                const __m128i parts[4] = {lo, _mm_unpackhi_epi64(lo, lo), hi, _mm_unpackhi_epi64(hi, hi)};
                for (int i = 0; i < 4; i++) {
                    const __m256 wf = _mm256_cvtepi32_ps(_mm256_cvtepi8_epi32(parts[i]));
                    for (int t = 0; t < T; t++) {
                        const float *xp = x[t] + 256 * u + 32 * h + cs * (size_t)k + 8 * i;
                        acc[t][i & 1] = _mm256_fmadd_ps(wf, _mm256_loadu_ps(xp), acc[t][i & 1]);
                    }
                }
            }
        }
    }
    for (int t = 0; t < T; t++)
        a->y[(t0 + t) * a->y_stride + o] = bp_hsum_ps_avx2(_mm256_add_ps(acc[t][0], acc[t][1])) * a->scale;
}

void AVX2 tk_bitpacked_f32_avx2(const tk_bitpacked_f32_args *a) {
    for (size_t o = a->row_begin; o < a->row_end; o++) {
        size_t t = 0;
        for (; t + 4 <= a->batch; t += 4) bp_f32_avx2_block(a, o, t, 4);
        switch (a->batch - t) {
        case 3: bp_f32_avx2_block(a, o, t, 3); break;
        case 2: bp_f32_avx2_block(a, o, t, 2); break;
        case 1: bp_f32_avx2_block(a, o, t, 1); break;
        default: break;
        }
    }
}

// ---------------------------------------------------------------------------------------
// AVX-512 + VNNI, Int8. Two unpackings of a 64-byte group vector b:
//
// "Scaled" (batch 1, the memory-bound case: fewest operations per weight byte): field k is
// unpacked with ONE operation, a mask: b & (3 << 2k) = 4^k · c_k (at most 2 · 64 = 128, a
// valid unsigned byte). vpdpbusd(acc, b & (3 << 2k), x) adds, per 32-bit lane, four products
// 4^k · c · x. Each field k has its own accumulator, so every lane of it is a multiple of 4^k;
// an arithmetic shift right by 2k is then exact, and the four are added.
// Bound: one vpdpbusd adds at most 4 · 2 · 64 · 128 = 2^16 in magnitude to a lane; the scaled
// accumulators are folded (shifted, added to 32-bit totals) every BP_FOLD_GROUPS = 4096 groups,
// so a lane never exceeds 4096 · 2^16 = 2^28 in magnitude before its shift.
//
// "Plain" (batch > 1, 4 rows × T activation rows; unpacking is amortized over T rows, and
// registers are short): c_k = (b >> 2k) & 3 with a 16-bit shift and a byte mask, one
// accumulator per (row, activation row). Only vpdpbusd and 32-bit additions follow, so the
// wrap-around argument above applies directly (and a lane grows by at most 4 · 4 · 2 · 128 =
// 2^12 per group anyway).
//
// vpdpbusd itself does not saturate (that is vpdpbusds) and computes its 4 products and their
// sum exactly, so there is no narrower accumulator anywhere.

#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))
#define BP_FOLD_GROUPS 4096
/// Software prefetch distance in bytes along a tile's stream (the hardware prefetchers alone
/// left the 4 MiB L3-resident 4096×4096 product ~20% slower; measured 1–8 KiB as equal).
#ifndef BP_PREFETCH
#define BP_PREFETCH 4096
#endif
/// Batch 1 also prefetches 16 KiB ahead into L2 (T2), one line per 512 bytes (every other
/// group; the L2 prefetchers fill in the rest): from DRAM one core's L1 miss buffers alone cannot
/// keep enough lines in flight, and the L2 stream prefetcher stops at each 4 KiB page.
/// Measured with `ternary bench --backends bitpacked --regime cache --regime dram` (4096×4096
/// and 2560×6912, 8 alternating pairs of runs against the build without it, medians of the
/// per-pair ratios): from DRAM 1.20–1.26× faster on one thread, 1.05–1.19× on two; in cache
/// 0.96–1.16×, within the noise. In a C driver: one T2 per line instead was as fast from DRAM
/// but ≈ 6% slower from L3 (the extra prefetches compete for fill buffers); T2 alone (no T0)
/// ≈ 10% slower from L3; NTA or no software prefetch 25–40% slower from DRAM; T0 alone at
/// 1–16 KiB all the same.
#ifndef BP_PREFETCH_FAR
#define BP_PREFETCH_FAR 16384
#endif

/// The 16-byte part i (0 ... 3) of v: the extract instruction needs a constant.
TK_INLINE VNNI __m128i bp_part(__m512i v, int i) {
    switch (i) {
    case 0: return _mm512_extracti32x4_epi32(v, 0);
    case 1: return _mm512_extracti32x4_epi32(v, 1);
    case 2: return _mm512_extracti32x4_epi32(v, 2);
    default: return _mm512_extracti32x4_epi32(v, 3);
    }
}

/// Scaled kernel: rows o ..< o + R with activation rows t0 ..< t0 + T, R · T ≤ 4 (16
/// accumulators). R = 4 only for a whole tile (o a multiple of 4, 4 rows in the tile).
TK_INLINE VNNI void bp_i8_vnni_scaled(const tk_bitpacked_i8_args *a, size_t o, size_t t0, const int R, const int T) {
    bp_row row[4];
    for (int r = 0; r < R; r++) row[r] = bp_row_at(a->weights, a->row_bytes, a->groups, a->rows, o + r);
    const size_t gs = row[0].stride;
    const int8_t *x[4];
    for (int t = 0; t < T; t++) x[t] = a->x + (t0 + t) * a->x_stride;
    const __m512i mask[4] = {_mm512_set1_epi8(0x03), _mm512_set1_epi8(0x0C), _mm512_set1_epi8(0x30),
                             _mm512_set1_epi8((char)0xC0)};
    __m512i total[4][4];
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++) total[r][t] = _mm512_setzero_si512();
    const size_t G = a->groups;
    size_t g = 0;
    // One pass per fold block; the last pass also takes the half group, if any.
    for (int last = 0; !last;) {
        const size_t end = G - g > BP_FOLD_GROUPS ? g + BP_FOLD_GROUPS : G;
        last = end == G;
        __m512i acc[4][4][4];
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++)
                for (int k = 0; k < 4; k++) acc[r][t][k] = _mm512_setzero_si512();
        for (; g < end; g++) {
            __m512i b[4];
            if (R == 4) {
                for (int r = 0; r < 4; r++) _mm_prefetch((const char *)(row[r].full + gs * g + BP_PREFETCH), _MM_HINT_T0);
                if (g & 1) _mm_prefetch((const char *)(row[0].full + gs * g + BP_PREFETCH_FAR), _MM_HINT_T2);
            }
            for (int r = 0; r < R; r++) b[r] = _mm512_loadu_si512((const void *)(row[r].full + gs * g));
            for (int k = 0; k < 4; k++) {
                __m512i c[4];
                for (int r = 0; r < R; r++) c[r] = _mm512_and_si512(b[r], mask[k]);
                for (int t = 0; t < T; t++) {
                    const __m512i xv = _mm512_loadu_si512((const void *)(x[t] + 256 * g + 64 * k));
                    for (int r = 0; r < R; r++) acc[r][t][k] = _mm512_dpbusd_epi32(acc[r][t][k], c[r], xv);
                }
            }
        }
        if (last && a->half) {
            // 32 bytes, fields 32 activations apart; the upper 32 code bytes are zero.
            __m512i b[4];
            for (int r = 0; r < R; r++) b[r] = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)row[r].half));
            for (int k = 0; k < 4; k++) {
                __m512i c[4];
                for (int r = 0; r < R; r++) c[r] = _mm512_and_si512(b[r], mask[k]);
                for (int t = 0; t < T; t++) {
                    const __m512i xv = _mm512_zextsi256_si512(
                        _mm256_loadu_si256((const __m256i *)(x[t] + 256 * G + 32 * k)));
                    for (int r = 0; r < R; r++) acc[r][t][k] = _mm512_dpbusd_epi32(acc[r][t][k], c[r], xv);
                }
            }
        }
        for (int r = 0; r < R; r++)
            for (int t = 0; t < T; t++) {
                __m512i s = _mm512_add_epi32(acc[r][t][0], _mm512_srai_epi32(acc[r][t][1], 2));
                s = _mm512_add_epi32(s, _mm512_srai_epi32(acc[r][t][2], 4));
                s = _mm512_add_epi32(s, _mm512_srai_epi32(acc[r][t][3], 6));
                total[r][t] = _mm512_add_epi32(total[r][t], s);
            }
    }
    for (int r = 0; r < R; r++)
        for (int t = 0; t < T; t++)
            a->y[(t0 + t) * a->y_stride + o + r] =
                (int32_t)((uint32_t)_mm512_reduce_add_epi32(total[r][t]) - (uint32_t)a->x_sum[t0 + t]);
}

/// Plain kernel: the whole tile of rows o ..< o + 4 with activation rows t0 ..< t0 + T
/// (T ≤ 4). Each group is unpacked once per row and used for T activation rows; each
/// activation vector is loaded once and used for 4 rows (so the batch's activations, which
/// live in L2 for large batches, are read once per tile rather than once per row).
TK_INLINE VNNI void bp_i8_vnni_plain(const tk_bitpacked_i8_args *a, size_t o, size_t t0, const int T) {
    bp_row row[4];
    for (int r = 0; r < 4; r++) row[r] = bp_row_at(a->weights, a->row_bytes, a->groups, a->rows, o + r);
    const size_t gs = row[0].stride;
    const int8_t *x[4];
    for (int t = 0; t < T; t++) x[t] = a->x + (t0 + t) * a->x_stride;
    const __m512i m3 = _mm512_set1_epi8(3);
    __m512i acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_si512();
    const size_t G = a->groups;
    for (size_t g = 0; g < G; g++) {
        __m512i b[4];
        for (int r = 0; r < 4; r++) _mm_prefetch((const char *)(row[r].full + gs * g + BP_PREFETCH), _MM_HINT_T0);
        for (int r = 0; r < 4; r++) b[r] = _mm512_loadu_si512((const void *)(row[r].full + gs * g));
        for (int k = 0; k < 4; k++) {
            __m512i xv[4];
            for (int t = 0; t < T; t++) xv[t] = _mm512_loadu_si512((const void *)(x[t] + 256 * g + 64 * k));
            for (int r = 0; r < 4; r++) {
                const __m512i c = _mm512_and_si512(k ? _mm512_srli_epi16(b[r], 2 * k) : b[r], m3);
                for (int t = 0; t < T; t++) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], c, xv[t]);
            }
        }
    }
    if (a->half) {
        __m512i b[4];
        for (int r = 0; r < 4; r++) b[r] = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)row[r].half));
        for (int k = 0; k < 4; k++) {
            __m512i xv[4];
            for (int t = 0; t < T; t++)
                xv[t] = _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(x[t] + 256 * G + 32 * k)));
            for (int r = 0; r < 4; r++) {
                const __m512i c = _mm512_and_si512(k ? _mm512_srli_epi16(b[r], 2 * k) : b[r], m3);
                for (int t = 0; t < T; t++) acc[r][t] = _mm512_dpbusd_epi32(acc[r][t], c, xv[t]);
            }
        }
    }
    if (T == 4) {
        // All 16 sums at once: a transposing add tree (45 instructions instead of 16 separate
        // reductions); block t of the result holds rows o ..< o + 4 of activation row t.
        __m512i v[8], w[4];
        for (int i = 0; i < 8; i++) {
            const __m512i p = acc[(2 * i) & 3][(2 * i) >> 2], q = acc[(2 * i + 1) & 3][(2 * i + 1) >> 2];
            v[i] = _mm512_add_epi32(_mm512_unpacklo_epi32(p, q), _mm512_unpackhi_epi32(p, q));
        }
        for (int j = 0; j < 4; j++)
            w[j] = _mm512_add_epi32(_mm512_unpacklo_epi64(v[2 * j], v[2 * j + 1]),
                                    _mm512_unpackhi_epi64(v[2 * j], v[2 * j + 1]));
        const __m512i x0 = _mm512_add_epi32(_mm512_shuffle_i32x4(w[0], w[1], 0x88), _mm512_shuffle_i32x4(w[0], w[1], 0xDD));
        const __m512i x1 = _mm512_add_epi32(_mm512_shuffle_i32x4(w[2], w[3], 0x88), _mm512_shuffle_i32x4(w[2], w[3], 0xDD));
        const __m512i sums = _mm512_add_epi32(_mm512_shuffle_i32x4(x0, x1, 0x88), _mm512_shuffle_i32x4(x0, x1, 0xDD));
        // Σx of activation row t subtracted from block t (a vpermd spreads the 4 sums; 32-bit
        // wrapping subtraction, as above), then one 16-byte store per activation row: 7
        // instructions instead of 16 extracts, 16 scalar subtractions and 16 stores (≈ 2.5 %
        // faster over the 2B4T shapes at batch 16–128 in a C driver).
        const __m512i spread = _mm512_set_epi32(3, 3, 3, 3, 2, 2, 2, 2, 1, 1, 1, 1, 0, 0, 0, 0);
        const __m512i xs = _mm512_permutexvar_epi32(
            spread, _mm512_castsi128_si512(_mm_loadu_si128((const __m128i *)(a->x_sum + t0))));
        const __m512i y = _mm512_sub_epi32(sums, xs);
        int32_t *yt = a->y + t0 * a->y_stride + o;
        _mm_storeu_si128((__m128i *)yt, _mm512_castsi512_si128(y));
        _mm_storeu_si128((__m128i *)(yt + a->y_stride), _mm512_extracti32x4_epi32(y, 1));
        _mm_storeu_si128((__m128i *)(yt + 2 * a->y_stride), _mm512_extracti32x4_epi32(y, 2));
        _mm_storeu_si128((__m128i *)(yt + 3 * a->y_stride), _mm512_extracti32x4_epi32(y, 3));
        return;
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++)
            a->y[(t0 + t) * a->y_stride + o + r] =
                (int32_t)((uint32_t)_mm512_reduce_add_epi32(acc[r][t]) - (uint32_t)a->x_sum[t0 + t]);
}

/// Weight bytes per block of whole tiles in the batch loop below (see there).
#define BP_TILE_BLOCK_BYTES (128 << 10)

/// Whole tiles, in blocks of up to BP_TILE_BLOCK_BYTES of weights (at least one tile): for each
/// 4 activation rows, every tile of the block with the plain kernel, so those activation rows
/// (4 · in bytes: 10 KiB at in = 2560, 27 KiB at 6912) are read from L2 once per block and stay
/// in L1 for its other tiles, while the block's weights stay in L2 (they are a quarter of the
/// bytes per multiply-add). Tile by tile instead (all activation rows through one L1-resident
/// tile, the first version) re-read all activations from L2 for every tile: at batch 16–128 on
/// the 2B4T shapes it was ≈ 5 % slower in a C driver, one thread (blocks of 64–256 KiB measured
/// within 1.5 % of each other, 32 KiB ≈ 2–3 % slower). A single remaining activation row: the
/// scaled kernel. The last tile when it has fewer than 4 rows: one row at a time, scaled, 4
/// activation rows per pass.
void VNNI tk_bitpacked_i8_avx512vnni(const tk_bitpacked_i8_args *a) {
    const size_t n = a->batch;
    const size_t full = n / 4 * 4, rem = n - full;
    const size_t tiles = BP_TILE_BLOCK_BYTES / (4 * a->row_bytes);
    const size_t block_rows = 4 * (tiles > 1 ? tiles : 1);
    const size_t whole_end = a->row_begin + (a->row_end - a->row_begin) / 4 * 4;
    for (size_t ob = a->row_begin; ob < whole_end; ob += block_rows) {
        const size_t oe = whole_end - ob < block_rows ? whole_end : ob + block_rows;
        for (size_t t = 0; t < full; t += 4)
            for (size_t o = ob; o < oe; o += 4) bp_i8_vnni_plain(a, o, t, 4);
        for (size_t o = ob; o < oe; o += 4) {
            switch (rem) {
            case 1: bp_i8_vnni_scaled(a, o, full, 4, 1); break;
            case 2: bp_i8_vnni_plain(a, o, full, 2); break;
            case 3: bp_i8_vnni_plain(a, o, full, 3); break;
            default: break;
            }
        }
    }
    for (size_t o = whole_end; o < a->row_end; o++) {
        for (size_t t = 0; t < full; t += 4) bp_i8_vnni_scaled(a, o, t, 1, 4);
        switch (rem) {
        case 1: bp_i8_vnni_scaled(a, o, full, 1, 1); break;
        case 2: bp_i8_vnni_scaled(a, o, full, 1, 2); break;
        case 3: bp_i8_vnni_scaled(a, o, full, 1, 3); break;
        default: break;
        }
    }
}

/// Float: w = c − 1 as signed bytes (shift, mask, subtract), widened 16 at a time to Int32,
/// converted to Float (exact) and used by FMA for T activation rows.
TK_INLINE VNNI void bp_f32_vnni_block(const tk_bitpacked_f32_args *a, size_t o, size_t t0, const int T) {
    const bp_row row = bp_row_at(a->weights, a->row_bytes, a->groups, a->rows, o);
    const float *x[4];
    for (int t = 0; t < T; t++) x[t] = a->x + (t0 + t) * a->x_stride;
    const __m512i m3 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    __m512 acc[4][4];
    for (int t = 0; t < T; t++)
        for (int i = 0; i < 4; i++) acc[t][i] = _mm512_setzero_ps();
    const size_t units = a->groups + a->half;
    for (size_t u = 0; u < units; u++) {
        const int full = u < a->groups;
        const size_t cs = full ? 64 : 32;
        const int parts = full ? 4 : 2;  // 16-weight parts per field
        const __m512i b = full ? _mm512_loadu_si512((const void *)(row.full + row.stride * u))
                               : _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)row.half));
        for (int k = 0; k < 4; k++) {
            const __m512i sw = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(b, 2 * k), m3), one);
            for (int i = 0; i < parts; i++) {
                const __m512 wf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bp_part(sw, i)));
                for (int t = 0; t < T; t++) {
                    const float *xp = x[t] + 256 * u + cs * (size_t)k + 16 * i;
                    acc[t][i] = _mm512_fmadd_ps(wf, _mm512_loadu_ps(xp), acc[t][i]);
                }
            }
        }
    }
    for (int t = 0; t < T; t++) {
        const __m512 s = _mm512_add_ps(_mm512_add_ps(acc[t][0], acc[t][1]), _mm512_add_ps(acc[t][2], acc[t][3]));
        a->y[(t0 + t) * a->y_stride + o] = _mm512_reduce_add_ps(s) * a->scale;
    }
}

/// One unit of a Float tile product (a full group: 4 parts of 16 weights per field, fields 64
/// activations apart; a half group: 2 parts, fields 32 apart). A macro rather than a function:
/// clang kept an accumulator array passed to an inlined helper in memory (a store after every
/// FMA). `SRC(r)` is row r's unit bytes, `XP(t)` activation row t at the unit's first element.
/// The group bytes are re-read from L1 for each field, and the activation vectors for each row
/// (the same T · 64 bytes, L1 hits), which leaves the registers to the 16 accumulators.
#define BP_F32_TILE_UNIT(SRC, XP, FULL)                                                                  \
    for (int k = 0; k < 4; k++) {                                                                        \
        __m512i sw[4];                                                                                   \
        for (int r = 0; r < 4; r++) {                                                                    \
            const __m512i b = (FULL) ? _mm512_loadu_si512((const void *)(SRC(r)))                        \
                                     : _mm512_zextsi256_si512(_mm256_loadu_si256((const __m256i *)(SRC(r)))); \
            sw[r] = _mm512_sub_epi8(_mm512_and_si512(_mm512_srli_epi16(b, 2 * k), m3), one);             \
        }                                                                                                \
        for (int i = 0; i < ((FULL) ? 4 : 2); i++)                                                       \
            for (int r = 0; r < 4; r++) {                                                                \
                const __m512 wf = _mm512_cvtepi32_ps(_mm512_cvtepi8_epi32(bp_part(sw[r], i)));           \
                for (int t = 0; t < T; t++)                                                              \
                    acc[r][t] = _mm512_fmadd_ps(wf, _mm512_loadu_ps(XP(t) + ((FULL) ? 64 : 32) * k + 16 * i), acc[r][t]); \
            }                                                                                            \
    }

/// Float, a whole tile (rows o ..< o + 4) × T activation rows: each 16-weight Float vector
/// serves T activation rows and each activation vector serves 4 rows (16 accumulators), so a
/// large batch's activations (which live in L2) are read from L2 once per tile, not once per row.
TK_INLINE VNNI void bp_f32_vnni_tile(const tk_bitpacked_f32_args *a, size_t o, size_t t0, const int T) {
    bp_row row[4];
    for (int r = 0; r < 4; r++) row[r] = bp_row_at(a->weights, a->row_bytes, a->groups, a->rows, o + r);
    const size_t gs = row[0].stride;
    const float *x[4];
    for (int t = 0; t < T; t++) x[t] = a->x + (t0 + t) * a->x_stride;
    const __m512i m3 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    __m512 acc[4][4];
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++) acc[r][t] = _mm512_setzero_ps();
    const size_t G = a->groups;
    for (size_t g = 0; g < G; g++) {
        for (int r = 0; r < 4; r++) _mm_prefetch((const char *)(row[r].full + gs * g + BP_PREFETCH), _MM_HINT_T0);
#define BP_SRC_FULL(r) (row[r].full + gs * g)
#define BP_X_FULL(t) (x[t] + 256 * g)
        BP_F32_TILE_UNIT(BP_SRC_FULL, BP_X_FULL, 1)
#undef BP_SRC_FULL
#undef BP_X_FULL
    }
    if (a->half) {
#define BP_SRC_HALF(r) (row[r].half)
#define BP_X_HALF(t) (x[t] + 256 * G)
        BP_F32_TILE_UNIT(BP_SRC_HALF, BP_X_HALF, 0)
#undef BP_SRC_HALF
#undef BP_X_HALF
    }
    for (int r = 0; r < 4; r++)
        for (int t = 0; t < T; t++)
            a->y[(t0 + t) * a->y_stride + o + r] = _mm512_reduce_add_ps(acc[r][t]) * a->scale;
}

void VNNI tk_bitpacked_f32_avx512vnni(const tk_bitpacked_f32_args *a) {
    const size_t n = a->batch;
    for (size_t o = a->row_begin; o < a->row_end; o += 4) {
        const size_t h = a->row_end - o < 4 ? a->row_end - o : 4;
        if (h == 4) {
            size_t t = 0;
            for (; t + 4 <= n; t += 4) bp_f32_vnni_tile(a, o, t, 4);
            switch (n - t) {
            case 3: bp_f32_vnni_tile(a, o, t, 3); break;
            case 2: bp_f32_vnni_tile(a, o, t, 2); break;
            case 1: bp_f32_vnni_tile(a, o, t, 1); break;
            default: break;
            }
            continue;
        }
        for (size_t r = o; r < o + h; r++) {
            size_t t = 0;
            for (; t + 4 <= n; t += 4) bp_f32_vnni_block(a, r, t, 4);
            switch (n - t) {
            case 3: bp_f32_vnni_block(a, r, t, 3); break;
            case 2: bp_f32_vnni_block(a, r, t, 2); break;
            case 1: bp_f32_vnni_block(a, r, t, 1); break;
            default: break;
            }
        }
    }
}

#else  // not x86-64: the SIMD entry points fall back to the portable code (Swift never picks them).

void tk_bitpacked_i8_avx2(const tk_bitpacked_i8_args *a) { tk_bitpacked_i8_portable(a); }
void tk_bitpacked_f32_avx2(const tk_bitpacked_f32_args *a) { tk_bitpacked_f32_portable(a); }
void tk_bitpacked_i8_avx512vnni(const tk_bitpacked_i8_args *a) { tk_bitpacked_i8_portable(a); }
void tk_bitpacked_f32_avx512vnni(const tk_bitpacked_f32_args *a) { tk_bitpacked_f32_portable(a); }

#endif
