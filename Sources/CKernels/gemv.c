// The LM head GEMVs: exact Int8 and 4-bit grouped (see include/gemv.h).
#include "gemv.h"

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TK_X86 1
#endif

// ---------------------------------------------------------------- Int8 GEMV (LM head)

void tk_gemv_i8_portable(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out) {
    for (int64_t r = 0; r < rows; r++) {
        const int8_t *wr = w + r * cols;
        int32_t acc = 0;
        for (int64_t c = 0; c < cols; c++) acc += (int32_t)wr[c] * (int32_t)x[c];
        out[r] = acc;
    }
}

#ifdef TK_X86
// Software prefetch 1 KiB ahead in each of the four row streams: measured on the 128256 × 2560
// head, 9.0 → 11.2 GB/s on one thread and 18.8 → 21.3 GB/s on two (the hardware prefetcher
// alone does not keep four interleaved streams ahead).
// The sign trick: |x| (unsigned) times sign(x)·w (signed) equals x·w, and |x| ≤ 128 with
// |w| ≤ 127 keeps vpmaddubsw's pair sums ≤ 32512, below its saturation point.

__attribute__((target("avx2")))
static inline int32_t tk_hsum256_i32(__m256i v) {
    __m128i s = _mm_add_epi32(_mm256_castsi256_si128(v), _mm256_extracti128_si256(v, 1));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0x4E));
    s = _mm_add_epi32(s, _mm_shuffle_epi32(s, 0xB1));
    return _mm_cvtsi128_si32(s);
}

static inline int32_t tk_tail_i8(const int8_t *w, const int8_t *x, int64_t from, int64_t cols) {
    int32_t acc = 0;
    for (int64_t c = from; c < cols; c++) acc += (int32_t)w[c] * (int32_t)x[c];
    return acc;
}

#define TK_GEMV_I8_BODY(DOT)                                                                     \
    int64_t r = 0;                                                                               \
    for (; r + 4 <= rows; r += 4) {                                                              \
        const int8_t *w0 = w + r * cols, *w1 = w0 + cols, *w2 = w1 + cols, *w3 = w2 + cols;      \
        __m256i a0 = _mm256_setzero_si256(), a1 = a0, a2 = a0, a3 = a0;                         \
        int64_t c = 0;                                                                           \
        for (; c + 32 <= cols; c += 32) {                                                        \
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x + c));                           \
            __m256i ax = _mm256_abs_epi8(xv);                                                    \
            if ((c & 63) == 0) { _mm_prefetch((const char *)(w0 + c + 1024), _MM_HINT_T0); _mm_prefetch((const char *)(w1 + c + 1024), _MM_HINT_T0); \
                _mm_prefetch((const char *)(w2 + c + 1024), _MM_HINT_T0); _mm_prefetch((const char *)(w3 + c + 1024), _MM_HINT_T0); } \
            a0 = DOT(a0, ax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w0 + c)), xv)); \
            a1 = DOT(a1, ax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w1 + c)), xv)); \
            a2 = DOT(a2, ax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w2 + c)), xv)); \
            a3 = DOT(a3, ax, _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w3 + c)), xv)); \
        }                                                                                        \
        out[r] = tk_hsum256_i32(a0) + tk_tail_i8(w0, x, c, cols);                                \
        out[r + 1] = tk_hsum256_i32(a1) + tk_tail_i8(w1, x, c, cols);                            \
        out[r + 2] = tk_hsum256_i32(a2) + tk_tail_i8(w2, x, c, cols);                            \
        out[r + 3] = tk_hsum256_i32(a3) + tk_tail_i8(w3, x, c, cols);                            \
    }                                                                                            \
    for (; r < rows; r++) {                                                                      \
        const int8_t *w0 = w + r * cols;                                                         \
        __m256i a0 = _mm256_setzero_si256();                                                     \
        int64_t c = 0;                                                                           \
        for (; c + 32 <= cols; c += 32) {                                                        \
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x + c));                           \
            a0 = DOT(a0, _mm256_abs_epi8(xv),                                                    \
                     _mm256_sign_epi8(_mm256_loadu_si256((const __m256i *)(w0 + c)), xv));       \
        }                                                                                        \
        out[r] = tk_hsum256_i32(a0) + tk_tail_i8(w0, x, c, cols);                                \
    }

