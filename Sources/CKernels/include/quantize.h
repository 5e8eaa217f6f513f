#ifndef CKERNELS_QUANTIZE_H
#define CKERNELS_QUANTIZE_H

#include <stdint.h>

// Per-row activation quantization (BitLinear inputs, the quantized LM heads).
// Each function exists in ISA variants; Swift picks one at run time (Layers' kernel variants).
// Every variant sums in its own fixed order, so results are deterministic for a given variant
// and independent of how many rows a caller passes at once.

/// Per-row absmax Int8 quantization, bit-identical to TensorCore's ActivationQuantizer:
/// s = 127 / max(max|x|, 1e-5), q = clamp(round_half_even(x * s), -128, 127). Returns s, or NaN
/// (with q all zero) when the row holds a NaN or an infinity.
float tk_quantize_row_portable(const float *x, int64_t n, int8_t *q);
float tk_quantize_row_avx2(const float *x, int64_t n, int8_t *q);
float tk_quantize_row_avx512(const float *x, int64_t n, int8_t *q);

#endif
