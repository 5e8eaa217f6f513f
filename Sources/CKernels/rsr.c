// Inner loops of RSR / RSR++ (see include/rsr.h). Two variants of each: portable C (the
// compiler's baseline vectorisation) and AVX-512 (F/BW/VL) through per-function target
// attributes. Integer data is handled as uint32_t so that every add wraps (no UB); the Int8
// path's sums fit in int32, and differences of wrapped prefix sums are exact anyway.
#include "rsr.h"

#if defined(__x86_64__)
#include <immintrin.h>
#define TK_RSR_X86 1
#define TK_AVX512 __attribute__((target("avx512f,avx512bw,avx512vl")))
#else
#define TK_RSR_X86 0
#endif

// ---------------------------------------------------------------------------------------------
// Portable bodies, written once and instantiated per element type (and per ISA for the
// loops that only need the compiler's vectoriser).

#define DEFINE_PREFIX_PORTABLE(NAME, T, PT)                                                     \
    static void NAME(const void *xv, const void *pv, int64_t n, void *outv) {                   \
        const T *x = (const T *)xv;                                                             \
        const PT *perm = (const PT *)pv;                                                        \
        T *out = (T *)outv;                                                                     \
        T s = 0;                                                                                \
        out[0] = 0;                                                                             \
        for (int64_t i = 0; i < n; i++) {                                                       \
            s += x[perm[i]];                                                                    \
            out[i + 1] = s;                                                                     \
        }                                                                                       \
    }

DEFINE_PREFIX_PORTABLE(prefix_f32_u16_portable, float, uint16_t)
DEFINE_PREFIX_PORTABLE(prefix_f32_u32_portable, float, uint32_t)
DEFINE_PREFIX_PORTABLE(prefix_i32_u16_portable, uint32_t, uint16_t)
DEFINE_PREFIX_PORTABLE(prefix_i32_u32_portable, uint32_t, uint32_t)

#define DEFINE_DIFF(NAME, T, ATTR)                                                              \
    ATTR static void NAME(const void *pv, const uint32_t *starts, int64_t codes, void *uv) {    \
        const T *p = (const T *)pv;                                                             \
        T *u = (T *)uv;                                                                         \
        u[0] = 0;                                                                               \
        for (int64_t c = 1; c < codes; c++) u[c] = p[starts[c + 1]] - p[starts[c]];             \
    }

#define DEFINE_SEGSUM_PORTABLE(NAME, TX, T, PT)                                                 \
    static void NAME(const void *xv, int64_t ldx, const void *pv, const uint32_t *starts,       \
                     const uint16_t *order, int64_t count, int64_t width, void *uv) {           \
        const TX *xt = (const TX *)xv;                                                          \
        const PT *perm = (const PT *)pv;                                                        \
        T *u = (T *)uv;                                                                         \
        for (int64_t j = 0; j < width; j++) u[j] = 0;                                           \
        for (int64_t o = 0; o < count; o++) {                                                   \
            int64_t c = order[o];                                                               \
            T *row = u + c * width;                                                             \
            for (int64_t j = 0; j < width; j++) row[j] = 0;                                     \
            for (int64_t i = starts[c]; i < (int64_t)starts[c + 1]; i++) {                      \
                const TX *src = xt + (int64_t)perm[i] * ldx;                                    \
                for (int64_t j = 0; j < width; j++) row[j] += (T)src[j];                        \
            }                                                                                   \
        }                                                                                       \
    }

DEFINE_SEGSUM_PORTABLE(segsum_f32_u16_portable, float, float, uint16_t)
DEFINE_SEGSUM_PORTABLE(segsum_f32_u32_portable, float, float, uint32_t)
DEFINE_SEGSUM_PORTABLE(segsum_i8_u16_portable, int8_t, uint32_t, uint16_t)
DEFINE_SEGSUM_PORTABLE(segsum_i8_u32_portable, int8_t, uint32_t, uint32_t)

// Codes 1 ..< codes ordered by segment length (stable counting sort; lengths of 63 or more
// share the last bucket). Summing segments in this order makes the trip count of the inner
// loop repeat from one segment to the next, so its exit is predicted instead of mispredicted
// once per segment.
void tk_rsr_segment_order(const uint32_t *starts, int64_t codes, uint16_t *order) {
    uint32_t count[64] = {0};
    for (int64_t c = 1; c < codes; c++) {
        uint32_t len = starts[c + 1] - starts[c];
        count[len < 63 ? len : 63]++;
    }
    uint32_t run = 0;
    for (int b = 0; b < 64; b++) { uint32_t h = count[b]; count[b] = run; run += h; }
    for (int64_t c = 1; c < codes; c++) {
        uint32_t len = starts[c + 1] - starts[c];
        order[count[len < 63 ? len : 63]++] = (uint16_t)c;
    }
}

