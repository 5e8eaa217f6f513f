// Per-row element-wise loops of the layers (see include/elementwise.h). Only the innermost
// loops live here; rows, threads and buffers are Swift's.
#include "elementwise.h"
#include "quantize.h"

#include <math.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TK_X86 1
#endif

// ---------------------------------------------------------------- portable

void tk_dequantize_row_portable(const int32_t *acc, int64_t n, float factor, float *y) {
    for (int64_t i = 0; i < n; i++) y[i] = (float)acc[i] * factor;
}

/// 1 / sqrt(ss / n + epsilon), the formula of the Swift RMSNorm it replaces.
static inline float tk_rms_inverse(float ss, int64_t n, float epsilon) {
    return 1.0f / sqrtf(ss / (float)n + epsilon);
}

void tk_rmsnorm_row_portable(const float *x, const float *gamma, int64_t n, float epsilon, float *y) {
    float s[8] = {0, 0, 0, 0, 0, 0, 0, 0};
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        for (int j = 0; j < 8; j++) s[j] += x[i + j] * x[i + j];
    float ss = ((s[0] + s[4]) + (s[1] + s[5])) + ((s[2] + s[6]) + (s[3] + s[7]));
    for (; i < n; i++) ss += x[i] * x[i];
    const float inv = tk_rms_inverse(ss, n, epsilon);
    for (int64_t k = 0; k < n; k++) y[k] = (x[k] * inv) * gamma[k];
}

void tk_relu2_gate_portable(float *g, const float *u, int64_t n) {
    for (int64_t i = 0; i < n; i++) {
        const float r = 0.0f > g[i] ? 0.0f : g[i];  // NaN stays NaN, as Swift's max(g, 0)
        g[i] = (r * r) * u[i];
    }
}

void tk_relu2_gate_dequantize_portable(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu, float *out) {
    for (int64_t i = 0; i < n; i++) {
        const float g = (float)accg[i] * fg, u = (float)accu[i] * fu;
        const float r = 0.0f > g ? 0.0f : g;
        out[i] = (r * r) * u;
    }
}

#ifdef TK_X86
// ---------------------------------------------------------------- AVX2

#define TK_AVX2 __attribute__((target("avx2,fma")))

TK_AVX2 void tk_dequantize_row_avx2(const int32_t *acc, int64_t n, float factor, float *y) {
    const __m256 f = _mm256_set1_ps(factor);
    int64_t i = 0;
    for (; i + 8 <= n; i += 8)
        _mm256_storeu_ps(y + i, _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(acc + i))), f));
    for (; i < n; i++) y[i] = (float)acc[i] * factor;
}

TK_AVX2 void tk_rmsnorm_row_avx2(const float *x, const float *gamma, int64_t n, float epsilon, float *y) {
    __m256 s0 = _mm256_setzero_ps(), s1 = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) {
        const __m256 a = _mm256_loadu_ps(x + i), b = _mm256_loadu_ps(x + i + 8);
        s0 = _mm256_fmadd_ps(a, a, s0);
        s1 = _mm256_fmadd_ps(b, b, s1);
    }
    if (i + 8 <= n) {
        const __m256 a = _mm256_loadu_ps(x + i);
        s0 = _mm256_fmadd_ps(a, a, s0);
        i += 8;
    }
    __m256 s = _mm256_add_ps(s0, s1);
    __m128 h = _mm_add_ps(_mm256_castps256_ps128(s), _mm256_extractf128_ps(s, 1));
    h = _mm_add_ps(h, _mm_movehl_ps(h, h));
    h = _mm_add_ss(h, _mm_movehdup_ps(h));
    float ss = _mm_cvtss_f32(h);
    for (; i < n; i++) ss += x[i] * x[i];
    const __m256 inv = _mm256_set1_ps(tk_rms_inverse(ss, n, epsilon));
    int64_t k = 0;
    for (; k + 8 <= n; k += 8)
        _mm256_storeu_ps(y + k, _mm256_mul_ps(_mm256_mul_ps(_mm256_loadu_ps(x + k), inv), _mm256_loadu_ps(gamma + k)));
    const float invs = _mm256_cvtss_f32(inv);
    for (; k < n; k++) y[k] = (x[k] * invs) * gamma[k];
}

