// The batched Int8 product of the `avx512vnni` variant of `bitpacked` (declared in
// include/bitpacked.h; design and measurements in docs/performance/bitpacked.md).
//
// The AMX kernel's operands (bitpacked_amx.c) on vpdpbusd:
//   - x is packed once per call in the VNNI layout (tiles of 16 activation rows, 4 consecutive
//     inputs of each row in one 32-bit lane) and biased to unsigned (x + 128), because
//     vpdpbusd's register operand is the unsigned one;
//   - each thread unpacks a super-block of its rows to byte codes c = w + 1 ∈ {0, 1, 2} (shift
//     and mask: a 2-bit field is 64 consecutive weights, no transposition; the codes are the
//     signed operand), in blocks of up to 12 rows laid out [in/128][rows][128] so that every
//     code of a block is a constant displacement from one pointer, and Σ c per row on the way;
//   - the micro-kernel holds 12 rows × 32 activation rows (24 zmm accumulators, one lane per
//     activation row): per 4 inputs, 2 activation vectors are loaded and each row's 4 weights
//     are a {1to16} broadcast memory operand of one vpdpbusd per vector;
//   - acc = Σ (x + 128) · c = W·x + 128 · Σw + Σ (x + 128), so y = acc − 128 · (Σc − padded_in)
//     − Σ (x + 128): one correction per row (Σc, from the unpacking) and one per activation row
//     (stored by the packer after each tile), written through a small buffer (the tile is
//     [row][activation row], y is [activation row][row]).
//
// Exactness: vpdpbusd multiplies u8 × s8 exactly and adds without saturation into Int32 lanes
// (wrapping); the correction is Int32 arithmetic modulo 2^32 too. The true result
// |W·x| ≤ 128 · in < 2^31 fits, so the wrapped result is the exact one.

#include "bitpacked.h"

#include <string.h>

#include "bitpacked_pack.h"

/// Rows per micro-kernel block (the last block of a super-block may have 4 or 8).
#define BP_GEMM_R 12
/// Bytes of unpacked weights a super-block aims for (so they stay in L2 with an activation
/// block beside them); always at least one block of BP_GEMM_R rows.
#define BP_GEMM_SUPER_BYTES (192 * 1024)

static size_t bp_gemm_padded_in(size_t groups, size_t half) { return 256 * groups + 128 * half; }

/// Rows per super-block: a multiple of BP_GEMM_R.
static size_t bp_gemm_super_rows(size_t padded_in) {
    const size_t r = BP_GEMM_SUPER_BYTES / (padded_in ? padded_in : 1) / BP_GEMM_R * BP_GEMM_R;
    return r < BP_GEMM_R ? BP_GEMM_R : r;
}

/// Bytes from one packed tile of 16 activation rows to the next: the rows, then their 16 sums.
static size_t bp_gemm_xtile(size_t padded_in) { return 16 * padded_in + 64; }

size_t tk_bitpacked_gemm_x_bytes(size_t batch, size_t padded_in) { return (batch + 15) / 16 * bp_gemm_xtile(padded_in); }

size_t tk_bitpacked_gemm_scratch_bytes(size_t groups, size_t half) {
    const size_t p = bp_gemm_padded_in(groups, half), rs = bp_gemm_super_rows(p);
    // Codes, Σc per row, the [12][32] output buffer.
    return rs * p + 4 * rs + 4 * BP_GEMM_R * 32 + 64;
}

#if defined(__x86_64__)
#include <immintrin.h>

#define TK_INLINE static inline __attribute__((always_inline))
#define VNNI __attribute__((target("avx512f,avx512bw,avx512vl,avx512vnni")))

void VNNI tk_bitpacked_gemm_pack_x(const int8_t *x, size_t x_stride, size_t in, size_t batch, size_t padded_in,
                                   uint8_t *dst) {
    // 16 × 16 transposes of 32-bit lanes (bitpacked_pack.h), biased by 0x80; the tile's 16 sums
    // Σ (x + 128) over padded_in inputs follow its rows.
    const size_t tiles = (batch + 15) / 16;
    for (size_t b = 0; b < tiles; b++) {
        uint8_t *tile = dst + bp_gemm_xtile(padded_in) * b;
        const size_t rows = batch - 16 * b < 16 ? batch - 16 * b : 16;
        bp_pack_tile16(x + 16 * b * x_stride, x_stride, rows, in, padded_in, 0x80, tile, (uint32_t *)(tile + 16 * padded_in));
    }
}

