#ifndef CKERNELS_LMHEAD_H
#define CKERNELS_LMHEAD_H

#include <stdint.h>

// Inner loops of the Layers module: the LM head products and the attention dot / axpy.
// Each exists in ISA variants; Swift picks one from CPUFeatures.detected. Every variant of a
// function sums in its own fixed order, so results are deterministic for a given variant and
// independent of how many rows a caller passes at once.

/// sum_i a[i] * b[i] (Float32), for attention scores and the Float32 LM head.
float tk_dot_f32_portable(const float *a, const float *b, int64_t n);
float tk_dot_f32_avx2(const float *a, const float *b, int64_t n);
float tk_dot_f32_avx512(const float *a, const float *b, int64_t n);

/// y[i] += alpha * x[i], for the attention value mix.
void tk_axpy_f32_portable(float *y, float alpha, const float *x, int64_t n);
void tk_axpy_f32_avx2(float *y, float alpha, const float *x, int64_t n);
void tk_axpy_f32_avx512(float *y, float alpha, const float *x, int64_t n);

/// out[r] = sum_c w[r * cols + c] * x[c] for r in 0..<rows, exact in Int32 (Int8 LM head).
/// Requires every w in [-127, 127] (x may be any Int8) and cols * 128 * 127 < 2^31.
void tk_gemv_i8_portable(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out);
void tk_gemv_i8_avx2(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out);
void tk_gemv_i8_avxvnni(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out);
void tk_gemv_i8_avx512vnni(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out);

/// 4-bit LM head GEMV: out[r] = sum_g scales[r * G + g] * sum_{i<32} (nib(w, r, g, i) - 8) * x[32g + i]
/// with G = cols / 32 (cols must be a multiple of 32). Each group is 16 bytes: byte j holds
/// element j in its low nibble and element j + 16 in its high nibble. Group sums are exact
/// integers; the scaling is Float32 in a fixed order.
void tk_gemv_q4_portable(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out);
void tk_gemv_q4_avx2(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out);
void tk_gemv_q4_avxvnni(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out);
void tk_gemv_q4_avx512vnni(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out);

/// Per-row absmax Int8 quantization, bit-identical to TensorCore's ActivationQuantizer:
/// s = 127 / max(max|x|, 1e-5), q = clamp(round_half_even(x * s), -128, 127). Returns s, or NaN
/// (with q all zero) when the row holds a NaN or an infinity.
float tk_quantize_row_portable(const float *x, int64_t n, int8_t *q);
float tk_quantize_row_avx2(const float *x, int64_t n, int8_t *q);
float tk_quantize_row_avx512(const float *x, int64_t n, int8_t *q);

#endif