__attribute__((target("avx2")))
static inline __m256i tk_dot_maddubs(__m256i acc, __m256i u, __m256i s) {
    return _mm256_add_epi32(acc, _mm256_madd_epi16(_mm256_maddubs_epi16(u, s), _mm256_set1_epi16(1)));
}

__attribute__((target("avx2")))
void tk_gemv_i8_avx2(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out) {
    TK_GEMV_I8_BODY(tk_dot_maddubs)
}

__attribute__((target("avx2,avxvnni")))
void tk_gemv_i8_avxvnni(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out) {
#define TK_DPBUSD_VEX(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
    TK_GEMV_I8_BODY(TK_DPBUSD_VEX)
#undef TK_DPBUSD_VEX
}

#else
void tk_gemv_i8_avx2(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out) { tk_gemv_i8_portable(w, x, rows, cols, out); }
void tk_gemv_i8_avxvnni(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out) { tk_gemv_i8_portable(w, x, rows, cols, out); }
#endif

// ---------------------------------------------------------------- Int8 GEMM, several activation rows (LM head)

void tk_gemm_i8_portable(const int8_t *w, int64_t rows, int64_t cols, const int8_t *x, int64_t batch,
                         int32_t *out, int64_t out_stride) {
    for (int64_t t = 0; t < batch; t++) tk_gemv_i8_portable(w, x + t * cols, rows, cols, out + t * out_stride);
}

void tk_gemm_i8_avx2(const int8_t *w, int64_t rows, int64_t cols, const int8_t *x, int64_t batch,
                     int32_t *out, int64_t out_stride) {
    // Tiles of 64 weight rows stay in L2 while every activation row reads them.
    for (int64_t r0 = 0; r0 < rows; r0 += 64) {
        int64_t n = rows - r0 < 64 ? rows - r0 : 64;
        for (int64_t t = 0; t < batch; t++) tk_gemv_i8_avx2(w + r0 * cols, x + t * cols, n, cols, out + t * out_stride + r0);
    }
}

void tk_gemm_i8_avxvnni(const int8_t *w, int64_t rows, int64_t cols, const int8_t *x, int64_t batch,
                        int32_t *out, int64_t out_stride) {
    for (int64_t r0 = 0; r0 < rows; r0 += 64) {
        int64_t n = rows - r0 < 64 ? rows - r0 : 64;
        for (int64_t t = 0; t < batch; t++) tk_gemv_i8_avxvnni(w + r0 * cols, x + t * cols, n, cols, out + t * out_stride + r0);
    }
}

