#ifndef CKERNELS_LOWRANK_H
#define CKERNELS_LOWRANK_H

#include <stdint.h>

// The two thin products of a low-rank correction y += A·(B·x) (Backends' LowRankCorrection),
// on the transposed factors Bᵀ [in][r] and Aᵀ [r][out] (row-major).
//
// Batch invariance: every output element is one fixed chain of operations that depends only on
// its own row of x (or t) and on the factors, never on how many rows a call holds, where the
// row sits in the batch, or which lane range [j0, j1) / [o0, o1) a call covers:
//   t[row][j] = (((0 + Bᵀ[0][j]·x[0]) + Bᵀ[1][j]·x[1]) + ...)         over i = 0 ..< in
//   y[row][o] += (((0 + Aᵀ[0][o]·t[0]) + Aᵀ[1][o]·t[1]) + ...)        over j = 0 ..< r
// The avx2 and avx512 variants use a single-rounding FMA for each step, so they return the
// same bits as each other; the portable variant rounds the product and the sum separately.
// Rows are blocked in register tiles (and the i loop in cache blocks, the partial sums kept in
// t between blocks), which only reuses loads: no row's arithmetic changes with the tile.

/// t[row·r + j] = Σ_i bt[i·r + j] · x[row·in + i] for rows 0 ..< rows, j in [j0, j1).
void tk_lowrank_bx_portable(const float *bt, int64_t in, int64_t r, const float *x, int64_t rows,
                            float *t, int64_t j0, int64_t j1);
void tk_lowrank_bx_avx2(const float *bt, int64_t in, int64_t r, const float *x, int64_t rows,
                        float *t, int64_t j0, int64_t j1);
void tk_lowrank_bx_avx512(const float *bt, int64_t in, int64_t r, const float *x, int64_t rows,
                          float *t, int64_t j0, int64_t j1);

/// y[row·out + o] += Σ_j at[j·out + o] · t[row·r + j] for rows 0 ..< rows, o in [o0, o1).
void tk_lowrank_at_portable(const float *at, int64_t r, int64_t out, const float *t, int64_t rows,
                            float *y, int64_t o0, int64_t o1);
void tk_lowrank_at_avx2(const float *at, int64_t r, int64_t out, const float *t, int64_t rows,
                        float *y, int64_t o0, int64_t o1);
void tk_lowrank_at_avx512(const float *at, int64_t r, int64_t out, const float *t, int64_t rows,
                          float *y, int64_t o0, int64_t o1);

#endif