/// Unpacks the 4-row tile of rows o ..< o + h into the super-block scratch as codes
/// c = w + 1 (0, 1, 2: shift and mask, no subtraction): row o + r goes to dst[r] (its block's
/// base plus 128 · its index in the block), 128-input chunks `kstride[r]` bytes apart; its
/// Σ c over the padded row to csum[r].
TK_INLINE VNNI void bp_gemm_unpack_tile(const tk_bitpacked_gemm_args *a, size_t o, size_t h, int8_t *const dst[4],
                                        const size_t kstride[4], int32_t *csum) {
    const uint8_t *base = a->weights + o * a->row_bytes;  // o is a multiple of 4: the tile's start
    const size_t G = a->groups;
    const __m512i m3 = _mm512_set1_epi8(3), one = _mm512_set1_epi8(1);
    __m512i sum[4];
    for (size_t r = 0; r < 4; r++) sum[r] = _mm512_setzero_si512();
    for (size_t g = 0; g < G; g++) {
        for (size_t r = 0; r < h; r++) {
            const __m512i b = _mm512_loadu_si512((const void *)(base + 64 * (h * g + r)));
            int8_t *d = dst[r] + 2 * g * kstride[r];
            const __m512i w0 = _mm512_and_si512(b, m3);
            const __m512i w1 = _mm512_and_si512(_mm512_srli_epi16(b, 2), m3);
            const __m512i w2 = _mm512_and_si512(_mm512_srli_epi16(b, 4), m3);
            const __m512i w3 = _mm512_and_si512(_mm512_srli_epi16(b, 6), m3);
            _mm512_storeu_si512((void *)d, w0);
            _mm512_storeu_si512((void *)(d + 64), w1);
            _mm512_storeu_si512((void *)(d + kstride[r]), w2);
            _mm512_storeu_si512((void *)(d + kstride[r] + 64), w3);
            sum[r] = _mm512_dpbusd_epi32(sum[r], one, _mm512_add_epi8(_mm512_add_epi8(w0, w1), _mm512_add_epi8(w2, w3)));
        }
    }
    if (a->half) {
        for (size_t r = 0; r < h; r++) {
            // 32 bytes; field k holds inputs 32k ..< 32k + 32 of the half group: fields 0 and 1
            // make the first 64 inputs, fields 2 and 3 the next 64.
            const __m256i b = _mm256_loadu_si256((const __m256i *)(base + 64 * h * G + 32 * r));
            const __m512i lo = _mm512_inserti64x4(_mm512_castsi256_si512(b), _mm256_srli_epi16(b, 2), 1);
            const __m512i hi =
                _mm512_inserti64x4(_mm512_castsi256_si512(_mm256_srli_epi16(b, 4)), _mm256_srli_epi16(b, 6), 1);
            int8_t *d = dst[r] + 2 * G * kstride[r];
            const __m512i w0 = _mm512_and_si512(lo, m3);
            const __m512i w1 = _mm512_and_si512(hi, m3);
            _mm512_storeu_si512((void *)d, w0);
            _mm512_storeu_si512((void *)(d + 64), w1);
            sum[r] = _mm512_dpbusd_epi32(sum[r], one, _mm512_add_epi8(w0, w1));
        }
    }
    for (size_t r = 0; r < h; r++) csum[r] = _mm512_reduce_add_epi32(sum[r]);
}

