// Blocked causal attention for one KV head and a block of query rows (see include/attention.h).
//
// Per block: keys are packed KC at a time into a transposed tile kT[d][KC] (zero-padded past the
// last key any row of the block sees), and a register tile of rows × KC keys is accumulated with
// FMA chains over the head dimension (lanes over keys, no horizontal sums). Every row's scores go
// to its own row of the scratch; the softmax runs per row with a vector exp; the value mix keeps
// lanes over the head dimension and broadcasts each probability, rows × columns in registers,
// each row stopping at its own visible length. The 1/sum normalization is applied once at the end.
#include "attention.h"

#include <math.h>
#include <string.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define TK_X86 1
#endif

// Keys per packed chunk, at most (the scratch is laid out for it in every variant).
#define TK_ATT_KC_MAX 32

static inline int64_t tk_att_round_up(int64_t n, int64_t m) { return (n + m - 1) / m * m; }

// The scratch of one call, in Floats from its start: the packed keys kT (d × TK_ATT_KC_MAX), the
// scores S (rows × lpad, each row padded to whole chunks) and the softmax's 1 / Σ per row (rows).
// The one description of the layout: the size query and every variant's entry point use it.
typedef struct {
    int64_t rows, longest, lpad;
    int64_t scores, inverses, total;
} tk_att_layout;

static inline tk_att_layout tk_att_layout_of(int64_t tokens, int64_t group, int64_t d, int64_t first_visible) {
    tk_att_layout l;
    l.rows = tokens * group;
    l.longest = first_visible + tokens - 1;
    l.lpad = tk_att_round_up(l.longest, TK_ATT_KC_MAX);
    l.scores = d * TK_ATT_KC_MAX;
    l.inverses = l.scores + l.rows * l.lpad;
    l.total = l.inverses + l.rows;
    return l;
}

int64_t tk_attention_scratch_floats(int64_t tokens, int64_t group, int64_t d, int64_t first_visible) {
    return tk_att_layout_of(tokens, group, d, first_visible).total;
}

// The exp of the softmax (cephes expf's reduction and polynomial):
// x = n·ln2 + r, |r| <= ln2/2, e^r ≈ 1 + r + r²·P(r), result e^r · 2^n.
#define TK_EXP_LOW (-104.0f)   // exp(x) < 2^-150 below: rounds to 0
#define TK_LOG2E 1.44269504088896341f
#define TK_LN2_HI 0.693359375f
#define TK_LN2_LO (-2.12194440e-4f)
#define TK_P0 1.9875691500e-4f
#define TK_P1 1.3981999507e-3f
#define TK_P2 8.3334519073e-3f
#define TK_P3 4.1665795894e-2f
#define TK_P4 1.6666665459e-1f
#define TK_P5 5.0000001201e-1f

static inline float tk_exp_scalar(float x) {
    if (x != x) return x;
    if (x < TK_EXP_LOW) return 0.0f;
    float fn = floorf(x * TK_LOG2E + 0.5f);
    float r = x - fn * TK_LN2_HI;
    r = r - fn * TK_LN2_LO;
    float p = TK_P0;
    p = p * r + TK_P1;
    p = p * r + TK_P2;
    p = p * r + TK_P3;
    p = p * r + TK_P4;
    p = p * r + TK_P5;
    float y = p * (r * r) + r + 1.0f;
    // 2^n in two exact halves, so only the last product can round (into subnormals).
    int n = (int)fn;
    int n1 = n >> 1, n2 = n - n1;
    union { uint32_t u; float f; } a = {(uint32_t)(n1 + 127) << 23}, b = {(uint32_t)(n2 + 127) << 23};
    return y * a.f * b.f;
}

void tk_exp_f32_portable(const float *x, float *y, int64_t n) {
    for (int64_t i = 0; i < n; i++) y[i] = tk_exp_scalar(x[i]);
}

// ---------------------------------------------------------------- portable

#define TK_PORT_KC 16