// Sum of n rows of `width` elements starting at `a` (row stride width), into s[0..width).
// For width 1 (one vector) the sum keeps 8 independent partial sums so that the Float adds
// are not one serial dependency chain (the compiler may not reassociate them itself).
#define DEFINE_FOLDS(SUFFIX, T, ATTR)                                                           \
    ATTR static inline void rowsum_##SUFFIX(const T *a, int64_t n, int64_t width, T *s) {      \
        if (width == 1) {                                                                       \
            T p[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                                  \
            int64_t q = 0;                                                                      \
            for (; q + 8 <= n; q += 8)                                                          \
                for (int l = 0; l < 8; l++) p[l] += a[q + l];                                   \
            for (; q < n; q++) p[0] += a[q];                                                    \
            s[0] = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));           \
            return;                                                                             \
        }                                                                                       \
        for (int64_t j = 0; j < width; j++) s[j] = 0;                                           \
        for (int64_t q = 0; q < n; q++)                                                         \
            for (int64_t j = 0; j < width; j++) s[j] += a[q * width + j];                       \
    }                                                                                           \
    ATTR static inline void put_##SUFFIX(T *y, const T *s, int64_t width, int32_t subtract) {  \
        if (subtract)                                                                           \
            for (int64_t j = 0; j < width; j++) y[j] -= s[j];                                   \
        else                                                                                    \
            for (int64_t j = 0; j < width; j++) y[j] = s[j];                                    \
    }                                                                                           \
    ATTR static void fold2_##SUFFIX(void *uv, int64_t k, int64_t width, void *yv,               \
                                    int32_t subtract) {                                         \
        T *u = (T *)uv, *y = (T *)yv;                                                           \
        T s[64];                                                                                \
        int64_t size = (int64_t)1 << k;                                                         \
        for (int64_t r = 0; r < k; r++) {                                                       \
            int64_t h = size >> 1;                                                              \
            T *hi = u + h * width;                                                              \
            for (int64_t j0 = 0; j0 < width; j0 += 64) {                                        \
                int64_t w = width - j0 < 64 ? width - j0 : 64;                                  \
                if (width == 1) {                                                               \
                    rowsum_##SUFFIX(hi, h, 1, s);                                               \
                } else {                                                                        \
                    for (int64_t j = 0; j < w; j++) s[j] = 0;                                   \
                    for (int64_t q = 0; q < h; q++)                                             \
                        for (int64_t j = 0; j < w; j++) s[j] += hi[q * width + j0 + j];         \
                }                                                                               \
                put_##SUFFIX(y + r * width + j0, s, w, subtract);                               \
            }                                                                                   \
            for (int64_t e = 0; e < h * width; e++) u[e] += hi[e];                              \
            size = h;                                                                           \
        }                                                                                       \
    }                                                                                           \
    ATTR static void fold3_##SUFFIX(void *uv, int64_t k, int64_t width, void *yv,               \
                                    int32_t subtract) {                                         \
        T *u = (T *)uv, *y = (T *)yv;                                                           \
        T s[64], t[64];                                                                         \
        int64_t size = 1;                                                                       \
        for (int64_t r = 0; r < k; r++) size *= 3;                                              \
        for (int64_t r = 0; r < k; r++) {                                                       \
            int64_t h = size / 3;                                                               \
            T *one = u + h * width, *two = u + 2 * h * width;                                   \
            for (int64_t j0 = 0; j0 < width; j0 += 64) {                                        \
                int64_t w = width - j0 < 64 ? width - j0 : 64;                                  \
                if (width == 1) {                                                               \
                    rowsum_##SUFFIX(one, h, 1, s);                                              \
                    rowsum_##SUFFIX(two, h, 1, t);                                              \
                    s[0] -= t[0];                                                               \
                } else {                                                                        \
                    for (int64_t j = 0; j < w; j++) s[j] = 0;                                   \
                    for (int64_t q = 0; q < h; q++)                                             \
                        for (int64_t j = 0; j < w; j++)                                         \
                            s[j] += one[q * width + j0 + j] - two[q * width + j0 + j];          \
                }                                                                               \
                put_##SUFFIX(y + r * width + j0, s, w, subtract);                               \
            }                                                                                   \
            for (int64_t e = 0; e < h * width; e++) u[e] += one[e] + two[e];                    \
            size = h;                                                                           \
        }                                                                                       \
    }                                                                                           \
    ATTR static void enumerate_##SUFFIX(const void *uv, const void *tv, int64_t stride,         \
                                        int64_t rows, int64_t codes, int64_t width, void *yv,   \
                                        int32_t subtract) {                                     \
        const T *u = (const T *)uv, *table = (const T *)tv;                                     \
        T *y = (T *)yv;                                                                         \
        T s[64];                                                                                \
        for (int64_t r = 0; r < rows; r++) {                                                    \
            const T *e = table + r * stride;                                                    \
            for (int64_t j0 = 0; j0 < width; j0 += 64) {                                        \
                int64_t w = width - j0 < 64 ? width - j0 : 64;                                  \
                if (width == 1) {                                                               \
                    T p[8] = {0, 0, 0, 0, 0, 0, 0, 0};                                          \
                    int64_t c = 0;                                                              \
                    for (; c + 8 <= codes; c += 8)                                              \
                        for (int l = 0; l < 8; l++) p[l] += e[c + l] * u[c + l];                \
                    for (; c < codes; c++) p[0] += e[c] * u[c];                                 \
                    s[0] = ((p[0] + p[1]) + (p[2] + p[3])) + ((p[4] + p[5]) + (p[6] + p[7]));   \
                } else {                                                                        \
                    for (int64_t j = 0; j < w; j++) s[j] = 0;                                   \
                    for (int64_t c = 0; c < codes; c++) {                                       \
                        T ec = e[c];                                                            \
                        for (int64_t j = 0; j < w; j++) s[j] += ec * u[c * width + j0 + j];     \
                    }                                                                           \
                }                                                                               \
                put_##SUFFIX(y + r * width + j0, s, w, subtract);                               \
            }                                                                                   \
        }                                                                                       \
    }