TK_AVX2 void tk_relu2_gate_avx2(float *g, const float *u, int64_t n) {
    const __m256 zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        // max_ps(0, g) = 0 > g ? 0 : g: NaN (unordered) gives g, as the scalar formula.
        const __m256 r = _mm256_max_ps(zero, _mm256_loadu_ps(g + i));
        _mm256_storeu_ps(g + i, _mm256_mul_ps(_mm256_mul_ps(r, r), _mm256_loadu_ps(u + i)));
    }
    for (; i < n; i++) {
        const float r = 0.0f > g[i] ? 0.0f : g[i];
        g[i] = (r * r) * u[i];
    }
}

TK_AVX2 void tk_relu2_gate_dequantize_avx2(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu, float *out) {
    const __m256 vg = _mm256_set1_ps(fg), vu = _mm256_set1_ps(fu), zero = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const __m256 g = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(accg + i))), vg);
        const __m256 u = _mm256_mul_ps(_mm256_cvtepi32_ps(_mm256_loadu_si256((const __m256i *)(accu + i))), vu);
        const __m256 r = _mm256_max_ps(zero, g);
        _mm256_storeu_ps(out + i, _mm256_mul_ps(_mm256_mul_ps(r, r), u));
    }
    for (; i < n; i++) {
        const float g = (float)accg[i] * fg, u = (float)accu[i] * fu;
        const float r = 0.0f > g ? 0.0f : g;
        out[i] = (r * r) * u;
    }
}

// ---------------------------------------------------------------- AVX-512

#define TK_AVX512 __attribute__((target("avx512f")))

static inline TK_AVX512 __mmask16 tk_tail_mask(int64_t left) { return (__mmask16)((1u << left) - 1); }

TK_AVX512 void tk_dequantize_row_avx512(const int32_t *acc, int64_t n, float factor, float *y) {
    const __m512 f = _mm512_set1_ps(factor);
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        _mm512_storeu_ps(y + i, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(acc + i)), f));
        _mm512_storeu_ps(y + i + 16, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_loadu_si512(acc + i + 16)), f));
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tk_tail_mask(n - i);
        _mm512_mask_storeu_ps(y + i, m, _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, acc + i)), f));
    }
}

TK_AVX512 void tk_rmsnorm_row_avx512(const float *x, const float *gamma, int64_t n, float epsilon, float *y) {
    __m512 s0 = _mm512_setzero_ps(), s1 = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 32 <= n; i += 32) {
        const __m512 a = _mm512_loadu_ps(x + i), b = _mm512_loadu_ps(x + i + 16);
        s0 = _mm512_fmadd_ps(a, a, s0);
        s1 = _mm512_fmadd_ps(b, b, s1);
    }
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tk_tail_mask(n - i);
        const __m512 a = _mm512_maskz_loadu_ps(m, x + i);
        s0 = _mm512_fmadd_ps(a, a, s0);
    }
    const float ss = _mm512_reduce_add_ps(_mm512_add_ps(s0, s1));
    const __m512 inv = _mm512_set1_ps(tk_rms_inverse(ss, n, epsilon));
    int64_t k = 0;
    for (; k + 16 <= n; k += 16)
        _mm512_storeu_ps(y + k, _mm512_mul_ps(_mm512_mul_ps(_mm512_loadu_ps(x + k), inv), _mm512_loadu_ps(gamma + k)));
    if (k < n) {
        const __mmask16 m = tk_tail_mask(n - k);
        _mm512_mask_storeu_ps(y + k, m,
                              _mm512_mul_ps(_mm512_mul_ps(_mm512_maskz_loadu_ps(m, x + k), inv), _mm512_maskz_loadu_ps(m, gamma + k)));
    }
}

TK_AVX512 void tk_relu2_gate_avx512(float *g, const float *u, int64_t n) {
    const __m512 zero = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tk_tail_mask(n - i);
        const __m512 r = _mm512_max_ps(zero, _mm512_maskz_loadu_ps(m, g + i));
        _mm512_mask_storeu_ps(g + i, m, _mm512_mul_ps(_mm512_mul_ps(r, r), _mm512_maskz_loadu_ps(m, u + i)));
    }
}