/// The micro-kernel: R rows (codes at w, [kchunks][R][128]) × 16 · NV activation rows (the
/// packed tiles at x0 and x0 + xnext), over kchunks 128-input chunks: acc = Σ (x + 128) · c.
/// With c = w + 1: Σ (x + 128) · c = W·x + 128 · Σw + Σ (x + 128), and Σw = Σc − padded_in.
/// Writes acc − Σ (x + 128) − 128 · Σc + 128 · padded_in to out[r · 32 + t] (t < 16 · NV).
TK_INLINE VNNI void bp_gemm_block(const int8_t *w, const int32_t *csum, const uint8_t *x0, size_t xnext,
                                  size_t kchunks, const uint8_t *pf, int32_t *out, const int R, const int NV) {
    __m512i acc[BP_GEMM_R][2];
    for (int r = 0; r < R; r++)
        for (int v = 0; v < NV; v++) acc[r][v] = _mm512_setzero_si512();
    const uint8_t *x1 = x0 + xnext;
    for (size_t kc = 0; kc < kchunks; kc++) {
        const int8_t *wk = w + (size_t)R * 128 * kc;
        const uint8_t *xa = x0 + 2048 * kc, *xb = x1 + 2048 * kc;
        // 8 lines of the next super-block's packed weights towards L2 per 32 steps (see the caller).
        for (int l = 0; l < 8; l++) _mm_prefetch((const char *)(pf + 512 * kc + 64 * l), _MM_HINT_T1);
#pragma clang loop unroll_count(2)
        for (int s = 0; s < 32; s++) {
            const __m512i xv0 = _mm512_loadu_si512((const void *)(xa + 64 * s));
            const __m512i xv1 = NV > 1 ? _mm512_loadu_si512((const void *)(xb + 64 * s)) : xv0;
            for (int r = 0; r < R; r++) {
                int32_t wv;
                memcpy(&wv, wk + 128 * r + 4 * s, 4);
                const __m512i wb = _mm512_set1_epi32(wv);
                acc[r][0] = _mm512_dpbusd_epi32(acc[r][0], xv0, wb);
                if (NV > 1) acc[r][1] = _mm512_dpbusd_epi32(acc[r][1], xv1, wb);
            }
        }
    }
    const size_t P = 128 * kchunks;
    __m512i xs[2];
    xs[0] = _mm512_loadu_si512((const void *)(x0 + 16 * P));
    xs[1] = NV > 1 ? _mm512_loadu_si512((const void *)(x1 + 16 * P)) : xs[0];
    for (int r = 0; r < R; r++) {
        const __m512i c = _mm512_set1_epi32((int32_t)(((uint32_t)csum[r] - (uint32_t)P) << 7));
        for (int v = 0; v < NV; v++)
            _mm512_storeu_si512((void *)(out + 32 * r + 16 * v),
                                _mm512_sub_epi32(acc[r][v], _mm512_add_epi32(c, xs[v])));
    }
}