#define TK_NOATTR
DEFINE_FOLDS(f32_portable, float, TK_NOATTR)
DEFINE_FOLDS(i32_portable, uint32_t, TK_NOATTR)
DEFINE_DIFF(diff_f32_portable, float, TK_NOATTR)
DEFINE_DIFF(diff_i32_portable, uint32_t, TK_NOATTR)

#if TK_RSR_X86
DEFINE_FOLDS(f32_avx512, float, TK_AVX512)
DEFINE_FOLDS(i32_avx512, uint32_t, TK_AVX512)

// ---------------------------------------------------------------------------------------------
// AVX-512 batch-1 prefix sums: 16 columns gathered at once, an in-register inclusive scan
// (4 shift-and-add steps), plus the running carry. Two vectors per iteration so that the
// carry chain (add + broadcast) is paid once per 32 columns. No branch depends on the data.

#define IDX16_U16(p, i) _mm512_cvtepu16_epi32(_mm256_loadu_si256((const __m256i *)((p) + (i))))
#define IDX16_U32(p, i) _mm512_loadu_si512((const void *)((p) + (i)))
#define IDX16M_U16(m, p, i) _mm512_cvtepu16_epi32(_mm256_maskz_loadu_epi16((m), (p) + (i)))
#define IDX16M_U32(m, p, i) _mm512_maskz_loadu_epi32((m), (p) + (i))

TK_AVX512 static inline __m512 scan_ps(__m512 v) {
    const __m512i z = _mm512_setzero_si512();
    v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(v), z, 15)));
    v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(v), z, 14)));
    v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(v), z, 12)));
    v = _mm512_add_ps(v, _mm512_castsi512_ps(_mm512_alignr_epi32(_mm512_castps_si512(v), z, 8)));
    return v;
}

TK_AVX512 static inline __m512i scan_epi32(__m512i v) {
    const __m512i z = _mm512_setzero_si512();
    v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, z, 15));
    v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, z, 14));
    v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, z, 12));
    v = _mm512_add_epi32(v, _mm512_alignr_epi32(v, z, 8));
    return v;
}

#define DEFINE_PREFIX_AVX512(NAME, T, VT, PT, IDX, IDXM, GATHER, MGATHER, SCAN, ADD, BCAST,    \
                             STORE, MSTORE, ZERO)                                               \
    TK_AVX512 static void NAME(const void *xv, const void *pv, int64_t n, void *outv) {         \
        const T *x = (const T *)xv;                                                             \
        const PT *perm = (const PT *)pv;                                                        \
        T *out = (T *)outv;                                                                     \
        const __m512i last = _mm512_set1_epi32(15);                                             \
        VT carry = ZERO;                                                                        \
        out[0] = 0;                                                                             \
        int64_t i = 0;                                                                          \
        for (; i + 32 <= n; i += 32) {                                                          \
            VT a = SCAN(GATHER(IDX(perm, i), x, 4));                                            \
            VT b = SCAN(GATHER(IDX(perm, i + 16), x, 4));                                       \
            b = ADD(b, BCAST(last, a));                                                         \
            a = ADD(a, carry);                                                                  \
            b = ADD(b, carry);                                                                  \
            STORE(out + i + 1, a);                                                              \
            STORE(out + i + 17, b);                                                             \
            carry = BCAST(last, b);                                                             \
        }                                                                                       \
        for (; i < n; i += 16) {                                                                \
            int64_t rest = n - i;                                                               \
            __mmask16 m = rest >= 16 ? (__mmask16)0xFFFF : (__mmask16)((1u << rest) - 1);       \
            VT a = ADD(SCAN(MGATHER(ZERO, m, IDXM(m, perm, i), x, 4)), carry);                  \
            MSTORE(out + i + 1, m, a);                                                          \
            carry = BCAST(last, a);                                                             \
        }                                                                                       \
    }