#ifdef TK_X86
// 4 weight rows × 4 activation rows per block, 16 accumulators of 512 bits. The weights are
// made unsigned on the fly (u = w XOR 0x80 = w + 128), so one vpdpbusd multiplies u by the signed
// activations with no sign trick: Σ u·x = Σ w·x + 128·Σ x, and 128·Σ x is subtracted at the end.
// Each weight vector is loaded and flipped once for four activation rows, each activation vector
// once for four weight rows: 8 loads, 4 XORs and 16 vpdpbusd per 4 × 4 × 64 products.
// Exact: a lane adds 4 products of at most 255 · 128 per instruction (no saturation in
// vpdpbusd), the sum wraps modulo 2^32, and the true result fits in Int32 (see gemv.h).
#define TK_GEMM_BLOCK(NR, NT)                                                                      \
    do {                                                                                           \
        __m512i acc[4][4];                                                                         \
        for (int i = 0; i < 4; i++) for (int j = 0; j < 4; j++) acc[i][j] = _mm512_setzero_si512();\
        int64_t c = 0;                                                                             \
        for (; c + 64 <= cols; c += 64) {                                                          \
            __m512i xv[4], wv;                                                                     \
            if (first) for (int i = 0; i < NR; i++) _mm_prefetch((const char *)(wr[i] + c + 1024), _MM_HINT_T0); \
            for (int j = 0; j < NT; j++) xv[j] = _mm512_loadu_si512((const void *)(xt[j] + c));    \
            for (int i = 0; i < NR; i++) {                                                         \
                wv = _mm512_xor_si512(_mm512_loadu_si512((const void *)(wr[i] + c)), flip);        \
                for (int j = 0; j < NT; j++) acc[i][j] = _mm512_dpbusd_epi32(acc[i][j], wv, xv[j]); \
            }                                                                                      \
        }                                                                                          \
        for (int i = 0; i < NR; i++)                                                               \
            for (int j = 0; j < NT; j++)                                                           \
                yt[j][r + i] = _mm512_reduce_add_epi32(acc[i][j]) - 128 * sx[j] + tk_tail_i8(wr[i], xt[j], c, cols); \
    } while (0)

__attribute__((target("avx2,avx512f,avx512vl,avx512vnni")))
void tk_gemm_i8_avx512vnni(const int8_t *w, int64_t rows, int64_t cols, const int8_t *x, int64_t batch,
                           int32_t *out, int64_t out_stride) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const int64_t body = cols / 64 * 64;
    for (int64_t r0 = 0; r0 < rows; r0 += 64) {
        const int64_t r1 = rows - r0 < 64 ? rows : r0 + 64;
        for (int64_t t0 = 0; t0 < batch; t0 += 4) {
            const int nt = batch - t0 < 4 ? (int)(batch - t0) : 4;
            const int8_t *xt[4];
            int32_t *yt[4];
            int32_t sx[4];
            for (int j = 0; j < 4; j++) {
                int jj = j < nt ? j : 0;
                xt[j] = x + (t0 + jj) * cols;
                yt[j] = out + (t0 + jj) * out_stride;
                int32_t s = 0;
                for (int64_t c = 0; c < body; c++) s += xt[j][c];   // Σx over the vector part only
                sx[j] = s;
            }
            const int first = t0 == 0;   // the tile's first pass comes from memory: prefetch it
            int64_t r = r0;
            for (; r + 4 <= r1; r += 4) {
                const int8_t *wr[4] = {w + r * cols, w + (r + 1) * cols, w + (r + 2) * cols, w + (r + 3) * cols};
                if (nt == 4) TK_GEMM_BLOCK(4, 4); else TK_GEMM_BLOCK(4, nt);
            }
            for (; r < r1; r++) {
                const int8_t *wr[4] = {w + r * cols, w + r * cols, w + r * cols, w + r * cols};
                TK_GEMM_BLOCK(1, nt);
            }
        }
    }
}
#else
void tk_gemm_i8_avx512vnni(const int8_t *w, int64_t rows, int64_t cols, const int8_t *x, int64_t batch,
                           int32_t *out, int64_t out_stride) { tk_gemm_i8_portable(w, rows, cols, x, batch, out, out_stride); }
#endif