void VNNI tk_bitpacked_i8_avx512vnni_gemm(const tk_bitpacked_gemm_args *a) {
    const size_t P = bp_gemm_padded_in(a->groups, a->half), kchunks = P / 128;
    const size_t RS = bp_gemm_super_rows(P);
    const size_t tiles = (a->batch + 15) / 16, xtile = bp_gemm_xtile(P);
    int8_t *wbuf = (int8_t *)a->scratch;
    int32_t *csum = (int32_t *)(wbuf + RS * P);
    int32_t *out = csum + RS;
    for (size_t o0 = a->row_begin; o0 < a->row_end; o0 += RS) {
        const size_t n = a->row_end - o0 < RS ? a->row_end - o0 : RS;
        const size_t blocks = (n + BP_GEMM_R - 1) / BP_GEMM_R;
        // Rows of the last block rounded up to 4 (a zero row past the end costs less than a
        // third kernel shape); rows past n are zero weights with Σw = 0.
        const size_t last_rows = n - BP_GEMM_R * (blocks - 1), last_r = (last_rows + 3) / 4 * 4;
        for (size_t o = o0; o < o0 + n; o += 4) {
            const size_t h = a->rows - o < 4 ? a->rows - o : 4;
            int8_t *dst[4];
            size_t kstride[4];
            for (size_t r = 0; r < 4; r++) {
                const size_t i = o - o0 + r, j = i / BP_GEMM_R;
                const size_t rb = j + 1 == blocks ? last_r : BP_GEMM_R;
                dst[r] = wbuf + BP_GEMM_R * P * j + 128 * (i - BP_GEMM_R * j);
                kstride[r] = 128 * rb;
            }
            bp_gemm_unpack_tile(a, o, h, dst, kstride, csum + (o - o0));
        }
        for (size_t i = n; i < BP_GEMM_R * (blocks - 1) + last_r; i++) {
            // Zero rows filling the last block (only when rows ends inside it).
            const size_t j = blocks - 1;
            int8_t *d = wbuf + BP_GEMM_R * P * j + 128 * (i - BP_GEMM_R * j);
            for (size_t kc = 0; kc < kchunks; kc++) memset(d + 128 * last_r * kc, 0, 128);
            csum[i] = 0;
        }
        // While this super-block computes, its block calls prefetch the next one's packed
        // weights (contiguous: tiles of 4 rows) into L2, 512 · kchunks bytes per call, so that
        // the next unpacking does not wait for L3 or DRAM. Past the next super-block's end the
        // calls prefetch its last line again (prefetches never fault, but stay in range).
        const uint8_t *pf_begin = a->weights + (o0 + n) * a->row_bytes;
        const size_t next_rows = o0 + n >= a->row_end ? 0 : (a->row_end - o0 - n < RS ? a->row_end - o0 - n : RS);
        const size_t pf_bytes = next_rows * a->row_bytes, pf_step = 512 * kchunks;
        size_t pf_off = 0;
        for (size_t tb = 0; tb < tiles; tb += 2) {
            const int nv = tb + 1 < tiles ? 2 : 1;
            const uint8_t *xt = a->x_packed + xtile * tb;
            const size_t t0 = 16 * tb, tn = a->batch - t0 < 16 * (size_t)nv ? a->batch - t0 : 16 * (size_t)nv;
            for (size_t j = 0; j < blocks; j++) {
                const int8_t *w = wbuf + BP_GEMM_R * P * j;
                const int32_t *ws = csum + BP_GEMM_R * j;
                const size_t rb = j + 1 == blocks ? last_r : BP_GEMM_R;
                const uint8_t *pf = pf_off + pf_step <= pf_bytes ? pf_begin + pf_off : a->weights;
                pf_off += pf_step;
                switch (rb * 2 + (size_t)nv) {
                case 12 * 2 + 2: bp_gemm_block(w, ws, xt, xtile, kchunks, pf, out, 12, 2); break;
                case 12 * 2 + 1: bp_gemm_block(w, ws, xt, xtile, kchunks, pf, out, 12, 1); break;
                case 8 * 2 + 2: bp_gemm_block(w, ws, xt, xtile, kchunks, pf, out, 8, 2); break;
                case 8 * 2 + 1: bp_gemm_block(w, ws, xt, xtile, kchunks, pf, out, 8, 1); break;
                case 4 * 2 + 2: bp_gemm_block(w, ws, xt, xtile, kchunks, pf, out, 4, 2); break;
                default: bp_gemm_block(w, ws, xt, xtile, kchunks, pf, out, 4, 1); break;
                }
                const size_t ob = o0 + BP_GEMM_R * j;
                const size_t nr = o0 + n - ob < rb ? o0 + n - ob : rb;
                for (size_t t = 0; t < tn; t++) {
                    int32_t *yr = a->y + (t0 + t) * a->y_stride + ob;
                    for (size_t r = 0; r < nr; r++) yr[r] = out[32 * r + t];
                }
            }
        }
    }
}

#else  // not x86-64: Swift never selects these (the avx512vnni variant needs x86-64).

void tk_bitpacked_gemm_pack_x(const int8_t *x, size_t x_stride, size_t in, size_t batch, size_t padded_in,
                              uint8_t *dst) {
    (void)x; (void)x_stride; (void)in; (void)batch; (void)padded_in; (void)dst;
}
void tk_bitpacked_i8_avx512vnni_gemm(const tk_bitpacked_gemm_args *a) { (void)a; }

#endif