#define STORE_EPI32(p, v) _mm512_storeu_si512((void *)(p), (v))
#define LOADU_EPI32(p) _mm512_loadu_si512((const void *)(p))
#define PREFIX_F32(NAME, PT, IDX, IDXM)                                                         \
    DEFINE_PREFIX_AVX512(NAME, float, __m512, PT, IDX, IDXM, _mm512_i32gather_ps,               \
                         _mm512_mask_i32gather_ps, scan_ps, _mm512_add_ps, _mm512_permutexvar_ps, \
                         _mm512_storeu_ps, _mm512_mask_storeu_ps, _mm512_setzero_ps())
#define PREFIX_I32(NAME, PT, IDX, IDXM)                                                         \
    DEFINE_PREFIX_AVX512(NAME, int32_t, __m512i, PT, IDX, IDXM, _mm512_i32gather_epi32,         \
                         _mm512_mask_i32gather_epi32, scan_epi32, _mm512_add_epi32,             \
                         _mm512_permutexvar_epi32, STORE_EPI32, _mm512_mask_storeu_epi32,       \
                         _mm512_setzero_si512())

PREFIX_F32(prefix_f32_u16_avx512, uint16_t, IDX16_U16, IDX16M_U16)
PREFIX_F32(prefix_f32_u32_avx512, uint32_t, IDX16_U32, IDX16M_U32)
PREFIX_I32(prefix_i32_u16_avx512, uint16_t, IDX16_U16, IDX16M_U16)
PREFIX_I32(prefix_i32_u32_avx512, uint32_t, IDX16_U32, IDX16M_U32)

// The prefix array is gathered once at every segment start (16 codes per gather), into u
// shifted by one; then u[c] = g[c + 1] - g[c] in place, from the top down so that every
// difference still reads unmodified neighbours.
#define DEFINE_DIFF_AVX512(NAME, GATHER, MGATHER, VZERO, SUB, LOAD, STORE, MSTORE, T)           \
    TK_AVX512 static void NAME(const void *pv, const uint32_t *starts, int64_t codes, void *uv) { \
        const T *p = (const T *)pv;                                                             \
        T *u = (T *)uv;                                                                         \
        int64_t c = 1;                                                                          \
        for (; c + 16 <= codes + 1; c += 16)                                                    \
            STORE(u + c - 1, GATHER(_mm512_loadu_si512((const void *)(starts + c)), p, 4));     \
        if (c <= codes) {                                                                       \
            __mmask16 m = (__mmask16)((1u << (codes + 1 - c)) - 1);                             \
            __m512i idx = _mm512_maskz_loadu_epi32(m, starts + c);                              \
            MSTORE(u + c - 1, m, MGATHER(VZERO, m, idx, p, 4));                                 \
        }                                                                                       \
        c = codes - 16;                                                                         \
        for (; c >= 1; c -= 16) STORE(u + c, SUB(LOAD(u + c), LOAD(u + c - 1)));                \
        for (int64_t j = c + 15; j >= 1; j--) u[j] = u[j] - u[j - 1];                           \
        u[0] = 0;                                                                               \
    }

DEFINE_DIFF_AVX512(diff_f32_avx512, _mm512_i32gather_ps, _mm512_mask_i32gather_ps, _mm512_setzero_ps(),
                   _mm512_sub_ps, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_mask_storeu_ps, float)
DEFINE_DIFF_AVX512(diff_i32_avx512, _mm512_i32gather_epi32, _mm512_mask_i32gather_epi32,
                   _mm512_setzero_si512(), _mm512_sub_epi32, LOADU_EPI32, STORE_EPI32,
                   _mm512_mask_storeu_epi32, uint32_t)

// ---------------------------------------------------------------------------------------------
// AVX-512 batch-tile segment sums: the tile (16..64 lanes) of every gathered activation row
// is added in registers, two rows per step on two accumulator sets (the adds of one set form
// a dependency chain of one add latency per row). Segments come in `order` (by length).
// The Int8 path keeps the transposed activations as Int8 (a 64-lane row is one cache line)
// and widens them to Int32 in registers.

