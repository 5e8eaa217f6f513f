#ifndef CKERNELS_BITPACKED_H
#define CKERNELS_BITPACKED_H

// Inner loops of the `bitpacked` backend (2-bit ternary weights). The layout is made, and the
// variant is chosen, in Swift (Sources/Backends/BitPacked/PackedTernaryMatrix.swift):
//
//   Each row is `groups` full groups of 64 bytes, then, when `half` is 1, one half group of
//   32 bytes. Full group g covers weights 256g ..< 256g + 256: bits 2k..2k+1 of its byte j
//   (j < 64, k < 4) hold the code of weight 256g + 64k + j. The half group covers weights
//   256G ..< 256G + 128 (G = groups): bits 2k..2k+1 of its byte j (j < 32) hold the code of
//   weight 256G + 32k + j. A code is weight + 1 (0 → -1, 1 → 0, 2 → +1); padding weights
//   (past inFeatures) are code 1.
//
//   So in one full group the four 2-bit fields of the 64 bytes are four consecutive runs of
//   64 weights: unpacking field k of a 64-byte vector gives the weights matching the 64
//   consecutive activations x[256g + 64k ..< 256g + 64k + 64], with no shuffling.
//
// Activations: `x` rows of `x_stride` elements; each row holds at least 256·groups + 128·half
// readable elements, and those past inFeatures are zero (Swift copies x into a zero-padded
// buffer when inFeatures is not a multiple of 256). Rows row_begin..<row_end of y are written:
// y[t·y_stride + o].

#include <stddef.h>
#include <stdint.h>

/// Arguments of the Int8 kernels: y[t, o] = Σ_i W[o, i] · x[t, i], exact in Int32.
typedef struct {
    const uint8_t *weights;   ///< packed rows, row o at weights + o · row_bytes
    size_t row_bytes;         ///< 64 · groups + 32 · half
    size_t groups;            ///< full 64-byte groups per row
    size_t half;              ///< 1 when a 32-byte half group ends each row, else 0
    size_t row_begin, row_end;
    size_t batch;             ///< activation rows t = 0 ..< batch
    const int8_t *x;
    size_t x_stride;
    const int32_t *x_sum;     ///< Σ_i x[t, i] for each t (wrapping Int32), used by the SIMD variants
    int32_t *y;
    size_t y_stride;
} tk_bitpacked_i8_args;

/// Arguments of the Float kernels: y[t, o] = scale · Σ_i W[o, i] · x[t, i].
typedef struct {
    const uint8_t *weights;
    size_t row_bytes;
    size_t groups;
    size_t half;
    size_t row_begin, row_end;
    size_t batch;
    const float *x;
    size_t x_stride;
    float scale;
    float *y;
    size_t y_stride;
} tk_bitpacked_f32_args;

/// Plain C, no ISA extension beyond the compiler's baseline.
void tk_bitpacked_i8_portable(const tk_bitpacked_i8_args *args);
void tk_bitpacked_f32_portable(const tk_bitpacked_f32_args *args);
/// AVX2 (+FMA for the Float path). Call only when the CPU has AVX2 and FMA.
void tk_bitpacked_i8_avx2(const tk_bitpacked_i8_args *args);
void tk_bitpacked_f32_avx2(const tk_bitpacked_f32_args *args);
/// AVX-512 F/BW/VL + VNNI. Call only when the CPU has all four.
void tk_bitpacked_i8_avx512vnni(const tk_bitpacked_i8_args *args);
void tk_bitpacked_f32_avx512vnni(const tk_bitpacked_f32_args *args);

/// Σ x[i] for i < n, wrapping in 32 bits (the exact sum whenever it fits in Int32).
int32_t tk_bitpacked_sum_i8(const int8_t *x, size_t n);

#endif
