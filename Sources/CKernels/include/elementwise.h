#ifndef CKERNELS_ELEMENTWISE_H
#define CKERNELS_ELEMENTWISE_H

#include <stdint.h>

// The layers' per-row element-wise loops around the ternary products: dequantizing a product's
// Int32 results, RMSNorm, BitNet's ReLU² gate, and row pipelines of these ending in the next
// product's Int8 quantization. One row per call; each function exists in ISA
// variants that Swift picks at run time (Layers' VectorKernelVariant). A row's result depends
// only on that row, never on how many rows a caller processes or on threads.

/// y[i] = (float)acc[i] * factor: one conversion and one multiply per element, so every variant
/// gives the same bits as the scalar Swift loop it replaces.
void tk_dequantize_row_portable(const int32_t *acc, int64_t n, float factor, float *y);
void tk_dequantize_row_avx2(const int32_t *acc, int64_t n, float factor, float *y);
void tk_dequantize_row_avx512(const int32_t *acc, int64_t n, float factor, float *y);

/// RMSNorm of one row: inv = 1 / sqrt(Σ x[i]² / n + epsilon), y[i] = (x[i] · inv) · gamma[i].
/// The sum of squares runs in the variant's own fixed lane order (results differ between
/// variants in the last bits, never between calls of one variant). y may equal x.
void tk_rmsnorm_row_portable(const float *x, const float *gamma, int64_t n, float epsilon, float *y);
void tk_rmsnorm_row_avx2(const float *x, const float *gamma, int64_t n, float epsilon, float *y);
void tk_rmsnorm_row_avx512(const float *x, const float *gamma, int64_t n, float epsilon, float *y);

/// BitNet's gate, in place: g[i] = (r · r) · u[i] with r = max(g[i], 0). Exact same operations in
/// every variant (no fused multiply-add), so every variant gives the same bits. A NaN in g
/// propagates as the scalar formula does (max(NaN, 0) is NaN here, as in Swift's `max`).
void tk_relu2_gate_portable(float *g, const float *u, int64_t n);
void tk_relu2_gate_avx2(float *g, const float *u, int64_t n);
void tk_relu2_gate_avx512(float *g, const float *u, int64_t n);

/// The gate and up products' dequantization fused with the ReLU² gate, one row:
/// out[i] = (r · r) · (float)accu[i] · fu with r = max((float)accg[i] · fg, 0): the same
/// operations in the same order as tk_dequantize_row on both rows followed by tk_relu2_gate, so
/// the same bits, with one pass over the two Int32 rows instead of three over Int32 and Float rows.
void tk_relu2_gate_dequantize_portable(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu, float *out);
void tk_relu2_gate_dequantize_avx2(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu, float *out);
void tk_relu2_gate_dequantize_avx512(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu, float *out);

/// BitNet's feed-forward between its products, one row: tk_relu2_gate_dequantize (gate and up
/// Int32 rows → the gated Float row in `row`), then tk_rmsnorm_row in place on `row` (the
/// sub-norm: gains `gamma`, ε), then tk_quantize_row of `row` into `q` (n Int8 values); returns
/// the activation scale (NaN, with q all zero, for a non-finite row). Each variant calls that
/// variant's three row functions in sequence, so the same bits as the three passes. `row` is n
/// Floats of scratch (its final contents are the normalized row); reused for every row of a
/// thread, it stays in cache where a rows × n buffer between passes would not.
float tk_relu2_gate_rmsnorm_quantize_row_portable(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu,
                                                  const float *gamma, float epsilon, float *row, int8_t *q);
float tk_relu2_gate_rmsnorm_quantize_row_avx2(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu,
                                              const float *gamma, float epsilon, float *row, int8_t *q);
float tk_relu2_gate_rmsnorm_quantize_row_avx512(const int32_t *accg, const int32_t *accu, int64_t n, float fg, float fu,
                                                const float *gamma, float epsilon, float *row, int8_t *q);

/// RMSNorm then Int8 quantization of one row: tk_rmsnorm_row (x → row; `row` may be x) then
/// tk_quantize_row (row → q); returns the activation scale (NaN, with q all zero, for a
/// non-finite row). The same bits as the two passes, each variant calling its own row functions.
float tk_rmsnorm_quantize_row_portable(const float *x, const float *gamma, int64_t n, float epsilon, float *row, int8_t *q);
float tk_rmsnorm_quantize_row_avx2(const float *x, const float *gamma, int64_t n, float epsilon, float *row, int8_t *q);
float tk_rmsnorm_quantize_row_avx512(const float *x, const float *gamma, int64_t n, float epsilon, float *row, int8_t *q);

#endif