#define DEFINE_SEGSUM_AVX512(NAME, TX, T, PT, VT, ZERO, LOADZ, ADD, STORE)                      \
    TK_AVX512 static inline __attribute__((always_inline)) void NAME##_n(                       \
        const TX *xt, int64_t ldx, const PT *perm, const uint32_t *starts,                      \
        const uint16_t *order, int64_t count, int64_t width, T *u, const int nz) {              \
        for (int z = 0; z < nz; z++) STORE(u + 16 * z, ZERO);                                   \
        for (int64_t o = 0; o < count; o++) {                                                   \
            int64_t c = order[o];                                                               \
            VT a0 = ZERO, a1 = ZERO, a2 = ZERO, a3 = ZERO;                                      \
            VT b0 = ZERO, b1 = ZERO, b2 = ZERO, b3 = ZERO;                                      \
            int64_t i = starts[c], hi = starts[c + 1];                                          \
            for (; i + 2 <= hi; i += 2) {                                                       \
                const TX *r = xt + (int64_t)perm[i] * ldx;                                      \
                const TX *s = xt + (int64_t)perm[i + 1] * ldx;                                  \
                a0 = ADD(a0, LOADZ(r, 0));                                                      \
                b0 = ADD(b0, LOADZ(s, 0));                                                      \
                if (nz > 1) { a1 = ADD(a1, LOADZ(r, 1)); b1 = ADD(b1, LOADZ(s, 1)); }           \
                if (nz > 2) { a2 = ADD(a2, LOADZ(r, 2)); b2 = ADD(b2, LOADZ(s, 2)); }           \
                if (nz > 3) { a3 = ADD(a3, LOADZ(r, 3)); b3 = ADD(b3, LOADZ(s, 3)); }           \
            }                                                                                   \
            if (i < hi) {                                                                       \
                const TX *r = xt + (int64_t)perm[i] * ldx;                                      \
                a0 = ADD(a0, LOADZ(r, 0));                                                      \
                if (nz > 1) a1 = ADD(a1, LOADZ(r, 1));                                          \
                if (nz > 2) a2 = ADD(a2, LOADZ(r, 2));                                          \
                if (nz > 3) a3 = ADD(a3, LOADZ(r, 3));                                          \
            }                                                                                   \
            T *row = u + c * width;                                                             \
            STORE(row, ADD(a0, b0));                                                            \
            if (nz > 1) STORE(row + 16, ADD(a1, b1));                                           \
            if (nz > 2) STORE(row + 32, ADD(a2, b2));                                           \
            if (nz > 3) STORE(row + 48, ADD(a3, b3));                                           \
        }                                                                                       \
    }                                                                                           \
    TK_AVX512 static void NAME(const void *xv, int64_t ldx, const void *pv,                     \
                               const uint32_t *starts, const uint16_t *order, int64_t count,    \
                               int64_t width, void *uv) {                                       \
        const TX *xt = (const TX *)xv;                                                          \
        const PT *perm = (const PT *)pv;                                                        \
        T *u = (T *)uv;                                                                         \
        switch (width) {                                                                        \
        case 16: NAME##_n(xt, ldx, perm, starts, order, count, width, u, 1); break;             \
        case 32: NAME##_n(xt, ldx, perm, starts, order, count, width, u, 2); break;             \
        case 48: NAME##_n(xt, ldx, perm, starts, order, count, width, u, 3); break;             \
        default: NAME##_n(xt, ldx, perm, starts, order, count, width, u, 4); break;             \
        }                                                                                       \
    }

#define LOADZ_PS(p, z) _mm512_loadu_ps((p) + 16 * (z))
#define LOADZ_I8(p, z) _mm512_cvtepi8_epi32(_mm_loadu_si128((const __m128i *)((p) + 16 * (z))))
DEFINE_SEGSUM_AVX512(segsum_f32_u16_avx512, float, float, uint16_t, __m512, _mm512_setzero_ps(),
                     LOADZ_PS, _mm512_add_ps, _mm512_storeu_ps)
DEFINE_SEGSUM_AVX512(segsum_f32_u32_avx512, float, float, uint32_t, __m512, _mm512_setzero_ps(),
                     LOADZ_PS, _mm512_add_ps, _mm512_storeu_ps)
DEFINE_SEGSUM_AVX512(segsum_i8_u16_avx512, int8_t, uint32_t, uint16_t, __m512i,
                     _mm512_setzero_si512(), LOADZ_I8, _mm512_add_epi32, STORE_EPI32)
DEFINE_SEGSUM_AVX512(segsum_i8_u32_avx512, int8_t, uint32_t, uint32_t, __m512i,
                     _mm512_setzero_si512(), LOADZ_I8, _mm512_add_epi32, STORE_EPI32)

// ---------------------------------------------------------------------------------------------
// AVX-512 folds for one vector (batch 1): each step reads the digit-1 and digit-2 thirds (or
// the upper half) 16 codes at a time, with a masked tail, and reduces the output once.

