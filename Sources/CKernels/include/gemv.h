#ifndef CKERNELS_GEMV_H
#define CKERNELS_GEMV_H

#include <stdint.h>

// The LM head GEMVs of the Layers module: exact Int8 × Int8 and 4-bit grouped weights.
// Each function exists in ISA variants; Swift picks one at run time (Layers' kernel variants).
// Every variant sums in its own fixed order, so results are deterministic for a given variant
// and independent of how many rows a caller passes at once.

/// out[r] = sum_c w[r * cols + c] * x[c] for r in 0..<rows, exact in Int32 (Int8 LM head).
/// Requires every w in [-127, 127] (x may be any Int8) and cols * 128 * 127 < 2^31.
void tk_gemv_i8_portable(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out);
void tk_gemv_i8_avx2(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out);
void tk_gemv_i8_avxvnni(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out);
void tk_gemv_i8_avx512vnni(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out);

/// out[t * out_stride + r] = sum_c w[r * cols + c] * x[t * cols + c] for r < rows, t < batch:
/// the Int8 GEMV for several activation rows at once, exact in Int32 and equal to
/// tk_gemv_i8_* row by row (same requirements). The weights are read from memory once per call,
/// in tiles that stay in L2 while every activation row uses them.
void tk_gemm_i8_portable(const int8_t *w, int64_t rows, int64_t cols, const int8_t *x, int64_t batch, int32_t *out, int64_t out_stride);
void tk_gemm_i8_avx2(const int8_t *w, int64_t rows, int64_t cols, const int8_t *x, int64_t batch, int32_t *out, int64_t out_stride);
void tk_gemm_i8_avxvnni(const int8_t *w, int64_t rows, int64_t cols, const int8_t *x, int64_t batch, int32_t *out, int64_t out_stride);
void tk_gemm_i8_avx512vnni(const int8_t *w, int64_t rows, int64_t cols, const int8_t *x, int64_t batch, int32_t *out, int64_t out_stride);

/// 4-bit LM head GEMV: out[r] = sum_g scales[r * G + g] * sum_{i<32} (nib(w, r, g, i) - 8) * x[32g + i]
/// with G = cols / 32 (cols must be a multiple of 32). Each group is 16 bytes: byte j holds
/// element j in its low nibble and element j + 16 in its high nibble. Group sums are exact
/// integers; the scaling is Float32 in a fixed order.
void tk_gemv_q4_portable(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out);
void tk_gemv_q4_avx2(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out);
void tk_gemv_q4_avxvnni(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out);
void tk_gemv_q4_avx512vnni(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out);

#endif
