#ifndef CKERNELS_RSR_H
#define CKERNELS_RSR_H

#include <stdint.h>

// Inner loops of the RSR / RSR++ backends (Sources/Backends/RSR). The index (permutations,
// segment starts), the block loop, threading and layout are Swift; these are the loops that
// touch every gathered column or every segment sum.
//
// Data pointers are untyped so that one Swift driver serves both element paths: the element
// is `float` for the Float path and `int32_t` for the exact Int8 path (integer adds wrap, so
// differences of prefix sums are exact). Permutation entries are `uint16_t` or `uint32_t`
// (chosen by the op table). Segment sums are in "code order": row c of `u` is the sum over
// the columns whose block code is c; row 0 is never summed (it is set to zero).

/// The inner-loop functions for one element type, permutation width and ISA.
typedef struct {
    /// prefix[0] = 0, prefix[i + 1] = prefix[i] + x[perm[i]] for i < n (batch 1).
    void (*prefix)(const void *x, const void *perm, int64_t n, void *prefix);
    /// u[c] = prefix[starts[c + 1]] - prefix[starts[c]] for 1 <= c < codes; u[0] = 0 (batch 1).
    void (*diff)(const void *prefix, const uint32_t *starts, int64_t codes, void *u);
    /// Batch tile: row c of u (width elements) = sum over i in [starts[c], starts[c+1]) of row
    /// perm[i] of xt (row stride ldx elements), for the `count` codes listed in `order`; row 0
    /// = 0. xt holds float (Float path) or int8_t (Int8 path, widened to int32 sums).
    /// The AVX-512 variants need width to be 16, 32, 48 or 64.
    void (*segsum)(const void *xt, int64_t ldx, const void *perm, const uint32_t *starts,
                   const uint16_t *order, int64_t count, int64_t width, void *u);
    /// RSR++ fold, radix 2 (1 << k rows of u, each width wide), most significant digit first:
    /// y row r = sum of the u rows whose digit r is 1; u is destroyed. subtract != 0: y -= that.
    void (*fold2)(void *u, int64_t k, int64_t width, void *y, int32_t subtract);
    /// RSR++ fold, radix 3 (3^k rows): y row r = sum(u | digit r = 1) - sum(u | digit r = 2).
    void (*fold3)(void *u, int64_t k, int64_t width, void *y, int32_t subtract);
    /// RSR enumeration product: y row r = sum over c < codes of table[r * stride + c] * u row c,
    /// for r < rows (table entries 0, 1, -1 as float or int32). subtract != 0: y -= that.
    void (*enumerate)(const void *u, const void *table, int64_t stride, int64_t rows,
                      int64_t codes, int64_t width, void *y, int32_t subtract);
} tk_rsr_ops;

/// Codes 1 ..< codes sorted by segment length (stable), into order (codes - 1 entries): the
/// order in which `segsum` sums them, so that equal trip counts follow each other.
void tk_rsr_segment_order(const uint32_t *starts, int64_t codes, uint16_t *order);

/// The op table for: integer (0: float, 1: int32), wide_perm (0: uint16, 1: uint32 entries),
/// avx512 (0: portable C, 1: AVX-512F/BW/VL variants; the caller checks the CPU).
tk_rsr_ops tk_rsr_select(int32_t integer, int32_t wide_perm, int32_t avx512);

#endif
