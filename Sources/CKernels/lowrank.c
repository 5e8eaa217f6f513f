// The thin products of a low-rank correction, batch-invariant by construction (see
// include/lowrank.h). Only the innermost loops live here; the split across threads is Swift's.
#include "lowrank.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TK_X86 1
#endif

// The portable variant must round each product and each sum on its own, whatever the compiler's
// default contraction: it stays one fixed sequence on every build.
#pragma STDC FP_CONTRACT OFF

#define TK_LR_INLINE static inline __attribute__((always_inline))

/// Rows of x (or t) that share one pass over the factor in a register tile.
#define TK_LR_ROWS 4

/// The i range of one cache block of Bᵀ (about 64 KiB of it), so that a tile of rows reads the
/// block from L2 rather than the whole Bᵀ from L3. Partial sums wait in t between blocks.
static int64_t tk_lr_iblock(int64_t r) {
    int64_t kb = 16384 / (r > 0 ? r : 1);
    return kb < 16 ? 16 : kb;
}

// ---------------------------------------------------------------- portable

void tk_lowrank_bx_portable(const float *bt, int64_t in, int64_t r, const float *x, int64_t rows,
                            float *t, int64_t j0, int64_t j1) {
    for (int64_t row = 0; row < rows; row++) {
        float *tr = t + row * r;
        const float *xr = x + row * in;
        for (int64_t j = j0; j < j1; j++) tr[j] = 0;
        for (int64_t i = 0; i < in; i++) {
            const float xi = xr[i];
            const float *b = bt + i * r;
            for (int64_t j = j0; j < j1; j++) {
                const float p = b[j] * xi;
                tr[j] = tr[j] + p;
            }
        }
    }
}

void tk_lowrank_at_portable(const float *at, int64_t r, int64_t out, const float *t, int64_t rows,
                            float *y, int64_t o0, int64_t o1) {
    enum { W = 64 };
    float acc[W];
    for (int64_t row = 0; row < rows; row++) {
        const float *tr = t + row * r;
        float *yr = y + row * out;
        for (int64_t o = o0; o < o1; o += W) {
            const int64_t n = o1 - o < W ? o1 - o : W;
            for (int64_t l = 0; l < n; l++) acc[l] = 0;
            for (int64_t j = 0; j < r; j++) {
                const float tj = tr[j];
                const float *a = at + j * out + o;
                for (int64_t l = 0; l < n; l++) {
                    const float p = a[l] * tj;
                    acc[l] = acc[l] + p;
                }
            }
            for (int64_t l = 0; l < n; l++) yr[o + l] = yr[o + l] + acc[l];
        }
    }
}

#ifdef TK_X86
// ---------------------------------------------------------------- AVX-512 (16 lanes, 4 vectors × 4 rows)

__attribute__((target("avx512f")))
TK_LR_INLINE __mmask16 tk_lr_mask16(int64_t lanes) {
    return lanes >= 16 ? (__mmask16)0xFFFF : lanes <= 0 ? (__mmask16)0 : (__mmask16)((1u << lanes) - 1);
}

/// One tile of step 1: NR rows × NV vectors of lanes from j, over i in [i0, i1).
__attribute__((target("avx512f")))
TK_LR_INLINE void tk_lr_bx_tile512(const float *bt, int64_t in, int64_t r, const float *x, float *t,
                                   int64_t j, int64_t j1, int64_t i0, int64_t i1, const int NR, const int NV) {
    __m512 acc[TK_LR_ROWS][4];
    __mmask16 m[4];
    for (int v = 0; v < NV; v++) m[v] = tk_lr_mask16(j1 - (j + 16 * v));
    for (int k = 0; k < NR; k++)
        for (int v = 0; v < NV; v++)
            acc[k][v] = i0 == 0 ? _mm512_setzero_ps() : _mm512_maskz_loadu_ps(m[v], t + k * r + j + 16 * v);
    for (int64_t i = i0; i < i1; i++) {
        const float *b = bt + i * r + j;
        __m512 bv[4];
        for (int v = 0; v < NV; v++) bv[v] = _mm512_maskz_loadu_ps(m[v], b + 16 * v);
        for (int k = 0; k < NR; k++) {
            const __m512 xb = _mm512_set1_ps(x[k * in + i]);
            for (int v = 0; v < NV; v++) acc[k][v] = _mm512_fmadd_ps(bv[v], xb, acc[k][v]);
        }
    }
    for (int k = 0; k < NR; k++)
        for (int v = 0; v < NV; v++) _mm512_mask_storeu_ps(t + k * r + j + 16 * v, m[v], acc[k][v]);
}

