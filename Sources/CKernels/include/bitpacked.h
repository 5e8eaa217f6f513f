#ifndef CKERNELS_BITPACKED_H
#define CKERNELS_BITPACKED_H

// Inner loops of the `bitpacked` backend (2-bit ternary weights). The layout is made, and the
// variant is chosen, in Swift (Sources/Backends/BitPacked/PackedTernaryMatrix.swift):
//
//   A row's weights form `groups` full groups of 256 weights (64 bytes each) and, when `half`
//   is 1, one half group of 128 weights (32 bytes). Full group g of a row: bits 2k..2k+1 of its
//   byte j (j < 64, k < 4) hold the code of weight 256g + 64k + j. The half group: bits 2k..2k+1
//   of its byte j (j < 32) hold the code of weight 256G + 32k + j (G = groups). A code is
//   weight + 1 (0 → -1, 1 → 0, 2 → +1); padding weights (past inFeatures) are code 1.
//
//   So the four 2-bit fields of one 64-byte group are four runs of 64 consecutive weights:
//   unpacking field k gives the weights that match the 64 consecutive activations
//   x[256g + 64k ..< 256g + 64k + 64], with no shuffling.
//
//   Rows are stored in tiles of 4 (the last tile has h = rows mod 4 rows when that is not 0),
//   each tile taking h · row_bytes bytes, tile t at weights + 4t · row_bytes. Inside a tile the
//   full groups are interleaved: group g of the tile's row r is at 64 · (h·g + r); the half
//   groups follow, row r's at 64·h·G + 32·r. The 4-row kernels therefore read one sequential
//   stream (the hardware prefetchers follow it much better than 4 separate rows: measured
//   ~25% faster from L3 at 4096×4096).
//
// Activations: `x` rows of `x_stride` elements; each row holds at least 256·groups + 128·half
// readable elements, and those past inFeatures are zero (Swift copies x into a zero-padded
// buffer when inFeatures is not a multiple of 256). Rows row_begin..<row_end of y are written:
// y[t·y_stride + o]; row_begin is a multiple of 4.

#include <stddef.h>
#include <stdint.h>

/// Arguments of the Int8 kernels: y[t, o] = Σ_i W[o, i] · x[t, i], exact in Int32.
typedef struct {
    const uint8_t *weights;   ///< packed tiles of 4 rows (see above)
    size_t row_bytes;         ///< 64 · groups + 32 · half
    size_t groups;            ///< full 64-byte groups per row
    size_t half;              ///< 1 when a 32-byte half group ends each row, else 0
    size_t rows;              ///< all rows of the matrix (outFeatures): the last tile's height
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
    size_t rows;
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

// Σ x per activation row, which the SIMD variants subtract: tk_sum_i8_* in rowsum.h.

#endif
