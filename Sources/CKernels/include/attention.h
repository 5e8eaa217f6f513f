#ifndef CKERNELS_ATTENTION_H
#define CKERNELS_ATTENTION_H

#include <stdint.h>

// Causal attention of a block of query rows that share one key/value head: the scores
// (Q·Kᵀ · scale), their softmax and the value mix, for every row at once, so that each key and
// value row loaded is used by all the rows of the block.
//
// Rows. The block holds `tokens` consecutive tokens times `group` query heads (the heads that
// share this KV head). Row (t, h), t < tokens, h < group, reads its query at
// `q + t * q_token_stride + h * d`, writes its output at `out + t * out_token_stride + h * d`,
// and sees the keys and values of positions 0 ..< first_visible + t (first_visible >= 1).
//
// Keys and values: `k`, `v` are this head's rows, position j at `k + j * d` (`v + j * d`);
// nothing at or past position first_visible + tokens - 1 is read.
//
// Reproducibility. A row's output depends only on its query, its own visible length and the
// keys and values it sees, never on the other rows of the block: every score is one
// fixed-order chain over the head dimension, the softmax reduces in fixed lanes over key chunks
// that start at position 0, and the value mix is one chain over positions per output element,
// bounded by the row's own length (keys past it are never multiplied, so a NaN or inf there
// cannot reach the row). Prefill in one call, token-by-token decoding and any split of rows
// over calls or threads therefore give the same bits, for a given variant. Variants differ in
// their vector width and need not agree bit for bit.
//
// Scratch: `tk_attention_scratch_floats(tokens, group, d, first_visible)` Floats (any
// alignment), not shared with another concurrent call.

/// Floats of scratch one call needs (the same for every variant).
int64_t tk_attention_scratch_floats(int64_t tokens, int64_t group, int64_t d, int64_t first_visible);

void tk_attention_f32_portable(const float *q, int64_t q_token_stride, float *out, int64_t out_token_stride,
                               int64_t tokens, int64_t group, int64_t d, const float *k, const float *v,
                               int64_t first_visible, float scale, float *scratch);
void tk_attention_f32_avx2(const float *q, int64_t q_token_stride, float *out, int64_t out_token_stride,
                           int64_t tokens, int64_t group, int64_t d, const float *k, const float *v,
                           int64_t first_visible, float scale, float *scratch);
void tk_attention_f32_avx512(const float *q, int64_t q_token_stride, float *out, int64_t out_token_stride,
                             int64_t tokens, int64_t group, int64_t d, const float *k, const float *v,
                             int64_t first_visible, float scale, float *scratch);

/// y[i] = exp(x[i]) with the softmax's exponential (range reduction + degree-5 polynomial), for
/// x <= 0: relative error within a few ulp where the result is normal (x >= -87.3), absolute
/// error within about one subnormal step below; exp(-inf) = 0, NaN stays NaN. Exposed for tests.
void tk_exp_f32_portable(const float *x, float *y, int64_t n);
void tk_exp_f32_avx2(const float *x, float *y, int64_t n);
void tk_exp_f32_avx512(const float *x, float *y, int64_t n);

#endif
