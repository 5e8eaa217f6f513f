// Packing activations into the VNNI layout of the AMX B tiles (bitpacked_amx.c). Private to
// CKernels; included by that file.
//
// One tile of 16 activation rows becomes, for each 64-input chunk c, 1024 bytes at out + 1024 c:
// byte 64 k + 4 n + i = x[n][64 c + 4 k + i] (k, n < 16, i < 4). Rows ≥ `rows` and inputs
// ≥ `in` are stored as 0; nothing past row n's `in` bytes is read. In registers that is a
// 16 × 16 transpose of 32-bit lanes per chunk: 16 masked row loads, 64 shuffles, 16 stores.
#ifndef CKERNELS_BITPACKED_PACK_H
#define CKERNELS_BITPACKED_PACK_H

#include <stddef.h>
#include <stdint.h>

#if defined(__x86_64__)
#include <immintrin.h>

#define BP_PACK_TARGET __attribute__((target("avx512f,avx512bw,avx512vnni")))

/// A 4 × 4 transpose of 128-bit lanes: o_L = (lane L of a, b, c, d) for L = 0 ... 3.
static inline __attribute__((always_inline)) BP_PACK_TARGET void bp_pack_lanes(
    __m512i a, __m512i b, __m512i c, __m512i d, __m512i *o0, __m512i *o1, __m512i *o2, __m512i *o3)
{
    const __m512i v0 = _mm512_shuffle_i32x4(a, b, 0x44), v1 = _mm512_shuffle_i32x4(a, b, 0xEE);
    const __m512i v2 = _mm512_shuffle_i32x4(c, d, 0x44), v3 = _mm512_shuffle_i32x4(c, d, 0xEE);
    *o0 = _mm512_shuffle_i32x4(v0, v2, 0x88);
    *o1 = _mm512_shuffle_i32x4(v0, v2, 0xDD);
    *o2 = _mm512_shuffle_i32x4(v1, v3, 0x88);
    *o3 = _mm512_shuffle_i32x4(v1, v3, 0xDD);
}

/// Packs one tile (see above).
static inline __attribute__((always_inline)) BP_PACK_TARGET void bp_pack_tile16(
    const int8_t *x, size_t x_stride, size_t rows, size_t in, size_t padded_in, uint8_t *out)
{
    for (size_t c = 0; 64 * c < padded_in; c++) {
        const size_t left = in > 64 * c ? in - 64 * c : 0;
        const __mmask64 m = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
        __m512i r[16];
        for (size_t n = 0; n < 16; n++)
            r[n] = n < rows ? _mm512_maskz_loadu_epi8(m, x + n * x_stride + 64 * c) : _mm512_setzero_si512();
        // Pairs of rows interleaved by 32-bit lanes, then by 64-bit lanes: u[4q + j] holds, in each
        // 128-bit lane L, column 4L + j of rows 4q ..< 4q + 4.
        __m512i u[16];
        for (size_t q = 0; q < 4; q++) {
            const __m512i t0 = _mm512_unpacklo_epi32(r[4 * q], r[4 * q + 1]), t1 = _mm512_unpackhi_epi32(r[4 * q], r[4 * q + 1]);
            const __m512i t2 = _mm512_unpacklo_epi32(r[4 * q + 2], r[4 * q + 3]), t3 = _mm512_unpackhi_epi32(r[4 * q + 2], r[4 * q + 3]);
            u[4 * q] = _mm512_unpacklo_epi64(t0, t2);
            u[4 * q + 1] = _mm512_unpackhi_epi64(t0, t2);
            u[4 * q + 2] = _mm512_unpacklo_epi64(t1, t3);
            u[4 * q + 3] = _mm512_unpackhi_epi64(t1, t3);
        }
        uint8_t *o = out + 1024 * c;
        for (size_t j = 0; j < 4; j++) {
            __m512i k0, k1, k2, k3;  // output rows j, 4 + j, 8 + j, 12 + j
            bp_pack_lanes(u[j], u[4 + j], u[8 + j], u[12 + j], &k0, &k1, &k2, &k3);
            _mm512_storeu_si512((void *)(o + 64 * j), k0);
            _mm512_storeu_si512((void *)(o + 64 * (4 + j)), k1);
            _mm512_storeu_si512((void *)(o + 64 * (8 + j)), k2);
            _mm512_storeu_si512((void *)(o + 64 * (12 + j)), k3);
        }
    }
}

#endif
#endif
