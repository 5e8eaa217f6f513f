#ifndef CKERNELS_VECTOR_OPS_H
#define CKERNELS_VECTOR_OPS_H

#include <stdint.h>

// The Float32 dot product of the Layers module's Float32 LM head (attention has its own kernel,
// attention.h).
// Each function exists in ISA variants; Swift picks one at run time (Layers' kernel variants).
// Every variant sums in its own fixed order, so results are deterministic for a given variant
// and independent of how many rows a caller passes at once.

/// sum_i a[i] * b[i] (Float32), for the Float32 LM head.
float tk_dot_f32_portable(const float *a, const float *b, int64_t n);
float tk_dot_f32_avx2(const float *a, const float *b, int64_t n);
float tk_dot_f32_avx512(const float *a, const float *b, int64_t n);

#endif