/// One tile of step 2: NR rows × NV vectors of outputs from o.
__attribute__((target("avx512f")))
TK_LR_INLINE void tk_lr_at_tile512(const float *at, int64_t r, int64_t out, const float *t, float *y,
                                   int64_t o, int64_t o1, const int NR, const int NV) {
    __m512 acc[TK_LR_ROWS][4];
    __mmask16 m[4];
    for (int v = 0; v < NV; v++) m[v] = tk_lr_mask16(o1 - (o + 16 * v));
    for (int k = 0; k < NR; k++)
        for (int v = 0; v < NV; v++) acc[k][v] = _mm512_setzero_ps();
    for (int64_t j = 0; j < r; j++) {
        const float *a = at + j * out + o;
        __m512 av[4];
        for (int v = 0; v < NV; v++) av[v] = _mm512_maskz_loadu_ps(m[v], a + 16 * v);
        for (int k = 0; k < NR; k++) {
            const __m512 tb = _mm512_set1_ps(t[k * r + j]);
            for (int v = 0; v < NV; v++) acc[k][v] = _mm512_fmadd_ps(av[v], tb, acc[k][v]);
        }
    }
    for (int k = 0; k < NR; k++)
        for (int v = 0; v < NV; v++) {
            float *yp = y + k * out + o + 16 * v;
            _mm512_mask_storeu_ps(yp, m[v], _mm512_add_ps(_mm512_maskz_loadu_ps(m[v], yp), acc[k][v]));
        }
}

// The (rows, vectors) pair picks a tile specialised at compile time; the per-lane sequence is
// the same in every one of them.
#define TK_LR_DISPATCH(CALL, NR, NV)                                        \
    switch ((NR) * 8 + (NV)) {                                              \
    case 1 * 8 + 1: CALL(1, 1); break; case 1 * 8 + 2: CALL(1, 2); break;   \
    case 1 * 8 + 3: CALL(1, 3); break; case 1 * 8 + 4: CALL(1, 4); break;   \
    case 2 * 8 + 1: CALL(2, 1); break; case 2 * 8 + 2: CALL(2, 2); break;   \
    case 2 * 8 + 3: CALL(2, 3); break; case 2 * 8 + 4: CALL(2, 4); break;   \
    case 3 * 8 + 1: CALL(3, 1); break; case 3 * 8 + 2: CALL(3, 2); break;   \
    case 3 * 8 + 3: CALL(3, 3); break; case 3 * 8 + 4: CALL(3, 4); break;   \
    case 4 * 8 + 1: CALL(4, 1); break; case 4 * 8 + 2: CALL(4, 2); break;   \
    case 4 * 8 + 3: CALL(4, 3); break; case 4 * 8 + 4: CALL(4, 4); break;   \
    default: break;                                                         \
    }

__attribute__((target("avx512f")))
void tk_lowrank_bx_avx512(const float *bt, int64_t in, int64_t r, const float *x, int64_t rows,
                          float *t, int64_t j0, int64_t j1) {
    if (j1 <= j0) return;
    const int64_t kb = tk_lr_iblock(r);
    for (int64_t i0 = 0; i0 < in; i0 += kb) {
        const int64_t i1 = in - i0 < kb ? in : i0 + kb;
        for (int64_t row = 0; row < rows; row += TK_LR_ROWS) {
            const int nr = rows - row < TK_LR_ROWS ? (int)(rows - row) : TK_LR_ROWS;
            const float *xr = x + row * in;
            float *tr = t + row * r;
            for (int64_t j = j0; j < j1; j += 64) {
                const int64_t lanes = j1 - j;
                const int nv = lanes >= 64 ? 4 : (int)((lanes + 15) / 16);
#define TK_LR_CALL(NR, NV) tk_lr_bx_tile512(bt, in, r, xr, tr, j, j1, i0, i1, NR, NV)
                TK_LR_DISPATCH(TK_LR_CALL, nr, nv)
#undef TK_LR_CALL
            }
        }
    }
}