TK_AVX512 void tk_relu2_gate_dequantize_avx512(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu, float *out) {
    const __m512 vg = _mm512_set1_ps(fg), vu = _mm512_set1_ps(fu), zero = _mm512_setzero_ps();
    for (int64_t i = 0; i < n; i += 16) {
        const __mmask16 m = n - i >= 16 ? (__mmask16)0xFFFF : tk_tail_mask(n - i);
        const __m512 g = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, accg + i)), vg);
        const __m512 u = _mm512_mul_ps(_mm512_cvtepi32_ps(_mm512_maskz_loadu_epi32(m, accu + i)), vu);
        const __m512 r = _mm512_max_ps(zero, g);
        _mm512_mask_storeu_ps(out + i, m, _mm512_mul_ps(_mm512_mul_ps(r, r), u));
    }
}

#else
void tk_dequantize_row_avx2(const int32_t *acc, int64_t n, float factor, float *y) { tk_dequantize_row_portable(acc, n, factor, y); }
void tk_dequantize_row_avx512(const int32_t *acc, int64_t n, float factor, float *y) { tk_dequantize_row_portable(acc, n, factor, y); }
void tk_rmsnorm_row_avx2(const float *x, const float *gamma, int64_t n, float epsilon, float *y) { tk_rmsnorm_row_portable(x, gamma, n, epsilon, y); }
void tk_rmsnorm_row_avx512(const float *x, const float *gamma, int64_t n, float epsilon, float *y) { tk_rmsnorm_row_portable(x, gamma, n, epsilon, y); }
void tk_relu2_gate_avx2(float *g, const float *u, int64_t n) { tk_relu2_gate_portable(g, u, n); }
void tk_relu2_gate_avx512(float *g, const float *u, int64_t n) { tk_relu2_gate_portable(g, u, n); }
void tk_relu2_gate_dequantize_avx2(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu, float *out) {
    tk_relu2_gate_dequantize_portable(accg, accu, n, fg, fu, out);
}
void tk_relu2_gate_dequantize_avx512(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu, float *out) {
    tk_relu2_gate_dequantize_portable(accg, accu, n, fg, fu, out);
}
#endif

// ---------------------------------------------------------------- fused row pipelines

// Each variant calls that variant's own row functions (the very code the separate passes run,
// quantization from quantize.c) one after the other on one row buffer: the arithmetic and its
// order are unchanged, only the intermediate row no longer travels through a rows × width buffer
// between passes. A caller reusing `row` for every row it processes keeps it in L1/L2.

float tk_relu2_gate_rmsnorm_quantize_row_portable(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu,
                                                  const float *gamma, float epsilon, float *row, int8_t *q) {
    tk_relu2_gate_dequantize_portable(accg, accu, n, fg, fu, row);
    tk_rmsnorm_row_portable(row, gamma, n, epsilon, row);
    return tk_quantize_row_portable(row, n, q);
}

float tk_relu2_gate_rmsnorm_quantize_row_avx2(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu,
                                              const float *gamma, float epsilon, float *row, int8_t *q) {
    tk_relu2_gate_dequantize_avx2(accg, accu, n, fg, fu, row);
    tk_rmsnorm_row_avx2(row, gamma, n, epsilon, row);
    return tk_quantize_row_avx2(row, n, q);
}

float tk_relu2_gate_rmsnorm_quantize_row_avx512(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu,
                                                const float *gamma, float epsilon, float *row, int8_t *q) {
    tk_relu2_gate_dequantize_avx512(accg, accu, n, fg, fu, row);
    tk_rmsnorm_row_avx512(row, gamma, n, epsilon, row);
    return tk_quantize_row_avx512(row, n, q);
}

float tk_rmsnorm_quantize_row_portable(const float *x, const float *gamma, int64_t n, float epsilon, float *row, int8_t *q) {
    tk_rmsnorm_row_portable(x, gamma, n, epsilon, row);
    return tk_quantize_row_portable(row, n, q);
}

float tk_rmsnorm_quantize_row_avx2(const float *x, const float *gamma, int64_t n, float epsilon, float *row, int8_t *q) {
    tk_rmsnorm_row_avx2(x, gamma, n, epsilon, row);
    return tk_quantize_row_avx2(row, n, q);
}

float tk_rmsnorm_quantize_row_avx512(const float *x, const float *gamma, int64_t n, float epsilon, float *row, int8_t *q) {
    tk_rmsnorm_row_avx512(x, gamma, n, epsilon, row);
    return tk_quantize_row_avx512(row, n, q);
}