#ifdef TK_X86
// The AVX-512 VNNI GEMV, one row at a time so the weights are one sequential stream: 512-bit
// loads made unsigned with one XOR (u = w + 128) and multiplied by the activations straight from
// L1, four accumulators per row, 128·Σx subtracted at the end (exact: see the GEMM above).
// Software prefetch 2 KiB ahead into L1 and 16 KiB ahead into L2. Measured side by side against
// the former 4-row, 256-bit sign-trick loop (1 KiB prefetch per row stream) on the 2B4T head,
// 2 threads, whole decode: 1.12, 1.17, 1.32, 1.42× tokens/s (docs/performance/decode.md).
__attribute__((target("avx2,avx512f,avx512vl,avx512vnni")))
void tk_gemv_i8_avx512vnni(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out) {
    const __m512i flip = _mm512_set1_epi8((char)0x80);
    const int64_t body = cols / 64 * 64;
    int32_t sx = 0;
    for (int64_t c = 0; c < body; c++) sx += x[c];
    for (int64_t r = 0; r < rows; r++) {
        const int8_t *wr = w + r * cols;
        __m512i a0 = _mm512_setzero_si512(), a1 = a0, a2 = a0, a3 = a0;
        int64_t c = 0;
        for (; c + 256 <= body; c += 256) {
            _mm_prefetch((const char *)(wr + c + 2048), _MM_HINT_T0);
            _mm_prefetch((const char *)(wr + c + 2048 + 64), _MM_HINT_T0);
            _mm_prefetch((const char *)(wr + c + 2048 + 128), _MM_HINT_T0);
            _mm_prefetch((const char *)(wr + c + 2048 + 192), _MM_HINT_T0);
            _mm_prefetch((const char *)(wr + c + 16384), _MM_HINT_T2);
            _mm_prefetch((const char *)(wr + c + 16384 + 128), _MM_HINT_T2);
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_loadu_si512((const void *)(wr + c)), flip),
                                     _mm512_loadu_si512((const void *)(x + c)));
            a1 = _mm512_dpbusd_epi32(a1, _mm512_xor_si512(_mm512_loadu_si512((const void *)(wr + c + 64)), flip),
                                     _mm512_loadu_si512((const void *)(x + c + 64)));
            a2 = _mm512_dpbusd_epi32(a2, _mm512_xor_si512(_mm512_loadu_si512((const void *)(wr + c + 128)), flip),
                                     _mm512_loadu_si512((const void *)(x + c + 128)));
            a3 = _mm512_dpbusd_epi32(a3, _mm512_xor_si512(_mm512_loadu_si512((const void *)(wr + c + 192)), flip),
                                     _mm512_loadu_si512((const void *)(x + c + 192)));
        }
        for (; c < body; c += 64)
            a0 = _mm512_dpbusd_epi32(a0, _mm512_xor_si512(_mm512_loadu_si512((const void *)(wr + c)), flip),
                                     _mm512_loadu_si512((const void *)(x + c)));
        const __m512i a = _mm512_add_epi32(_mm512_add_epi32(a0, a1), _mm512_add_epi32(a2, a3));
        out[r] = (int32_t)((uint32_t)_mm512_reduce_add_epi32(a) - 128u * (uint32_t)sx) + tk_tail_i8(wr, x, body, cols);
    }
}
#else
void tk_gemv_i8_avx512vnni(const int8_t *w, const int8_t *x, int64_t rows, int64_t cols, int32_t *out) { tk_gemv_i8_portable(w, x, rows, cols, out); }
#endif

// ---------------------------------------------------------------- 4-bit grouped GEMV (LM head)

void tk_gemv_q4_portable(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out) {
    int64_t groups = cols / 32;
    for (int64_t r = 0; r < rows; r++) {
        const uint8_t *wr = w + r * groups * 16;
        float acc[8] = {0, 0, 0, 0, 0, 0, 0, 0};
        for (int64_t g = 0; g < groups; g++) {
            int32_t lanes[8] = {0, 0, 0, 0, 0, 0, 0, 0};
            for (int j = 0; j < 16; j++) {
                int32_t lo = (int32_t)(wr[g * 16 + j] & 15) - 8, hi = (int32_t)(wr[g * 16 + j] >> 4) - 8;
                lanes[j / 4] += lo * x[g * 32 + j];          // the lane order of the SIMD variants
                lanes[4 + j / 4] += hi * x[g * 32 + 16 + j];
            }
            for (int l = 0; l < 8; l++) acc[l] += (float)lanes[l] * scales[r * groups + g];
        }
        out[r] = ((acc[0] + acc[4]) + (acc[2] + acc[6])) + ((acc[1] + acc[5]) + (acc[3] + acc[7]));
    }
}