// kT[c][i] = key j0 + i, component c, for i < n; 0 for n <= i < kc.
static void tk_att_pack_scalar(const float *k, int64_t d, int64_t j0, int64_t n, int64_t kc, float *kT) {
    for (int64_t i = 0; i < kc; i++) {
        if (i < n) {
            const float *src = k + (j0 + i) * d;
            for (int64_t c = 0; c < d; c++) kT[c * kc + i] = src[c];
        } else {
            for (int64_t c = 0; c < d; c++) kT[c * kc + i] = 0.0f;
        }
    }
}

void tk_attention_f32_portable(const float *q, int64_t q_token_stride, float *out, int64_t out_token_stride,
                               int64_t tokens, int64_t group, int64_t d, const float *k, const float *v,
                               int64_t first_visible, float scale, float *scratch) {
    const tk_att_layout l = tk_att_layout_of(tokens, group, d, first_visible);
    const int64_t rows = l.rows, longest = l.longest, lpad = l.lpad;
    float *kT = scratch, *S = scratch + l.scores, *inv = scratch + l.inverses;
    for (int64_t j0 = 0; j0 < longest; j0 += TK_PORT_KC) {
        int64_t n = longest - j0 < TK_PORT_KC ? longest - j0 : TK_PORT_KC;
        tk_att_pack_scalar(k, d, j0, n, TK_PORT_KC, kT);
        for (int64_t r = 0; r < rows; r++) {
            int64_t t = r / group, h = r % group;
            if (j0 >= first_visible + t) continue;
            const float *qr = q + t * q_token_stride + h * d;
            float acc[TK_PORT_KC];
            for (int i = 0; i < TK_PORT_KC; i++) acc[i] = 0.0f;
            for (int64_t c = 0; c < d; c++) {
                float qc = qr[c];
                for (int i = 0; i < TK_PORT_KC; i++) acc[i] += qc * kT[c * TK_PORT_KC + i];
            }
            for (int i = 0; i < TK_PORT_KC; i++) S[r * lpad + j0 + i] = acc[i] * scale;
        }
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t L = first_visible + r / group;
        float *s = S + r * lpad;
        float m = -INFINITY;
        for (int64_t j = 0; j < L; j++) m = s[j] > m ? s[j] : m;
        float sum = 0.0f;
        for (int64_t j = 0; j < L; j++) { s[j] = tk_exp_scalar(s[j] - m); sum += s[j]; }
        inv[r] = 1.0f / sum;
    }
    for (int64_t r = 0; r < rows; r++) {
        int64_t t = r / group, h = r % group, L = first_visible + t;
        const float *p = S + r * lpad;
        float *o = out + t * out_token_stride + h * d;
        for (int64_t c = 0; c < d; c++) o[c] = 0.0f;
        for (int64_t j = 0; j < L; j++) {
            const float pj = p[j], *vj = v + j * d;
            for (int64_t c = 0; c < d; c++) o[c] += pj * vj[c];
        }
        for (int64_t c = 0; c < d; c++) o[c] *= inv[r];
    }
}

#ifdef TK_X86
// ---------------------------------------------------------------- shared x86 pieces