__attribute__((target("avx512f")))
void tk_lowrank_at_avx512(const float *at, int64_t r, int64_t out, const float *t, int64_t rows,
                          float *y, int64_t o0, int64_t o1) {
    // Output blocks outside, rows inside: the block's r × 64 slice of Aᵀ stays in L1 for every row.
    for (int64_t o = o0; o < o1; o += 64) {
        const int64_t lanes = o1 - o;
        const int nv = lanes >= 64 ? 4 : (int)((lanes + 15) / 16);
        for (int64_t row = 0; row < rows; row += TK_LR_ROWS) {
            const int nr = rows - row < TK_LR_ROWS ? (int)(rows - row) : TK_LR_ROWS;
            const float *tr = t + row * r;
            float *yr = y + row * out;
#define TK_LR_CALL(NR, NV) tk_lr_at_tile512(at, r, out, tr, yr, o, o1, NR, NV)
            TK_LR_DISPATCH(TK_LR_CALL, nr, nv)
#undef TK_LR_CALL
        }
    }
}

// ---------------------------------------------------------------- AVX2 + FMA (8 lanes, 16 registers)
// Tiles of 3–4 rows take 2 vectors (16 lanes); tiles of 1–2 rows take 4 (32 lanes), so that a
// lone row still runs four independent FMA chains instead of waiting on two.

__attribute__((target("avx2,fma")))
TK_LR_INLINE int64_t tk_lr_width256(int nr) { return nr <= 2 ? 32 : 16; }