#ifdef TK_X86
__attribute__((target("avx2,fma")))
static inline float tk_hsum8_fixed(__m256 v) {
    // ((a0 + a4) + (a2 + a6)) + ((a1 + a5) + (a3 + a7)), the portable variant's order.
    __m128 s = _mm_add_ps(_mm256_castps256_ps128(v), _mm256_extractf128_ps(v, 1));   // a0+a4, a1+a5, a2+a6, a3+a7
    __m128 t = _mm_add_ps(s, _mm_movehl_ps(s, s));                                     // (a0+a4)+(a2+a6), (a1+a5)+(a3+a7)
    return _mm_cvtss_f32(_mm_add_ss(t, _mm_movehdup_ps(t)));
}

#define TK_GEMV_Q4_BODY(DOT)                                                                        \
    const int64_t groups = cols / 32;                                                               \
    const __m128i low4 = _mm_set1_epi8(15);                                                         \
    const __m256i eight = _mm256_set1_epi8(8);                                                      \
    for (int64_t r = 0; r < rows; r++) {                                                            \
        const uint8_t *wr = w + r * groups * 16;                                                    \
        const float *sr = scales + r * groups;                                                      \
        __m256 acc = _mm256_setzero_ps();                                                           \
        for (int64_t g = 0; g < groups; g++) {                                                      \
            __m128i b = _mm_loadu_si128((const __m128i *)(wr + g * 16));                            \
            if ((g & 3) == 0) _mm_prefetch((const char *)(wr + g * 16 + 1024), _MM_HINT_T0);        \
            __m256i q = _mm256_set_m128i(_mm_and_si128(_mm_srli_epi16(b, 4), low4), _mm_and_si128(b, low4)); \
            q = _mm256_sub_epi8(q, eight);                                                          \
            __m256i xv = _mm256_loadu_si256((const __m256i *)(x + g * 32));                         \
            __m256i d = DOT(_mm256_setzero_si256(), _mm256_abs_epi8(xv), _mm256_sign_epi8(q, xv));  \
            acc = _mm256_fmadd_ps(_mm256_cvtepi32_ps(d), _mm256_set1_ps(sr[g]), acc);                \
        }                                                                                           \
        out[r] = tk_hsum8_fixed(acc);                                                               \
    }

__attribute__((target("avx2,fma")))
void tk_gemv_q4_avx2(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out) {
    TK_GEMV_Q4_BODY(tk_dot_maddubs)
}

__attribute__((target("avx2,fma,avxvnni")))
void tk_gemv_q4_avxvnni(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out) {
#define TK_DPBUSD_VEX(acc, u, s) _mm256_dpbusd_avx_epi32(acc, u, s)
    TK_GEMV_Q4_BODY(TK_DPBUSD_VEX)
#undef TK_DPBUSD_VEX
}

__attribute__((target("avx2,fma,avx512f,avx512vl,avx512vnni")))
void tk_gemv_q4_avx512vnni(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out) {
#define TK_DPBUSD_EVEX(acc, u, s) _mm256_dpbusd_epi32(acc, u, s)
    TK_GEMV_Q4_BODY(TK_DPBUSD_EVEX)
#undef TK_DPBUSD_EVEX
}
#else
void tk_gemv_q4_avx2(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out) { tk_gemv_q4_portable(w, scales, x, rows, cols, out); }
void tk_gemv_q4_avxvnni(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out) { tk_gemv_q4_portable(w, scales, x, rows, cols, out); }
void tk_gemv_q4_avx512vnni(const uint8_t *w, const float *scales, const int8_t *x, int64_t rows, int64_t cols, float *out) { tk_gemv_q4_portable(w, scales, x, rows, cols, out); }
#endif
