#ifndef CKERNELS_BITPACKED_AMX_H
#define CKERNELS_BITPACKED_AMX_H

// The AMX (Intel Advanced Matrix Extensions, TDPBSSD) Int8 product of the `bitpacked` backend,
// for batches large enough to fill tiles. It reads the same 2-bit layout as the other variants
// (see bitpacked.h); design notes in docs/performance/amx.md.
//
// Operands of TDPBSSD C[m][n] += Σ_k A[m][4k+i] · B[k][4n+i] (signed bytes, Int32 accumulate):
//   A = weights: 16 output rows × 64 consecutive inputs, unpacked from 2-bit codes to signed
//       Int8 (−1, 0, +1) into per-thread scratch, row-major (no transposition needed).
//   B = activations in VNNI layout: 16 activation rows (n) × 64 inputs, stored as 16 rows of
//       64 bytes, row k holding x[n][64c + 4k + i] at byte 4n + i. Built once per call by
//       tk_bitpacked_amx_pack_x (shared read-only by every thread).
//   C = 16 output rows × 16 activation rows of Int32, transposed into y when stored.
// Both operands are signed, so no Σx correction is needed: the sums are exact W·x.
//
// Two builds of the same kernel source (bitpacked_amx_impl.h):
//   tk_bitpacked_i8_amx           real tile instructions; call only where
//                                 tk_amx_os_granted() returned 1 (CPUID AMX-TILE and AMX-INT8,
//                                 the OS granted the tile state) and AVX-512 F/BW is present;
//   tk_bitpacked_i8_amx_emulated  the same code with every tile instruction replaced by a
//                                 scalar emulator of the tile register file (needs AVX-512 F/BW
//                                 only, for the shared unpacking code); for tests.

#include <stddef.h>
#include <stdint.h>

/// Tile geometry: 16 rows × 64 bytes for every tile.
#define TK_AMX_TILE_ROWS 16
#define TK_AMX_TILE_BYTES 64
/// Output rows per block (two A tiles) and activation rows per block (two B tiles).
#define TK_AMX_BLOCK_ROWS 32
/// Full groups (256 inputs each) unpacked per K block: 8192 inputs, so the weight scratch of a
/// block is at most 32 × (8192 + 64) bytes ≈ 258 KiB (in L2) whatever inFeatures is.
#define TK_AMX_K_BLOCK_GROUPS 32

typedef struct {
    const uint8_t *weights;   ///< packed tiles of 4 rows (bitpacked.h)
    size_t row_bytes;         ///< 64 · groups + 32 · half
    size_t groups;            ///< full 64-byte groups per row
    size_t half;              ///< 1 when a 32-byte half group ends each row
    size_t rows;              ///< all rows of the matrix (outFeatures)
    size_t row_begin, row_end;///< rows this call writes (any range; blocks of 32 from row_begin)
    size_t batch;             ///< activation rows t = 0 ..< batch
    const int8_t *x_tiles;    ///< tk_bitpacked_amx_pack_x's output for this batch
    int32_t *y;               ///< y[t · y_stride + o] = Σ_i W[o, i] · x[t, i]
    size_t y_stride;
    void *scratch;            ///< tk_bitpacked_amx_scratch_bytes(groups, half) bytes, 64-byte aligned, per thread
} tk_bitpacked_amx_args;

/// Bytes of tk_bitpacked_amx_pack_x's output: ⌈batch/16⌉ · (padded_in / 64) tiles of 1 KiB.
size_t tk_bitpacked_amx_x_bytes(size_t batch, size_t padded_in);

/// Rearranges activations x[t · x_stride + i] (i < in, t < batch) into B tiles: tile (b, c)
/// at byte 1024 · (b · padded_in/64 + c) holds rows t = 16b ..< 16b + 16 and inputs
/// 64c ..< 64c + 64 in VNNI layout (see above); positions with t ≥ batch or i ≥ in are zero.
/// padded_in is a multiple of 64 (the packed matrix's paddedInFeatures). AVX-512 (16 × 16 transposes
/// of 32-bit lanes, bitpacked_pack.h); a scalar loop off x86-64.
void tk_bitpacked_amx_pack_x(const int8_t *x, size_t x_stride, size_t in, size_t batch, size_t padded_in,
                             int8_t *dst);

/// Per-thread scratch bytes for a matrix with `groups` full groups and `half` half groups.
size_t tk_bitpacked_amx_scratch_bytes(size_t groups, size_t half);

/// The real AMX kernel (loads its tile configuration, releases the tiles before returning).
void tk_bitpacked_i8_amx(const tk_bitpacked_amx_args *args);
/// The same kernel on the scalar tile emulator (for tests on machines without AMX).
void tk_bitpacked_i8_amx_emulated(const tk_bitpacked_amx_args *args);

/// Counters of the tile emulator, over the whole process (for tests): tile configurations
/// loaded and released, TDPBSSD executed, and faults (an operation on an unconfigured tile,
/// operand shapes TDPBSSD would reject, a function returning with its tiles not released).
typedef struct {
    uint64_t configs, releases, dpbssd, faults;
} tk_amx_emulator_stats;
tk_amx_emulator_stats tk_amx_emulator_stats_read(void);

// Whether this process may run the real kernel: tk_amx_os_granted() in cpu_features.h.

#endif