__attribute__((target("avx2,fma")))
TK_LR_INLINE __m256i tk_lr_mask8(int64_t lanes) {
    const int n = lanes >= 8 ? 8 : lanes <= 0 ? 0 : (int)lanes;
    return _mm256_cmpgt_epi32(_mm256_set1_epi32(n), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

__attribute__((target("avx2,fma")))
TK_LR_INLINE void tk_lr_bx_tile256(const float *bt, int64_t in, int64_t r, const float *x, float *t,
                                   int64_t j, int64_t j1, int64_t i0, int64_t i1, const int NR, const int NV) {
    __m256 acc[TK_LR_ROWS][4];
    __m256i m[4];
    for (int v = 0; v < NV; v++) m[v] = tk_lr_mask8(j1 - (j + 8 * v));
    for (int k = 0; k < NR; k++)
        for (int v = 0; v < NV; v++)
            acc[k][v] = i0 == 0 ? _mm256_setzero_ps() : _mm256_maskload_ps(t + k * r + j + 8 * v, m[v]);
    for (int64_t i = i0; i < i1; i++) {
        const float *b = bt + i * r + j;
        __m256 bv[4];
        for (int v = 0; v < NV; v++) bv[v] = _mm256_maskload_ps(b + 8 * v, m[v]);
        for (int k = 0; k < NR; k++) {
            const __m256 xb = _mm256_broadcast_ss(x + k * in + i);
            for (int v = 0; v < NV; v++) acc[k][v] = _mm256_fmadd_ps(bv[v], xb, acc[k][v]);
        }
    }
    for (int k = 0; k < NR; k++)
        for (int v = 0; v < NV; v++) _mm256_maskstore_ps(t + k * r + j + 8 * v, m[v], acc[k][v]);
}

__attribute__((target("avx2,fma")))
TK_LR_INLINE void tk_lr_at_tile256(const float *at, int64_t r, int64_t out, const float *t, float *y,
                                   int64_t o, int64_t o1, const int NR, const int NV) {
    __m256 acc[TK_LR_ROWS][4];
    __m256i m[4];
    for (int v = 0; v < NV; v++) m[v] = tk_lr_mask8(o1 - (o + 8 * v));
    for (int k = 0; k < NR; k++)
        for (int v = 0; v < NV; v++) acc[k][v] = _mm256_setzero_ps();
    for (int64_t j = 0; j < r; j++) {
        const float *a = at + j * out + o;
        __m256 av[4];
        for (int v = 0; v < NV; v++) av[v] = _mm256_maskload_ps(a + 8 * v, m[v]);
        for (int k = 0; k < NR; k++) {
            const __m256 tb = _mm256_broadcast_ss(t + k * r + j);
            for (int v = 0; v < NV; v++) acc[k][v] = _mm256_fmadd_ps(av[v], tb, acc[k][v]);
        }
    }
    for (int k = 0; k < NR; k++)
        for (int v = 0; v < NV; v++) {
            float *yp = y + k * out + o + 8 * v;
            _mm256_maskstore_ps(yp, m[v], _mm256_add_ps(_mm256_maskload_ps(yp, m[v]), acc[k][v]));
        }
}

__attribute__((target("avx2,fma")))
void tk_lowrank_bx_avx2(const float *bt, int64_t in, int64_t r, const float *x, int64_t rows,
                        float *t, int64_t j0, int64_t j1) {
    if (j1 <= j0) return;
    const int64_t kb = tk_lr_iblock(r);
    for (int64_t i0 = 0; i0 < in; i0 += kb) {
        const int64_t i1 = in - i0 < kb ? in : i0 + kb;
        for (int64_t row = 0; row < rows; row += TK_LR_ROWS) {
            const int nr = rows - row < TK_LR_ROWS ? (int)(rows - row) : TK_LR_ROWS;
            const float *xr = x + row * in;
            float *tr = t + row * r;
            const int64_t w = tk_lr_width256(nr);
            for (int64_t j = j0; j < j1; j += w) {
                const int64_t lanes = j1 - j < w ? j1 - j : w;
                const int nv = (int)((lanes + 7) / 8);
#define TK_LR_CALL(NR, NV) tk_lr_bx_tile256(bt, in, r, xr, tr, j, j1, i0, i1, NR, NV)
                TK_LR_DISPATCH(TK_LR_CALL, nr, nv)
#undef TK_LR_CALL
            }
        }
    }
}

__attribute__((target("avx2,fma")))
void tk_lowrank_at_avx2(const float *at, int64_t r, int64_t out, const float *t, int64_t rows,
                        float *y, int64_t o0, int64_t o1) {
    // One width per call (rows inside the output blocks); it changes no lane's chain.
    const int64_t w = tk_lr_width256(rows < TK_LR_ROWS ? (int)rows : TK_LR_ROWS);
    for (int64_t o = o0; o < o1; o += w) {
        const int64_t lanes = o1 - o < w ? o1 - o : w;
        const int nv = (int)((lanes + 7) / 8);
        for (int64_t row = 0; row < rows; row += TK_LR_ROWS) {
            const int nr = rows - row < TK_LR_ROWS ? (int)(rows - row) : TK_LR_ROWS;
            const float *tr = t + row * r;
            float *yr = y + row * out;
#define TK_LR_CALL(NR, NV) tk_lr_at_tile256(at, r, out, tr, yr, o, o1, NR, NV)
            TK_LR_DISPATCH(TK_LR_CALL, nr, nv)
#undef TK_LR_CALL
        }
    }
}
#else
void tk_lowrank_bx_avx2(const float *bt, int64_t in, int64_t r, const float *x, int64_t rows, float *t, int64_t j0, int64_t j1) {
    tk_lowrank_bx_portable(bt, in, r, x, rows, t, j0, j1);
}
void tk_lowrank_bx_avx512(const float *bt, int64_t in, int64_t r, const float *x, int64_t rows, float *t, int64_t j0, int64_t j1) {
    tk_lowrank_bx_portable(bt, in, r, x, rows, t, j0, j1);
}
void tk_lowrank_at_avx2(const float *at, int64_t r, int64_t out, const float *t, int64_t rows, float *y, int64_t o0, int64_t o1) {
    tk_lowrank_at_portable(at, r, out, t, rows, y, o0, o1);
}
void tk_lowrank_at_avx512(const float *at, int64_t r, int64_t out, const float *t, int64_t rows, float *y, int64_t o0, int64_t o1) {
    tk_lowrank_at_portable(at, r, out, t, rows, y, o0, o1);
}
#endif