// dst[i * dst_stride + j] = src[j * src_stride + i] for an 8 × 8 block.
__attribute__((target("avx2,fma")))
static inline void tk_att_transpose8(const float *src, int64_t src_stride, float *dst, int64_t dst_stride) {
    __m256 r0 = _mm256_loadu_ps(src + 0 * src_stride), r1 = _mm256_loadu_ps(src + 1 * src_stride);
    __m256 r2 = _mm256_loadu_ps(src + 2 * src_stride), r3 = _mm256_loadu_ps(src + 3 * src_stride);
    __m256 r4 = _mm256_loadu_ps(src + 4 * src_stride), r5 = _mm256_loadu_ps(src + 5 * src_stride);
    __m256 r6 = _mm256_loadu_ps(src + 6 * src_stride), r7 = _mm256_loadu_ps(src + 7 * src_stride);
    __m256 t0 = _mm256_unpacklo_ps(r0, r1), t1 = _mm256_unpackhi_ps(r0, r1);
    __m256 t2 = _mm256_unpacklo_ps(r2, r3), t3 = _mm256_unpackhi_ps(r2, r3);
    __m256 t4 = _mm256_unpacklo_ps(r4, r5), t5 = _mm256_unpackhi_ps(r4, r5);
    __m256 t6 = _mm256_unpacklo_ps(r6, r7), t7 = _mm256_unpackhi_ps(r6, r7);
    __m256 u0 = _mm256_shuffle_ps(t0, t2, 0x44), u1 = _mm256_shuffle_ps(t0, t2, 0xEE);
    __m256 u2 = _mm256_shuffle_ps(t1, t3, 0x44), u3 = _mm256_shuffle_ps(t1, t3, 0xEE);
    __m256 u4 = _mm256_shuffle_ps(t4, t6, 0x44), u5 = _mm256_shuffle_ps(t4, t6, 0xEE);
    __m256 u6 = _mm256_shuffle_ps(t5, t7, 0x44), u7 = _mm256_shuffle_ps(t5, t7, 0xEE);
    _mm256_storeu_ps(dst + 0 * dst_stride, _mm256_permute2f128_ps(u0, u4, 0x20));
    _mm256_storeu_ps(dst + 1 * dst_stride, _mm256_permute2f128_ps(u1, u5, 0x20));
    _mm256_storeu_ps(dst + 2 * dst_stride, _mm256_permute2f128_ps(u2, u6, 0x20));
    _mm256_storeu_ps(dst + 3 * dst_stride, _mm256_permute2f128_ps(u3, u7, 0x20));
    _mm256_storeu_ps(dst + 4 * dst_stride, _mm256_permute2f128_ps(u0, u4, 0x31));
    _mm256_storeu_ps(dst + 5 * dst_stride, _mm256_permute2f128_ps(u1, u5, 0x31));
    _mm256_storeu_ps(dst + 6 * dst_stride, _mm256_permute2f128_ps(u2, u6, 0x31));
    _mm256_storeu_ps(dst + 7 * dst_stride, _mm256_permute2f128_ps(u3, u7, 0x31));
}

// kT[c][i] = key j0 + i, component c, for i < n; 0 for n <= i < kc (kc a multiple of 8).
__attribute__((target("avx2,fma")))
static void tk_att_pack_avx2(const float *k, int64_t d, int64_t j0, int64_t n, int64_t kc, float *kT) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) {
        const float *src = k + (j0 + i) * d;
        int64_t c = 0;
        for (; c + 8 <= d; c += 8) tk_att_transpose8(src + c, d, kT + c * kc + i, kc);
        for (; c < d; c++)
            for (int64_t a = 0; a < 8; a++) kT[c * kc + i + a] = src[a * d + c];
    }
    for (; i < kc; i++) {
        if (i < n) {
            const float *src = k + (j0 + i) * d;
            for (int64_t c = 0; c < d; c++) kT[c * kc + i] = src[c];
        } else {
            for (int64_t c = 0; c < d; c++) kT[c * kc + i] = 0.0f;
        }
    }
}

// ---------------------------------------------------------------- AVX2 + FMA

#define TK_A2_KC 16

__attribute__((target("avx2,fma")))
static inline __m256 tk_exp256(__m256 x) {
    const __m256 low = _mm256_set1_ps(TK_EXP_LOW);
    __m256 zero_mask = _mm256_cmp_ps(x, low, _CMP_LT_OQ);       // -inf too; false for NaN
    x = _mm256_max_ps(low, x);                                   // NaN stays (second operand)
    __m256 fn = _mm256_round_ps(_mm256_mul_ps(x, _mm256_set1_ps(TK_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m256 r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(TK_LN2_HI), x);
    r = _mm256_fnmadd_ps(fn, _mm256_set1_ps(TK_LN2_LO), r);
    __m256 p = _mm256_set1_ps(TK_P0);
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(TK_P1));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(TK_P2));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(TK_P3));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(TK_P4));
    p = _mm256_fmadd_ps(p, r, _mm256_set1_ps(TK_P5));
    __m256 y = _mm256_add_ps(_mm256_fmadd_ps(p, _mm256_mul_ps(r, r), r), _mm256_set1_ps(1.0f));
    __m256i n = _mm256_cvtps_epi32(fn);
    __m256i n1 = _mm256_srai_epi32(n, 1), n2 = _mm256_sub_epi32(n, n1);
    const __m256i bias = _mm256_set1_epi32(127);
    __m256 s1 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n1, bias), 23));
    __m256 s2 = _mm256_castsi256_ps(_mm256_slli_epi32(_mm256_add_epi32(n2, bias), 23));
    y = _mm256_mul_ps(_mm256_mul_ps(y, s1), s2);
    return _mm256_andnot_ps(zero_mask, y);
}

