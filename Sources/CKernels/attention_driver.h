// The x86 driver of the blocked attention kernel (packing, row blocks, softmax, value mix over the
// rows of one KV head), included once per instruction set by attention.c, as
// bitpacked_amx_impl.h is by bitpacked_amx.c: the row bookkeeping is this one source, the vector
// work is the includer's. No include guard on purpose.
//
// The includer defines:
//   TK_ATT_NAME                 the entry point's name (tk_attention_f32_avx2, ...)
//   TK_ATT_TARGET               its target attribute
//   TK_ATT_VEC, TK_ATT_SET1     the score scale's vector type and its broadcast
//   TK_ATT_KC                   keys per packed chunk (≤ TK_ATT_KC_MAX)
//   TK_ATT_SCORE_ROWS           the widest row block of the score tile: 8 or 4
//   TK_ATT_SCORES(qr, mr, kT, d, vs, sr)   scores of mr rows (always inlined; mr is a constant)
//   TK_ATT_SOFTMAX(s, L)                   softmax numerators in place, returns their sum
//   TK_ATT_MIX_ROWS(pr, len, mr, v, d, orow, inv)   value mix of mr ∈ {4, 1} rows over all d columns
//
// A row's results do not depend on the block it is computed in, so the blocking below is free to
// differ between instruction sets.

TK_ATT_TARGET
void TK_ATT_NAME(const float *q, int64_t q_token_stride, float *out, int64_t out_token_stride,
                 int64_t tokens, int64_t group, int64_t d, const float *k, const float *v,
                 int64_t first_visible, float scale, float *scratch) {
    const tk_att_layout l = tk_att_layout_of(tokens, group, d, first_visible);
    const int64_t rows = l.rows, longest = l.longest, lpad = l.lpad;
    float *kT = scratch, *S = scratch + l.scores, *inv = scratch + l.inverses;
    const TK_ATT_VEC vs = TK_ATT_SET1(scale);
    const float *qr[8];
    float *sr[8], *orow[4];
    const float *pr[4];
    int64_t len[4];

// Row block [r, r + MR) of the scores for the chunk at j0, unless even its last row (the one that
// sees the most keys) sees none of the chunk.
#define TK_ATT_SCORE_BLOCKS(MR)                                                                  \
    for (; r + (MR) <= rows; r += (MR)) {                                                       \
        if (j0 >= first_visible + (r + (MR) - 1) / group) continue;                             \
        for (int i = 0; i < (MR); i++) {                                                        \
            const int64_t t = (r + i) / group, h = (r + i) % group;                             \
            qr[i] = q + t * q_token_stride + h * d;                                             \
            sr[i] = S + (r + i) * lpad + j0;                                                    \
        }                                                                                       \
        TK_ATT_SCORES(qr, (MR), kT, d, vs, sr);                                                 \
    }
    // Scores: each packed key chunk is used by every row that sees any of it.
    for (int64_t j0 = 0; j0 < longest; j0 += TK_ATT_KC) {
        const int64_t n = longest - j0 < TK_ATT_KC ? longest - j0 : TK_ATT_KC;
        tk_att_pack_avx2(k, d, j0, n, TK_ATT_KC, kT);
        int64_t r = 0;
#if TK_ATT_SCORE_ROWS >= 8
        TK_ATT_SCORE_BLOCKS(8)
#endif
        TK_ATT_SCORE_BLOCKS(4)
        TK_ATT_SCORE_BLOCKS(1)
    }
#undef TK_ATT_SCORE_BLOCKS
    for (int64_t r = 0; r < rows; r++) inv[r] = 1.0f / TK_ATT_SOFTMAX(S + r * lpad, first_visible + r / group);

// Row block [r, r + MR) of the value mix, each row up to its own visible length.
#define TK_ATT_MIX_BLOCKS(MR)                                                                    \
    for (; r + (MR) <= rows; r += (MR)) {                                                       \
        for (int i = 0; i < (MR); i++) {                                                        \
            const int64_t t = (r + i) / group, h = (r + i) % group;                             \
            pr[i] = S + (r + i) * lpad;                                                         \
            len[i] = first_visible + t;                                                         \
            orow[i] = out + t * out_token_stride + h * d;                                       \
        }                                                                                       \
        TK_ATT_MIX_ROWS(pr, len, (MR), v, d, orow, inv + r);                                    \
    }
    int64_t r = 0;
    TK_ATT_MIX_BLOCKS(4)
    TK_ATT_MIX_BLOCKS(1)
#undef TK_ATT_MIX_BLOCKS
}
