// The AMX kernel body, included twice by bitpacked_amx.c: once with the tile macros mapped to
// the real instructions (tk_bitpacked_i8_amx), once mapped to the scalar tile emulator
// (tk_bitpacked_i8_amx_emulated). Everything else (unpacking, blocking, edges, the stores
// into y) is this one source, so the emulated build tests it. No include guard on purpose.
//
// The includer defines:
//   BP_AMX_NAME, BP_AMX_ATTR         the function's name and attributes (target features)
//   BP_AMX_LINKAGE                   empty or `static`
//   BP_AMX_STATE                     declares the tile state the macros use (empty for real tiles)
//   BP_TILE_LOADCONFIG(cfg)          LDTILECFG
//   BP_TILE_LOADD(t, base, stride)   TILELOADD (stride in bytes)
//   BP_TILE_STORED(t, base, stride)  TILESTORED
//   BP_TILE_ZERO(t)                  TILEZERO
//   BP_TILE_DPBSSD(c, a, b)          TDPBSSD: C[m][n] += Σ_k Σ_i A[m][4k+i] · B[k][4n+i]
//   BP_TILE_RELEASE()                TILERELEASE
//   BP_AMX_FINISH                    runs after the release (the emulator's checks)
// Tile numbers are literal constants (the instructions encode them).
//
// Tiles (all 16 rows × 64 bytes): C0..C3 = tmm0..3 (Int32 accumulators, 16 output rows × 16
// activation rows), A0, A1 = tmm4, 5 (weights: output rows ob ..< ob+16 and ob+16 ..< ob+32),
// B0, B1 = tmm6, 7 (activation rows of batch tiles bt and bt+1). C0 = A0·B0, C1 = A0·B1,
// C2 = A1·B0, C3 = A1·B1: 4 TDPBSSD per 2 A loads and 2 B loads.

#define BP_AMX_CAT_(a, b) a##b
#define BP_AMX_CAT(a, b) BP_AMX_CAT_(a, b)
#define BP_AMX_KLOOP BP_AMX_CAT(BP_AMX_NAME, _kloop)

/// The K loop of one (32 output rows, 2 batch tiles) block over `chunks` 64-input chunks: the
/// weights at `w` (row stride `wstride`), B tiles at `xb` (next chunk 1024 bytes on, next batch
/// tile `xnext` bytes on). TWO_A / TWO_B: whether the second A / B tile is in use (constants
/// after inlining, so each combination is its own straight loop).
static inline __attribute__((always_inline)) BP_AMX_ATTR void BP_AMX_KLOOP(
    BP_AMX_STATE_PARAM const int8_t *w, size_t wstride, const int8_t *xb, size_t xnext, size_t chunks,
    const int TWO_A, const int TWO_B)
{
    BP_TILE_ZERO(0);
    if (TWO_B) BP_TILE_ZERO(1);
    if (TWO_A) BP_TILE_ZERO(2);
    if (TWO_A && TWO_B) BP_TILE_ZERO(3);
    for (size_t c = 0; c < chunks; c++) {
        BP_TILE_LOADD(4, w + 64 * c, wstride);
        BP_TILE_LOADD(6, xb + 1024 * c, 64);
        BP_TILE_DPBSSD(0, 4, 6);
        if (TWO_B) {
            BP_TILE_LOADD(7, xb + xnext + 1024 * c, 64);
            BP_TILE_DPBSSD(1, 4, 7);
        }
        if (TWO_A) {
            BP_TILE_LOADD(5, w + 16 * wstride + 64 * c, wstride);
            BP_TILE_DPBSSD(2, 5, 6);
            if (TWO_B) BP_TILE_DPBSSD(3, 5, 7);
        }
    }
}

BP_AMX_LINKAGE BP_AMX_ATTR void BP_AMX_NAME(const tk_bitpacked_amx_args *a) {
    BP_AMX_STATE
    const size_t G = a->groups, half = a->half;
    const size_t chunks_total = 4 * G + 2 * half;          // 64-input chunks per row
    const size_t batch_tiles = (a->batch + 15) / 16;
    const size_t xnext = 1024 * chunks_total;              // bytes from one batch tile to the next
    const size_t wstride = bp_amx_wstride(G, half);
    int8_t *w = (int8_t *)a->scratch;
    int32_t *cbuf = (int32_t *)(w + TK_AMX_BLOCK_ROWS * wstride);  // 4 tiles of 16 × 16 Int32
    bp_amx_tilecfg cfg;
    bp_amx_config(&cfg);
    BP_TILE_LOADCONFIG(&cfg);

    for (size_t ob = a->row_begin; ob < a->row_end; ob += TK_AMX_BLOCK_ROWS) {
        const size_t nrows = a->row_end - ob < TK_AMX_BLOCK_ROWS ? a->row_end - ob : TK_AMX_BLOCK_ROWS;
        const int two_a = nrows > 16;
        // K blocks of up to TK_AMX_K_BLOCK_GROUPS full groups; the half group joins the last.
        for (size_t g0 = 0;; g0 += TK_AMX_K_BLOCK_GROUPS) {
            const size_t g1 = G - g0 > TK_AMX_K_BLOCK_GROUPS ? g0 + TK_AMX_K_BLOCK_GROUPS : G;
            const int last = g1 == G;
            const size_t chunks = 4 * (g1 - g0) + (last ? 2 * half : 0);
            // Unpack this block's weights (zero rows past the range fill the used A tiles).
            for (size_t r = 0; r < (two_a ? 32u : 16u); r++) {
                int8_t *dst = w + r * wstride;
                if (r < nrows)
                    bp_amx_unpack_row(a, ob + r, g0, g1, last && half, dst);
                else
                    memset(dst, 0, 64 * chunks);
            }
            const int8_t *xk = a->x_tiles + 1024 * (4 * g0);
            for (size_t bt = 0; bt < batch_tiles; bt += 2) {
                const int two_b = bt + 1 < batch_tiles;
                const int8_t *xb = xk + xnext * bt;
                switch (2 * two_a + two_b) {
                case 3: BP_AMX_KLOOP(BP_AMX_STATE_ARG w, wstride, xb, xnext, chunks, 1, 1); break;
                case 2: BP_AMX_KLOOP(BP_AMX_STATE_ARG w, wstride, xb, xnext, chunks, 1, 0); break;
                case 1: BP_AMX_KLOOP(BP_AMX_STATE_ARG w, wstride, xb, xnext, chunks, 0, 1); break;
                default: BP_AMX_KLOOP(BP_AMX_STATE_ARG w, wstride, xb, xnext, chunks, 0, 0); break;
                }
                BP_TILE_STORED(0, cbuf, 64);
                if (two_b) BP_TILE_STORED(1, cbuf + 256, 64);
                if (two_a) BP_TILE_STORED(2, cbuf + 512, 64);
                if (two_a && two_b) BP_TILE_STORED(3, cbuf + 768, 64);
                bp_amx_store_y(a, cbuf, ob, nrows, 16 * bt, two_b, g0 == 0);
            }
            if (last) break;
        }
    }
    BP_TILE_RELEASE();
    BP_AMX_FINISH
}

#undef BP_AMX_KLOOP