#define DEFINE_FOLD_W1_AVX512(NAME, GENERIC, T, VT, LOAD, MLOAD, STORE, MSTORE, ADD, SUB, ZERO,  \
                              REDUCE, RADIX)                                                    \
    TK_AVX512 static void NAME(void *uv, int64_t k, int64_t width, void *yv, int32_t subtract) { \
        if (width != 1) { GENERIC(uv, k, width, yv, subtract); return; }                        \
        T *u = (T *)uv, *y = (T *)yv;                                                           \
        int64_t size = 1;                                                                       \
        for (int64_t r = 0; r < k; r++) size *= RADIX;                                          \
        for (int64_t r = 0; r < k; r++) {                                                       \
            int64_t h = size / RADIX;                                                           \
            T *one = u + h, *two = u + 2 * h;                                                   \
            VT s = ZERO;                                                                        \
            int64_t q = 0;                                                                      \
            for (; q + 16 <= h; q += 16) {                                                      \
                VT b = LOAD(one + q);                                                           \
                if (RADIX == 3) {                                                               \
                    VT c = LOAD(two + q);                                                       \
                    s = ADD(s, SUB(b, c));                                                      \
                    STORE(u + q, ADD(LOAD(u + q), ADD(b, c)));                                  \
                } else {                                                                        \
                    s = ADD(s, b);                                                              \
                    STORE(u + q, ADD(LOAD(u + q), b));                                          \
                }                                                                               \
            }                                                                                   \
            if (q < h) {                                                                        \
                __mmask16 m = (__mmask16)((1u << (h - q)) - 1);                                 \
                VT b = MLOAD(m, one + q);                                                       \
                if (RADIX == 3) {                                                               \
                    VT c = MLOAD(m, two + q);                                                   \
                    s = ADD(s, SUB(b, c));                                                      \
                    MSTORE(u + q, m, ADD(MLOAD(m, u + q), ADD(b, c)));                          \
                } else {                                                                        \
                    s = ADD(s, b);                                                              \
                    MSTORE(u + q, m, ADD(MLOAD(m, u + q), b));                                  \
                }                                                                               \
            }                                                                                   \
            T v = (T)REDUCE(s);                                                                 \
            y[r] = subtract ? y[r] - v : v;                                                     \
            size = h;                                                                           \
        }                                                                                       \
    }

#define MLOAD_PS(m, p) _mm512_maskz_loadu_ps((m), (p))
#define MLOAD_EPI32(m, p) _mm512_maskz_loadu_epi32((m), (p))
DEFINE_FOLD_W1_AVX512(fold3v_f32_avx512, fold3_f32_avx512, float, __m512, _mm512_loadu_ps, MLOAD_PS,
                      _mm512_storeu_ps, _mm512_mask_storeu_ps, _mm512_add_ps, _mm512_sub_ps,
                      _mm512_setzero_ps(), _mm512_reduce_add_ps, 3)
DEFINE_FOLD_W1_AVX512(fold2v_f32_avx512, fold2_f32_avx512, float, __m512, _mm512_loadu_ps, MLOAD_PS,
                      _mm512_storeu_ps, _mm512_mask_storeu_ps, _mm512_add_ps, _mm512_sub_ps,
                      _mm512_setzero_ps(), _mm512_reduce_add_ps, 2)
DEFINE_FOLD_W1_AVX512(fold3v_i32_avx512, fold3_i32_avx512, uint32_t, __m512i, LOADU_EPI32,
                      MLOAD_EPI32, STORE_EPI32, _mm512_mask_storeu_epi32, _mm512_add_epi32,
                      _mm512_sub_epi32, _mm512_setzero_si512(), (uint32_t)_mm512_reduce_add_epi32, 3)
DEFINE_FOLD_W1_AVX512(fold2v_i32_avx512, fold2_i32_avx512, uint32_t, __m512i, LOADU_EPI32,
                      MLOAD_EPI32, STORE_EPI32, _mm512_mask_storeu_epi32, _mm512_add_epi32,
                      _mm512_sub_epi32, _mm512_setzero_si512(), (uint32_t)_mm512_reduce_add_epi32, 2)

// ---------------------------------------------------------------------------------------------
// AVX-512 block products on batch tiles (width 16, 32, 48 or 64): the output rows are
// accumulated in registers (nz vectors), the tile rows of u streamed once per step.

