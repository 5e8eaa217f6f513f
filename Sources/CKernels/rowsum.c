// Sums of Int8 rows (see include/rowsum.h).
//
// The SIMD variants flip the sign bit (x ^ 0x80 = x + 128 as an unsigned byte) and let vpsadbw
// add 8 unsigned bytes into each 64-bit lane against zero: one instruction per 32 or 64 bytes,
// where the scalar loop sign-extends and adds byte by byte (≈ 59 µs for a 128 × 6912 batch,
// serial before every product's fork-join). The 64-bit lanes cannot overflow (n · 255 < 2^63),
// so Σ x = Σ (x + 128) − 128 · n exactly, and its low 32 bits are the portable loop's wrapping
// sum.

#include "rowsum.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#endif

int32_t tk_sum_i8_portable(const int8_t *x, size_t n) {
    uint32_t s = 0;
    for (size_t i = 0; i < n; i++) s += (uint32_t)(int32_t)x[i];
    return (int32_t)s;
}

#if defined(__x86_64__) || defined(__i386__)

__attribute__((target("avx2"))) int32_t tk_sum_i8_avx2(const int8_t *x, size_t n) {
    const __m256i flip = _mm256_set1_epi8((char)0x80), zero = _mm256_setzero_si256();
    __m256i acc0 = zero, acc1 = zero;
    size_t i = 0;
    for (; i + 64 <= n; i += 64) {
        const __m256i a = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + i)), flip);
        const __m256i b = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + i + 32)), flip);
        acc0 = _mm256_add_epi64(acc0, _mm256_sad_epu8(a, zero));
        acc1 = _mm256_add_epi64(acc1, _mm256_sad_epu8(b, zero));
    }
    for (; i + 32 <= n; i += 32) {
        const __m256i a = _mm256_xor_si256(_mm256_loadu_si256((const __m256i *)(x + i)), flip);
        acc0 = _mm256_add_epi64(acc0, _mm256_sad_epu8(a, zero));
    }
    const __m256i acc = _mm256_add_epi64(acc0, acc1);
    const __m128i h = _mm_add_epi64(_mm256_castsi256_si128(acc), _mm256_extracti128_si256(acc, 1));
    uint64_t s = (uint64_t)_mm_cvtsi128_si64(h) + (uint64_t)_mm_extract_epi64(h, 1) - 128 * (uint64_t)i;
    for (; i < n; i++) s += (uint64_t)(int64_t)x[i];
    return (int32_t)(uint32_t)s;
}

__attribute__((target("avx512f,avx512bw"))) int32_t tk_sum_i8_avx512(const int8_t *x, size_t n) {
    const __m512i flip = _mm512_set1_epi8((char)0x80), zero = _mm512_setzero_si512();
    __m512i acc0 = zero, acc1 = zero;
    size_t i = 0;
    for (; i + 128 <= n; i += 128) {
        const __m512i a = _mm512_xor_si512(_mm512_loadu_si512((const void *)(x + i)), flip);
        const __m512i b = _mm512_xor_si512(_mm512_loadu_si512((const void *)(x + i + 64)), flip);
        acc0 = _mm512_add_epi64(acc0, _mm512_sad_epu8(a, zero));
        acc1 = _mm512_add_epi64(acc1, _mm512_sad_epu8(b, zero));
    }
    if (i < n) {
        // The last 1–127 bytes as up to two masked loads; masked-off bytes load as 0, which
        // the flip turns into 128 and the correction below counts as padding.
        const size_t left = n - i;
        const __mmask64 m0 = left >= 64 ? ~(__mmask64)0 : (((__mmask64)1 << left) - 1);
        const __mmask64 m1 = left > 64 ? (left >= 128 ? ~(__mmask64)0 : (((__mmask64)1 << (left - 64)) - 1)) : 0;
        const __m512i a = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m0, x + i), flip);
        const __m512i b = _mm512_xor_si512(_mm512_maskz_loadu_epi8(m1, x + i + 64), flip);
        acc0 = _mm512_add_epi64(acc0, _mm512_sad_epu8(a, zero));
        acc1 = _mm512_add_epi64(acc1, _mm512_sad_epu8(b, zero));
        i += 128;  // 128 flipped bytes were added in this step, real or padding
    }
    const uint64_t s = (uint64_t)_mm512_reduce_add_epi64(_mm512_add_epi64(acc0, acc1)) - 128 * (uint64_t)i;
    return (int32_t)(uint32_t)s;
}

#else

int32_t tk_sum_i8_avx2(const int8_t *x, size_t n) { return tk_sum_i8_portable(x, n); }
int32_t tk_sum_i8_avx512(const int8_t *x, size_t n) { return tk_sum_i8_portable(x, n); }

#endif
