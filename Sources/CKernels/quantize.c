// Per-row absmax Int8 quantization of activations (see include/quantize.h).
#include "quantize.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TK_X86 1
#endif

// ---------------------------------------------------------------- per-row Int8 quantization

#include <math.h>
#include <string.h>

static float tk_finish_scale(float amax) { return 127.0f / (amax > 1e-5f ? amax : 1e-5f); }

float tk_quantize_row_portable(const float *x, int64_t n, int8_t *q) {
    float amax = 0;
    int finite = 1;
    for (int64_t i = 0; i < n; i++) {
        float a = fabsf(x[i]);
        if (!(a <= 3.4028234663852886e38f)) finite = 0;
        if (a > amax) amax = a;
    }
    if (!finite) { memset(q, 0, (size_t)n); return NAN; }
    float s = tk_finish_scale(amax);
    for (int64_t i = 0; i < n; i++) {
        float v = x[i] * s;
        v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
        q[i] = (int8_t)(int32_t)nearbyintf(v);
    }
    return s;
}

#ifdef TK_X86
__attribute__((target("avx2,fma")))
float tk_quantize_row_avx2(const float *x, int64_t n, int8_t *q) {
    const __m256 signmask = _mm256_set1_ps(-0.0f), inf = _mm256_set1_ps(INFINITY);
    __m256 vmax = _mm256_setzero_ps(), bad = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        __m256 a = _mm256_andnot_ps(signmask, _mm256_loadu_ps(x + i));
        bad = _mm256_or_ps(bad, _mm256_cmp_ps(a, inf, _CMP_NLT_UQ));   // NaN or ∞
        vmax = _mm256_max_ps(vmax, a);
    }
    __m128 m = _mm_max_ps(_mm256_castps256_ps128(vmax), _mm256_extractf128_ps(vmax, 1));
    m = _mm_max_ps(m, _mm_movehl_ps(m, m));
    m = _mm_max_ss(m, _mm_movehdup_ps(m));
    float amax = _mm_cvtss_f32(m);
    int finite = _mm256_movemask_ps(bad) == 0;
    for (; i < n; i++) {
        float a = fabsf(x[i]);
        if (!(a < INFINITY)) finite = 0;
        if (a > amax) amax = a;
    }
    if (!finite) { memset(q, 0, (size_t)n); return NAN; }
    float s = tk_finish_scale(amax);
    const __m256 vs = _mm256_set1_ps(s), lo = _mm256_set1_ps(-128.0f), hi = _mm256_set1_ps(127.0f);
    for (i = 0; i + 8 <= n; i += 8) {
        __m256 v = _mm256_min_ps(_mm256_max_ps(_mm256_mul_ps(_mm256_loadu_ps(x + i), vs), lo), hi);
        __m256i r = _mm256_cvtps_epi32(v);                       // round half to even
        __m128i w = _mm_packs_epi32(_mm256_castsi256_si128(r), _mm256_extracti128_si256(r, 1));
        __m128i b = _mm_packs_epi16(w, w);
        _mm_storel_epi64((__m128i *)(q + i), b);
    }
    for (; i < n; i++) {
        float v = x[i] * s;
        v = v < -128.0f ? -128.0f : (v > 127.0f ? 127.0f : v);
        q[i] = (int8_t)(int32_t)nearbyintf(v);
    }
    return s;
}

__attribute__((target("avx512f,avx512bw")))
float tk_quantize_row_avx512(const float *x, int64_t n, int8_t *q) {
    const __m512 inf = _mm512_set1_ps(INFINITY);
    __m512 vmax = _mm512_setzero_ps();
    __mmask16 bad = 0;
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        __m512 a = _mm512_abs_ps(_mm512_loadu_ps(x + i));
        bad |= _mm512_cmp_ps_mask(a, inf, _CMP_NLT_UQ);
        vmax = _mm512_max_ps(vmax, a);
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 a = _mm512_abs_ps(_mm512_maskz_loadu_ps(k, x + i));
        bad |= _mm512_mask_cmp_ps_mask(k, a, inf, _CMP_NLT_UQ);
        vmax = _mm512_max_ps(vmax, a);
    }
    if (bad) { memset(q, 0, (size_t)n); return NAN; }
    float s = tk_finish_scale(_mm512_reduce_max_ps(vmax));
    const __m512 vs = _mm512_set1_ps(s), lo = _mm512_set1_ps(-128.0f), hi = _mm512_set1_ps(127.0f);
    for (i = 0; i + 16 <= n; i += 16) {
        __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_loadu_ps(x + i), vs), lo), hi);
        _mm_storeu_si128((__m128i *)(q + i), _mm512_cvtsepi32_epi8(_mm512_cvtps_epi32(v)));
    }
    if (i < n) {
        __mmask16 k = (__mmask16)((1u << (n - i)) - 1);
        __m512 v = _mm512_min_ps(_mm512_max_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(k, x + i), vs), lo), hi);
        _mm512_mask_cvtsepi32_storeu_epi8(q + i, k, _mm512_cvtps_epi32(v));
    }
    return s;
}
#else
float tk_quantize_row_avx2(const float *x, int64_t n, int8_t *q) { return tk_quantize_row_portable(x, n, q); }
float tk_quantize_row_avx512(const float *x, int64_t n, int8_t *q) { return tk_quantize_row_portable(x, n, q); }
#endif
