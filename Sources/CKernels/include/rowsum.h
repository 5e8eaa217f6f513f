// Sums of Int8 rows: Σ_i x[i] as a wrapping Int32, the correction term the unsigned-code
// ternary kernels subtract once per activation row (see bitpacked.h).
#ifndef TK_ROWSUM_H
#define TK_ROWSUM_H

#include <stddef.h>
#include <stdint.h>

/// Σ_{i < n} x[i] modulo 2^32 (two's complement). Every variant returns the same value.
int32_t tk_sum_i8_portable(const int8_t *x, size_t n);
/// AVX2 (vpsadbw on 32 bytes). Call only when the CPU has AVX2.
int32_t tk_sum_i8_avx2(const int8_t *x, size_t n);
/// AVX-512 BW (vpsadbw on 64 bytes). Call only when the CPU has AVX-512 F and BW.
int32_t tk_sum_i8_avx512(const int8_t *x, size_t n);

#endif