#define DEFINE_WIDE_AVX512(SUFFIX, T, VT, LOAD, STORE, ADD, SUB, MUL, SET1, ZERO, W1FOLD2,      \
                           W1FOLD3, W1ENUM)                                                     \
    TK_AVX512 static inline __attribute__((always_inline)) void put_wide_##SUFFIX(             \
        T *y, VT v, int32_t subtract) {                                                         \
        STORE(y, subtract ? SUB(LOAD(y), v) : v);                                               \
    }                                                                                           \
    TK_AVX512 static inline __attribute__((always_inline)) void foldw_##SUFFIX##_n(            \
        T *u, int64_t k, int64_t width, T *y, int32_t subtract, const int radix, const int nz) { \
        int64_t size = 1;                                                                       \
        for (int64_t r = 0; r < k; r++) size *= radix;                                          \
        for (int64_t r = 0; r < k; r++) {                                                       \
            int64_t h = size / radix;                                                           \
            VT s0 = ZERO, s1 = ZERO, s2 = ZERO, s3 = ZERO;                                      \
            for (int64_t q = 0; q < h; q++) {                                                   \
                T *a = u + q * width, *b = u + (h + q) * width, *c = u + (2 * h + q) * width;   \
                _Pragma("clang loop unroll(full)")                                              \
                for (int z = 0; z < nz; z++) {                                                  \
                    VT bv = LOAD(b + 16 * z), sum;                                              \
                    VT d;                                                                       \
                    if (radix == 3) {                                                           \
                        VT cv = LOAD(c + 16 * z);                                               \
                        d = SUB(bv, cv);                                                        \
                        sum = ADD(bv, cv);                                                      \
                    } else {                                                                    \
                        d = bv;                                                                 \
                        sum = bv;                                                               \
                    }                                                                           \
                    STORE(a + 16 * z, ADD(LOAD(a + 16 * z), sum));                              \
                    if (z == 0) s0 = ADD(s0, d);                                                \
                    else if (z == 1) s1 = ADD(s1, d);                                           \
                    else if (z == 2) s2 = ADD(s2, d);                                           \
                    else s3 = ADD(s3, d);                                                       \
                }                                                                               \
            }                                                                                   \
            T *yr = y + r * width;                                                              \
            put_wide_##SUFFIX(yr, s0, subtract);                                                \
            if (nz > 1) put_wide_##SUFFIX(yr + 16, s1, subtract);                               \
            if (nz > 2) put_wide_##SUFFIX(yr + 32, s2, subtract);                               \
            if (nz > 3) put_wide_##SUFFIX(yr + 48, s3, subtract);                               \
            size = h;                                                                           \
        }                                                                                       \
    }                                                                                           \
    TK_AVX512 static void fold2w_##SUFFIX(void *uv, int64_t k, int64_t width, void *yv,         \
                                          int32_t subtract) {                                   \
        T *u = (T *)uv, *y = (T *)yv;                                                           \
        switch (width) {                                                                        \
        case 16: foldw_##SUFFIX##_n(u, k, width, y, subtract, 2, 1); break;                     \
        case 32: foldw_##SUFFIX##_n(u, k, width, y, subtract, 2, 2); break;                     \
        case 48: foldw_##SUFFIX##_n(u, k, width, y, subtract, 2, 3); break;                     \
        case 64: foldw_##SUFFIX##_n(u, k, width, y, subtract, 2, 4); break;                     \
        default: W1FOLD2(uv, k, width, yv, subtract); break;                                    \
        }                                                                                       \
    }                                                                                           \
    TK_AVX512 static void fold3w_##SUFFIX(void *uv, int64_t k, int64_t width, void *yv,         \
                                          int32_t subtract) {                                   \
        T *u = (T *)uv, *y = (T *)yv;                                                           \
        switch (width) {                                                                        \
        case 16: foldw_##SUFFIX##_n(u, k, width, y, subtract, 3, 1); break;                     \
        case 32: foldw_##SUFFIX##_n(u, k, width, y, subtract, 3, 2); break;                     \
        case 48: foldw_##SUFFIX##_n(u, k, width, y, subtract, 3, 3); break;                     \
        case 64: foldw_##SUFFIX##_n(u, k, width, y, subtract, 3, 4); break;                     \
        default: W1FOLD3(uv, k, width, yv, subtract); break;                                    \
        }                                                                                       \
    }                                                                                           \
    TK_AVX512 static inline __attribute__((always_inline)) void enumw_##SUFFIX##_n(            \
        const T *u, const T *table, int64_t stride, int64_t rows, int64_t codes, int64_t width, \
        T *y, int32_t subtract, const int nz) {                                                 \
        for (int64_t r = 0; r < rows; r++) {                                                    \
            const T *e = table + r * stride;                                                    \
            VT s0 = ZERO, s1 = ZERO, s2 = ZERO, s3 = ZERO;                                      \
            for (int64_t c = 0; c < codes; c++) {                                               \
                VT ec = SET1(e[c]);                                                             \
                const T *uc = u + c * width;                                                    \
                s0 = ADD(s0, MUL(ec, LOAD(uc)));                                                \
                if (nz > 1) s1 = ADD(s1, MUL(ec, LOAD(uc + 16)));                               \
                if (nz > 2) s2 = ADD(s2, MUL(ec, LOAD(uc + 32)));                               \
                if (nz > 3) s3 = ADD(s3, MUL(ec, LOAD(uc + 48)));                               \
            }                                                                                   \
            T *yr = y + r * width;                                                              \
            put_wide_##SUFFIX(yr, s0, subtract);                                                \
            if (nz > 1) put_wide_##SUFFIX(yr + 16, s1, subtract);                               \
            if (nz > 2) put_wide_##SUFFIX(yr + 32, s2, subtract);                               \
            if (nz > 3) put_wide_##SUFFIX(yr + 48, s3, subtract);                               \
        }                                                                                       \
    }                                                                                           \
    TK_AVX512 static void enumw_##SUFFIX(const void *uv, const void *tv, int64_t stride,        \
                                         int64_t rows, int64_t codes, int64_t width, void *yv,  \
                                         int32_t subtract) {                                    \
        const T *u = (const T *)uv, *t = (const T *)tv;                                         \
        T *y = (T *)yv;                                                                         \
        switch (width) {                                                                        \
        case 16: enumw_##SUFFIX##_n(u, t, stride, rows, codes, width, y, subtract, 1); break;   \
        case 32: enumw_##SUFFIX##_n(u, t, stride, rows, codes, width, y, subtract, 2); break;   \
        case 48: enumw_##SUFFIX##_n(u, t, stride, rows, codes, width, y, subtract, 3); break;   \
        case 64: enumw_##SUFFIX##_n(u, t, stride, rows, codes, width, y, subtract, 4); break;   \
        default: W1ENUM(uv, tv, stride, rows, codes, width, yv, subtract); break;               \
        }                                                                                       \
    }