__attribute__((target("avx2,fma")))
void tk_exp_f32_avx2(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 8 <= n; i += 8) _mm256_storeu_ps(y + i, tk_exp256(_mm256_loadu_ps(x + i)));
    if (i < n) {
        float a[8] = {0}, b[8];
        for (int64_t j = i; j < n; j++) a[j - i] = x[j];
        _mm256_storeu_ps(b, tk_exp256(_mm256_loadu_ps(a)));
        for (int64_t j = i; j < n; j++) y[j] = b[j - i];
    }
}

__attribute__((target("avx2,fma")))
static inline __m256i tk_att_tail_mask8(int64_t remaining) {
    return _mm256_cmpgt_epi32(_mm256_set1_epi32((int)(remaining < 8 ? remaining : 8)), _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7));
}

// Scores of `mr` rows against the KC keys of kT: s[i][0..KC) = scale · Σ_c q_i[c] kT[c][·].
__attribute__((target("avx2,fma"), always_inline))
static inline void tk_att_scores_avx2(const float *const *qr, int mr, const float *kT, int64_t d, __m256 vs,
                                      float *const *sr) {
    __m256 acc[4][2];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm256_setzero_ps();
    for (int64_t c = 0; c < d; c++) {
        __m256 k0 = _mm256_loadu_ps(kT + c * TK_A2_KC), k1 = _mm256_loadu_ps(kT + c * TK_A2_KC + 8);
        for (int i = 0; i < mr; i++) {
            __m256 b = _mm256_broadcast_ss(qr[i] + c);
            acc[i][0] = _mm256_fmadd_ps(b, k0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(b, k1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm256_storeu_ps(sr[i], _mm256_mul_ps(acc[i][0], vs));
        _mm256_storeu_ps(sr[i] + 8, _mm256_mul_ps(acc[i][1], vs));
    }
}

// Softmax numerators of s[0..L) in place; returns their sum.
__attribute__((target("avx2,fma")))
static float tk_att_softmax_avx2(float *s, int64_t L) {
    const __m256 ninf = _mm256_set1_ps(-INFINITY);
    __m256 vm = ninf;
    int64_t j = 0;
    for (; j + 8 <= L; j += 8) vm = _mm256_max_ps(vm, _mm256_loadu_ps(s + j));
    __m256 tail = _mm256_castsi256_ps(tk_att_tail_mask8(L - j));
    if (j < L) vm = _mm256_max_ps(vm, _mm256_blendv_ps(ninf, _mm256_loadu_ps(s + j), tail));
    __m128 m4 = _mm_max_ps(_mm256_castps256_ps128(vm), _mm256_extractf128_ps(vm, 1));
    m4 = _mm_max_ps(m4, _mm_movehl_ps(m4, m4));
    m4 = _mm_max_ss(m4, _mm_movehdup_ps(m4));
    const __m256 m = _mm256_broadcastss_ps(m4);
    __m256 sum = _mm256_setzero_ps();
    int64_t i = 0;
    for (; i + 8 <= L; i += 8) {
        __m256 e = tk_exp256(_mm256_sub_ps(_mm256_loadu_ps(s + i), m));
        _mm256_storeu_ps(s + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    if (i < L) {
        __m256 e = _mm256_and_ps(tail, tk_exp256(_mm256_sub_ps(_mm256_loadu_ps(s + i), m)));
        _mm256_storeu_ps(s + i, e);
        sum = _mm256_add_ps(sum, e);
    }
    __m128 s4 = _mm_add_ps(_mm256_castps256_ps128(sum), _mm256_extractf128_ps(sum, 1));
    s4 = _mm_add_ps(s4, _mm_movehl_ps(s4, s4));
    s4 = _mm_add_ss(s4, _mm_movehdup_ps(s4));
    return _mm_cvtss_f32(s4);
}

// Value mix of `mr` rows over 16 columns at c0: o_i[c0..c0+16) = inv_i · Σ_{j < len_i} p_i[j] v[j].
__attribute__((target("avx2,fma"), always_inline))
static inline void tk_att_mix16_avx2(const float *const *pr, const int64_t *len, int mr, const float *v, int64_t d,
                                     int64_t c0, float *const *orow, const float *inv) {
    __m256 acc[4][2];
    int64_t lo = len[0], hi = len[0];
    for (int i = 0; i < mr; i++) {
        acc[i][0] = acc[i][1] = _mm256_setzero_ps();
        lo = len[i] < lo ? len[i] : lo;
        hi = len[i] > hi ? len[i] : hi;
    }
    const float *vc = v + c0;
    int64_t j = 0;
    for (; j < lo; j++) {
        __m256 v0 = _mm256_loadu_ps(vc + j * d), v1 = _mm256_loadu_ps(vc + j * d + 8);
        for (int i = 0; i < mr; i++) {
            __m256 b = _mm256_broadcast_ss(pr[i] + j);
            acc[i][0] = _mm256_fmadd_ps(b, v0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(b, v1, acc[i][1]);
        }
    }
    for (; j < hi; j++) {
        __m256 v0 = _mm256_loadu_ps(vc + j * d), v1 = _mm256_loadu_ps(vc + j * d + 8);
        for (int i = 0; i < mr; i++) {
            if (j >= len[i]) continue;
            __m256 b = _mm256_broadcast_ss(pr[i] + j);
            acc[i][0] = _mm256_fmadd_ps(b, v0, acc[i][0]);
            acc[i][1] = _mm256_fmadd_ps(b, v1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) {
        __m256 s = _mm256_set1_ps(inv[i]);
        _mm256_storeu_ps(orow[i] + c0, _mm256_mul_ps(acc[i][0], s));
        _mm256_storeu_ps(orow[i] + c0 + 8, _mm256_mul_ps(acc[i][1], s));
    }
}

// The same for up to 8 columns at c0 (masked loads and stores; lanes past d are never touched).
__attribute__((target("avx2,fma"), always_inline))
static inline void tk_att_mix8_avx2(const float *const *pr, const int64_t *len, int mr, const float *v, int64_t d,
                                    int64_t c0, float *const *orow, const float *inv) {
    const __m256i mask = tk_att_tail_mask8(d - c0);
    __m256 acc[4];
    int64_t hi = 0;
    for (int i = 0; i < mr; i++) { acc[i] = _mm256_setzero_ps(); hi = len[i] > hi ? len[i] : hi; }
    const float *vc = v + c0;
    for (int64_t j = 0; j < hi; j++) {
        __m256 v0 = _mm256_maskload_ps(vc + j * d, mask);
        for (int i = 0; i < mr; i++)
            if (j < len[i]) acc[i] = _mm256_fmadd_ps(_mm256_broadcast_ss(pr[i] + j), v0, acc[i]);
    }
    for (int i = 0; i < mr; i++) _mm256_maskstore_ps(orow[i] + c0, mask, _mm256_mul_ps(acc[i], _mm256_set1_ps(inv[i])));
}

// Value mix of `mr` ∈ {4, 1} rows over all d columns: 16 columns at a time, then 8 (masked).
__attribute__((target("avx2,fma")))
static inline void tk_att_mix_rows_avx2(const float *const *pr, const int64_t *len, int mr, const float *v, int64_t d,
                                        float *const *orow, const float *inv) {
    int64_t c = 0;
    if (mr == 4) {
        for (; c + 16 <= d; c += 16) tk_att_mix16_avx2(pr, len, 4, v, d, c, orow, inv);
        for (; c < d; c += 8) tk_att_mix8_avx2(pr, len, 4, v, d, c, orow, inv);
    } else {
        for (; c + 16 <= d; c += 16) tk_att_mix16_avx2(pr, len, 1, v, d, c, orow, inv);
        for (; c < d; c += 8) tk_att_mix8_avx2(pr, len, 1, v, d, c, orow, inv);
    }
}

#define TK_ATT_NAME tk_attention_f32_avx2
#define TK_ATT_TARGET __attribute__((target("avx2,fma")))
#define TK_ATT_VEC __m256
#define TK_ATT_SET1 _mm256_set1_ps
#define TK_ATT_KC TK_A2_KC
#define TK_ATT_SCORE_ROWS 4
#define TK_ATT_SCORES tk_att_scores_avx2
#define TK_ATT_SOFTMAX tk_att_softmax_avx2
#define TK_ATT_MIX_ROWS tk_att_mix_rows_avx2
#include "attention_driver.h"
#undef TK_ATT_NAME
#undef TK_ATT_TARGET
#undef TK_ATT_VEC
#undef TK_ATT_SET1
#undef TK_ATT_KC
#undef TK_ATT_SCORE_ROWS
#undef TK_ATT_SCORES
#undef TK_ATT_SOFTMAX
#undef TK_ATT_MIX_ROWS

// ---------------------------------------------------------------- AVX-512 F

#define TK_A5_KC 32

__attribute__((target("avx512f")))
static inline __m512 tk_exp512(__m512 x) {
    const __m512 low = _mm512_set1_ps(TK_EXP_LOW);
    __mmask16 keep = _mm512_cmp_ps_mask(x, low, _CMP_NLT_UQ);    // x >= low or NaN
    x = _mm512_max_ps(low, x);                                   // NaN stays (second operand)
    __m512 fn = _mm512_roundscale_ps(_mm512_mul_ps(x, _mm512_set1_ps(TK_LOG2E)), _MM_FROUND_TO_NEAREST_INT | _MM_FROUND_NO_EXC);
    __m512 r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(TK_LN2_HI), x);
    r = _mm512_fnmadd_ps(fn, _mm512_set1_ps(TK_LN2_LO), r);
    __m512 p = _mm512_set1_ps(TK_P0);
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(TK_P1));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(TK_P2));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(TK_P3));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(TK_P4));
    p = _mm512_fmadd_ps(p, r, _mm512_set1_ps(TK_P5));
    __m512 y = _mm512_add_ps(_mm512_fmadd_ps(p, _mm512_mul_ps(r, r), r), _mm512_set1_ps(1.0f));
    // y · 2^n with a single rounding (into subnormals when the result is that small).
    return _mm512_maskz_mov_ps(keep, _mm512_scalef_ps(y, fn));
}

__attribute__((target("avx512f")))
void tk_exp_f32_avx512(const float *x, float *y, int64_t n) {
    int64_t i = 0;
    for (; i + 16 <= n; i += 16) _mm512_storeu_ps(y + i, tk_exp512(_mm512_loadu_ps(x + i)));
    if (i < n) {
        __mmask16 m = (__mmask16)((1u << (n - i)) - 1);
        _mm512_mask_storeu_ps(y + i, m, tk_exp512(_mm512_maskz_loadu_ps(m, x + i)));
    }
}

__attribute__((target("avx512f"), always_inline))
static inline void tk_att_scores_avx512(const float *const *qr, int mr, const float *kT, int64_t d, __m512 vs,
                                        float *const *sr) {
    __m512 acc[8][2];
    for (int i = 0; i < mr; i++) acc[i][0] = acc[i][1] = _mm512_setzero_ps();
    for (int64_t c = 0; c < d; c++) {
        __m512 k0 = _mm512_loadu_ps(kT + c * TK_A5_KC), k1 = _mm512_loadu_ps(kT + c * TK_A5_KC + 16);
        for (int i = 0; i < mr; i++) {
            __m512 b = _mm512_set1_ps(qr[i][c]);
            acc[i][0] = _mm512_fmadd_ps(b, k0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(b, k1, acc[i][1]);
        }
    }
    for (int i = 0; i < mr; i++) {
        _mm512_storeu_ps(sr[i], _mm512_mul_ps(acc[i][0], vs));
        _mm512_storeu_ps(sr[i] + 16, _mm512_mul_ps(acc[i][1], vs));
    }
}

__attribute__((target("avx512f")))
static float tk_att_softmax_avx512(float *s, int64_t L) {
    const __m512 ninf = _mm512_set1_ps(-INFINITY);
    __m512 vm = ninf;
    int64_t j = 0;
    for (; j + 16 <= L; j += 16) vm = _mm512_max_ps(vm, _mm512_loadu_ps(s + j));
    const __mmask16 tail = (__mmask16)((1u << ((L - j) & 15)) - 1);
    if (j < L) vm = _mm512_mask_max_ps(vm, tail, vm, _mm512_maskz_loadu_ps(tail, s + j));
    const __m512 m = _mm512_set1_ps(_mm512_reduce_max_ps(vm));
    __m512 sum = _mm512_setzero_ps();
    int64_t i = 0;
    for (; i + 16 <= L; i += 16) {
        __m512 e = tk_exp512(_mm512_sub_ps(_mm512_loadu_ps(s + i), m));
        _mm512_storeu_ps(s + i, e);
        sum = _mm512_add_ps(sum, e);
    }
    if (i < L) {
        __m512 e = _mm512_maskz_mov_ps(tail, tk_exp512(_mm512_sub_ps(_mm512_maskz_loadu_ps(tail, s + i), m)));
        _mm512_mask_storeu_ps(s + i, tail, e);
        sum = _mm512_add_ps(sum, e);
    }
    return _mm512_reduce_add_ps(sum);
}

// Value mix of `mr` rows over 64 columns at c0.
__attribute__((target("avx512f"), always_inline))
static inline void tk_att_mix64_avx512(const float *const *pr, const int64_t *len, int mr, const float *v, int64_t d,
                                       int64_t c0, float *const *orow, const float *inv) {
    __m512 acc[4][4];
    int64_t lo = len[0], hi = len[0];
    for (int i = 0; i < mr; i++) {
        acc[i][0] = acc[i][1] = acc[i][2] = acc[i][3] = _mm512_setzero_ps();
        lo = len[i] < lo ? len[i] : lo;
        hi = len[i] > hi ? len[i] : hi;
    }
    const float *vc = v + c0;
    int64_t j = 0;
    for (; j < lo; j++) {
        const float *vj = vc + j * d;
        __m512 v0 = _mm512_loadu_ps(vj), v1 = _mm512_loadu_ps(vj + 16), v2 = _mm512_loadu_ps(vj + 32), v3 = _mm512_loadu_ps(vj + 48);
        for (int i = 0; i < mr; i++) {
            __m512 b = _mm512_set1_ps(pr[i][j]);
            acc[i][0] = _mm512_fmadd_ps(b, v0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(b, v1, acc[i][1]);
            acc[i][2] = _mm512_fmadd_ps(b, v2, acc[i][2]);
            acc[i][3] = _mm512_fmadd_ps(b, v3, acc[i][3]);
        }
    }
    for (; j < hi; j++) {
        const float *vj = vc + j * d;
        __m512 v0 = _mm512_loadu_ps(vj), v1 = _mm512_loadu_ps(vj + 16), v2 = _mm512_loadu_ps(vj + 32), v3 = _mm512_loadu_ps(vj + 48);
        for (int i = 0; i < mr; i++) {
            if (j >= len[i]) continue;
            __m512 b = _mm512_set1_ps(pr[i][j]);
            acc[i][0] = _mm512_fmadd_ps(b, v0, acc[i][0]);
            acc[i][1] = _mm512_fmadd_ps(b, v1, acc[i][1]);
            acc[i][2] = _mm512_fmadd_ps(b, v2, acc[i][2]);
            acc[i][3] = _mm512_fmadd_ps(b, v3, acc[i][3]);
        }
    }
    for (int i = 0; i < mr; i++) {
        __m512 s = _mm512_set1_ps(inv[i]);
        for (int u = 0; u < 4; u++) _mm512_storeu_ps(orow[i] + c0 + 16 * u, _mm512_mul_ps(acc[i][u], s));
    }
}

// The same for up to 16 columns at c0 (masked).
__attribute__((target("avx512f"), always_inline))
static inline void tk_att_mix16_avx512(const float *const *pr, const int64_t *len, int mr, const float *v, int64_t d,
                                       int64_t c0, float *const *orow, const float *inv) {
    const int64_t w = d - c0 < 16 ? d - c0 : 16;
    const __mmask16 mask = (__mmask16)((1u << w) - 1);
    __m512 acc[4];
    int64_t hi = 0;
    for (int i = 0; i < mr; i++) { acc[i] = _mm512_setzero_ps(); hi = len[i] > hi ? len[i] : hi; }
    const float *vc = v + c0;
    for (int64_t j = 0; j < hi; j++) {
        __m512 v0 = _mm512_maskz_loadu_ps(mask, vc + j * d);
        for (int i = 0; i < mr; i++)
            if (j < len[i]) acc[i] = _mm512_fmadd_ps(_mm512_set1_ps(pr[i][j]), v0, acc[i]);
    }
    for (int i = 0; i < mr; i++) _mm512_mask_storeu_ps(orow[i] + c0, mask, _mm512_mul_ps(acc[i], _mm512_set1_ps(inv[i])));
}

__attribute__((target("avx512f")))
static inline void tk_att_mix_rows_avx512(const float *const *pr, const int64_t *len, int mr, const float *v, int64_t d,
                                          float *const *orow, const float *inv) {
    int64_t c = 0;
    if (mr == 4) {
        for (; c + 64 <= d; c += 64) tk_att_mix64_avx512(pr, len, 4, v, d, c, orow, inv);
        for (; c < d; c += 16) tk_att_mix16_avx512(pr, len, 4, v, d, c, orow, inv);
    } else {
        for (; c + 64 <= d; c += 64) tk_att_mix64_avx512(pr, len, 1, v, d, c, orow, inv);
        for (; c < d; c += 16) tk_att_mix16_avx512(pr, len, 1, v, d, c, orow, inv);
    }
}

#define TK_ATT_NAME tk_attention_f32_avx512
#define TK_ATT_TARGET __attribute__((target("avx512f")))
#define TK_ATT_VEC __m512
#define TK_ATT_SET1 _mm512_set1_ps
#define TK_ATT_KC TK_A5_KC
#define TK_ATT_SCORE_ROWS 8
#define TK_ATT_SCORES tk_att_scores_avx512
#define TK_ATT_SOFTMAX tk_att_softmax_avx512
#define TK_ATT_MIX_ROWS tk_att_mix_rows_avx512
#include "attention_driver.h"
#undef TK_ATT_NAME
#undef TK_ATT_TARGET
#undef TK_ATT_VEC
#undef TK_ATT_SET1
#undef TK_ATT_KC
#undef TK_ATT_SCORE_ROWS
#undef TK_ATT_SCORES
#undef TK_ATT_SOFTMAX
#undef TK_ATT_MIX_ROWS
#else
void tk_attention_f32_avx2(const float *q, int64_t q_token_stride, float *out, int64_t out_token_stride,
                           int64_t tokens, int64_t group, int64_t d, const float *k, const float *v,
                           int64_t first_visible, float scale, float *scratch) {
    tk_attention_f32_portable(q, q_token_stride, out, out_token_stride, tokens, group, d, k, v, first_visible, scale, scratch);
}
void tk_attention_f32_avx512(const float *q, int64_t q_token_stride, float *out, int64_t out_token_stride,
                             int64_t tokens, int64_t group, int64_t d, const float *k, const float *v,
                             int64_t first_visible, float scale, float *scratch) {
    tk_attention_f32_portable(q, q_token_stride, out, out_token_stride, tokens, group, d, k, v, first_visible, scale, scratch);
}
void tk_exp_f32_avx2(const float *x, float *y, int64_t n) { tk_exp_f32_portable(x, y, n); }
void tk_exp_f32_avx512(const float *x, float *y, int64_t n) { tk_exp_f32_portable(x, y, n); }
#endif
