#ifndef CKERNELS_VECTOR_OPS_H
#define CKERNELS_VECTOR_OPS_H

#include <stdint.h>

// Float32 vector loops of the Layers module: attention dot products and value mixes, and the
// Float32 LM head.
// Each function exists in ISA variants; Swift picks one at run time (Layers' kernel variants).
// Every variant sums in its own fixed order, so results are deterministic for a given variant
// and independent of how many rows a caller passes at once.

/// sum_i a[i] * b[i] (Float32), for attention scores and the Float32 LM head.
float tk_dot_f32_portable(const float *a, const float *b, int64_t n);
float tk_dot_f32_avx2(const float *a, const float *b, int64_t n);
float tk_dot_f32_avx512(const float *a, const float *b, int64_t n);

/// y[i] += alpha * x[i], for the attention value mix.
void tk_axpy_f32_portable(float *y, float alpha, const float *x, int64_t n);
void tk_axpy_f32_avx2(float *y, float alpha, const float *x, int64_t n);
void tk_axpy_f32_avx512(float *y, float alpha, const float *x, int64_t n);

#endif