#define SET1_PS(v) _mm512_set1_ps(v)
#define SET1_EPI32(v) _mm512_set1_epi32((int)(v))
DEFINE_WIDE_AVX512(f32, float, __m512, _mm512_loadu_ps, _mm512_storeu_ps, _mm512_add_ps,
                   _mm512_sub_ps, _mm512_mul_ps, SET1_PS, _mm512_setzero_ps(), fold2v_f32_avx512,
                   fold3v_f32_avx512, enumerate_f32_avx512)
DEFINE_WIDE_AVX512(i32, uint32_t, __m512i, LOADU_EPI32, STORE_EPI32, _mm512_add_epi32,
                   _mm512_sub_epi32, _mm512_mullo_epi32, SET1_EPI32, _mm512_setzero_si512(),
                   fold2v_i32_avx512, fold3v_i32_avx512, enumerate_i32_avx512)
#endif

tk_rsr_ops tk_rsr_select(int32_t integer, int32_t wide_perm, int32_t avx512) {
    tk_rsr_ops ops;
#if TK_RSR_X86
    if (avx512) {
        if (integer) {
            ops.prefix = wide_perm ? prefix_i32_u32_avx512 : prefix_i32_u16_avx512;
            ops.segsum = wide_perm ? segsum_i8_u32_avx512 : segsum_i8_u16_avx512;
            ops.diff = diff_i32_avx512;
            ops.fold2 = fold2w_i32;
            ops.fold3 = fold3w_i32;
            ops.enumerate = enumw_i32;
        } else {
            ops.prefix = wide_perm ? prefix_f32_u32_avx512 : prefix_f32_u16_avx512;
            ops.segsum = wide_perm ? segsum_f32_u32_avx512 : segsum_f32_u16_avx512;
            ops.diff = diff_f32_avx512;
            ops.fold2 = fold2w_f32;
            ops.fold3 = fold3w_f32;
            ops.enumerate = enumw_f32;
        }
        return ops;
    }
#else
    (void)avx512;
#endif
    if (integer) {
        ops.prefix = wide_perm ? prefix_i32_u32_portable : prefix_i32_u16_portable;
        ops.segsum = wide_perm ? segsum_i8_u32_portable : segsum_i8_u16_portable;
        ops.diff = diff_i32_portable;
        ops.fold2 = fold2_i32_portable;
        ops.fold3 = fold3_i32_portable;
        ops.enumerate = enumerate_i32_portable;
    } else {
        ops.prefix = wide_perm ? prefix_f32_u32_portable : prefix_f32_u16_portable;
        ops.segsum = wide_perm ? segsum_f32_u32_portable : segsum_f32_u16_portable;
        ops.diff = diff_f32_portable;
        ops.fold2 = fold2_f32_portable;
        ops.fold3 = fold3_f32_portable;
        ops.enumerate = enumerate_f32_portable;
    }
    return ops;
}
