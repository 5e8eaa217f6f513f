import CKernels
import TensorCore

/// The C inner loops of the RSR kernels, chosen once per element type and permutation width
/// from the CPU's features (AVX-512 F/BW/VL variants, else portable C).
enum RSROps {
    static let avx512 = RSRVariant.best == .avx512
    static let floatNarrow = tk_rsr_select(0, 0, avx512 ? 1 : 0)
    static let floatWide = tk_rsr_select(0, 1, avx512 ? 1 : 0)
    static let intNarrow = tk_rsr_select(1, 0, avx512 ? 1 : 0)
    static let intWide = tk_rsr_select(1, 1, avx512 ? 1 : 0)

    static func table(integer: Bool, wide: Bool) -> tk_rsr_ops {
        integer ? (wide ? intWide : intNarrow) : (wide ? floatWide : floatNarrow)
    }

    /// Batch lanes per tile: 64 (four AVX-512 registers per accumulator set). Narrower tiles
    /// for wide inputs (16 lanes so that a Float tile stays within 512 KiB at in = 6912) looked
    /// better in a segment-sum microbenchmark but made the whole product slower (2560×6912,
    /// batch 64, Float: 21.5–24.7 ms against 12.4–16.6 ms, four alternating runs): the per-tile
    /// fold is latency-bound with one accumulator vector and the per-segment overhead repeats
    /// per tile.
    static func tileWidth(inFeatures: Int, elementBytes: Int) -> Int { 64 }
}

/// A raw pointer that may cross into `Parallel.forEachChunk` closures.
struct RawSendable: @unchecked Sendable {
    let pointer: UnsafeMutableRawPointer
}

extension RSRKernel {
    /// One product for either element path. Sums and outputs are 4 bytes (Float, or Int32 on the
    /// Int8 path); batch-1 Int8 activations are widened to Int32 once per call (the gather reads
    /// 4 bytes), batched ones stay Int8 in the transposed copy.
    func run(integer: Bool, x: UnsafeRawPointer, batch: Int, y: UnsafeMutableRawPointer, table: UnsafeRawPointer?) {
        let n = inFeatures
        let wide = indexes[0].usesWidePermutation
        let ops = RSROps.table(integer: integer, wide: wide)
        if batch == 1 {
            var activations = x
            if integer {
                let w = ThreadScratch.buffer(.input, of: Int32.self, count: n)
                let x8 = x.assumingMemoryBound(to: Int8.self)
                for i in 0..<n { w[i] = Int32(x8[i]) }
                activations = UnsafeRawPointer(w)
            }
            vectorProduct(ops: ops, integer: integer, x: activations, y: y, table: table)
        } else {
            batchProduct(ops: ops, integer: integer, x: x, batch: batch, y: y, table: table)
        }
    }

    /// The block product into `yt` (rows × width): fold or enumeration, `subtract` for B⁻.
    @inline(__always)
    private func blockProduct(ops: tk_rsr_ops, radix: Int, rows: Int, codes: Int, width: Int,
                              u: UnsafeMutableRawPointer, yt: UnsafeMutableRawPointer,
                              table: UnsafeRawPointer?, subtract: Bool) {
        let sub: Int32 = subtract ? 1 : 0
        switch variant {
        case .rsrPlusPlus:
            if radix == 3 {
                ops.fold3!(u, Int64(rows), Int64(width), yt, sub)
            } else {
                ops.fold2!(u, Int64(rows), Int64(width), yt, sub)
            }
        case .rsr:
            // The last rows of the full table are the short block's table (see RSRReference).
            let full = codeCount
            let rowsTable = table! + (blockHeight - rows) * full * 4
            ops.enumerate!(u, rowsTable, Int64(full), Int64(rows), Int64(codes), Int64(width), yt, sub)
        }
    }

    /// Batch 1: prefix sums of the gathered activations, segment sums as differences at the
    /// segment starts, then the block product.
    private func vectorProduct(ops: tk_rsr_ops, integer: Bool, x: UnsafeRawPointer,
                               y: UnsafeMutableRawPointer, table: UnsafeRawPointer?) {
        let n = inFeatures, k = blockHeight, scale = self.scale
        let first = indexes[0]
        let radix = first.radix, codeCount = first.codeCount, entry = first.permutationEntryBytes
        let xs = RawSendable(pointer: UnsafeMutableRawPointer(mutating: x))
        let ys = RawSendable(pointer: y)
        let tab = table.map { RawSendable(pointer: UnsafeMutableRawPointer(mutating: $0)) }
        Parallel.forEachChunk(count: first.blockCount, threads: context.threads, costPerItem: n * k) { blocks in
            // This chunk's thread's own scratch (a worker thread's, or the caller's when inline).
            let prefixBuffer = ThreadScratch.buffer(.work0, byteCount: (n &+ 17) &* 4)
            let u = ThreadScratch.buffer(.work1, byteCount: codeCount &* 4)
            let yt = ThreadScratch.buffer(.work2, byteCount: k &* 4)
            for t in blocks {
                let rows = first.rows(ofBlock: t), codes = first.codes(ofBlock: t)
                for part in 0..<indexes.count {
                    let index = indexes[part]
                    let starts = index.startsPointer(block: t)
                    // Columns before starts[1] have code 0: they are never gathered.
                    let skip = Int(starts[1])
                    // Shifted so that the 16-wide stores from prefix[skip + 1] on are 64-byte aligned.
                    let prefix = prefixBuffer + ((16 - ((skip + 1) & 15)) & 15) * 4
                    ops.prefix!(UnsafeRawPointer(xs.pointer), index.permutationPointer(block: t) + skip * entry,
                                Int64(n - skip), prefix + skip * 4)
                    ops.diff!(UnsafeRawPointer(prefix), starts, Int64(codes), u)
                    blockProduct(ops: ops, radix: radix, rows: rows, codes: codes, width: 1, u: u, yt: yt,
                                 table: tab.map { UnsafeRawPointer($0.pointer) }, subtract: part > 0)
                }
                if integer {
                    let src = yt.assumingMemoryBound(to: Int32.self)
                    let dst = ys.pointer.assumingMemoryBound(to: Int32.self) + t * k
                    for r in 0..<rows { dst[r] = src[r] }
                } else {
                    let src = yt.assumingMemoryBound(to: Float.self)
                    let dst = ys.pointer.assumingMemoryBound(to: Float.self) + t * k
                    for r in 0..<rows { dst[r] = src[r] * scale }
                }
            }
        }
    }

    /// Batch > 1: activations transposed once to feature-major (`in × width`, width = batch
    /// rounded up to 16, zero-padded); per block and tile of ≤ 64 batch lanes, segment sums of
    /// whole tile rows, the block product on tile rows, and the outputs written back row-major.
    private func batchProduct(ops: tk_rsr_ops, integer: Bool, x: UnsafeRawPointer, batch: Int,
                              y: UnsafeMutableRawPointer, table: UnsafeRawPointer?) {
        let n = inFeatures, m = outFeatures, k = blockHeight, scale = self.scale
        let width = (batch + 15) / 16 * 16
        // Int8 activations stay Int8 (one byte per lane; the C loop widens them to Int32).
        let elementBytes = integer ? 1 : 4
        let tile = RSROps.tileWidth(inFeatures: n, elementBytes: elementBytes)
        let tiles = (width + tile - 1) / tile
        let xt = ThreadScratch.buffer(.input, byteCount: n &* width &* elementBytes)
        transpose(integer: integer, x: x, batch: batch, width: width, tile: tile, into: xt)

        let first = indexes[0]
        let radix = first.radix, codeCount = first.codeCount
        let xts = RawSendable(pointer: xt)
        let ys = RawSendable(pointer: y)
        let tab = table.map { RawSendable(pointer: UnsafeMutableRawPointer(mutating: $0)) }
        Parallel.forEachChunk(count: first.blockCount, threads: context.threads, costPerItem: n * k * batch) { blocks in
            // This chunk's thread's own scratch (a worker thread's, or the caller's when inline).
            let u = ThreadScratch.buffer(.work0, byteCount: codeCount &* tile &* 4)
            let yt = ThreadScratch.buffer(.work1, byteCount: k &* tile &* 4)
            let order = ThreadScratch.buffer(.work2, of: UInt16.self, count: indexes.count &* codeCount)
            for t in blocks {
                let rows = first.rows(ofBlock: t), codes = first.codes(ofBlock: t)
                for part in 0..<indexes.count {
                    let index = indexes[part]
                    tk_rsr_segment_order(index.startsPointer(block: t), Int64(codes), order + part * codeCount)
                }
                for j in 0..<tiles {
                    let lane0 = j * tile
                    let w = min(tile, width - lane0)
                    for part in 0..<indexes.count {
                        let index = indexes[part]
                        // Tile j is its own contiguous `in × w` region (row stride w).
                        ops.segsum!(UnsafeRawPointer(xts.pointer + lane0 * n * elementBytes), Int64(w),
                                    index.permutationPointer(block: t), index.startsPointer(block: t),
                                    order + part * codeCount, Int64(codes - 1), Int64(w), u)
                        blockProduct(ops: ops, radix: radix, rows: rows, codes: codes, width: w, u: u, yt: yt,
                                     table: tab.map { UnsafeRawPointer($0.pointer) }, subtract: part > 0)
                    }
                    let lanes = min(batch, lane0 + w) - lane0
                    if integer {
                        let src = yt.assumingMemoryBound(to: Int32.self)
                        let dst = ys.pointer.assumingMemoryBound(to: Int32.self)
                        for r in 0..<rows {
                            for b in 0..<lanes { dst[(lane0 + b) &* m &+ t &* k &+ r] = src[r &* w &+ b] }
                        }
                    } else {
                        let src = yt.assumingMemoryBound(to: Float.self)
                        let dst = ys.pointer.assumingMemoryBound(to: Float.self)
                        for r in 0..<rows {
                            for b in 0..<lanes { dst[(lane0 + b) &* m &+ t &* k &+ r] = src[r &* w &+ b] * scale }
                        }
                    }
                }
            }
        }
    }

    /// The transposed activations, tile-major: lanes `[l0, l0 + w)` of tile j form one
    /// contiguous `in × w` region at `l0 · in`, so a tile's rows are whole, adjacent cache lines
    /// (`xt[l0 · in + i · w + (b − l0)] = x[b · in + i]`, Int8 stays Int8); padding lanes are zero.
    private func transpose(integer: Bool, x: UnsafeRawPointer, batch: Int, width: Int, tile: Int,
                           into xt: UnsafeMutableRawPointer) {
        if integer {
            transposeRows(x.assumingMemoryBound(to: Int8.self), batch: batch, width: width, tile: tile,
                          into: xt.assumingMemoryBound(to: Int8.self))
        } else {
            transposeRows(x.assumingMemoryBound(to: Float.self), batch: batch, width: width, tile: tile,
                          into: xt.assumingMemoryBound(to: Float.self))
        }
    }

    /// Blocks of 16 columns × the tile's lanes keep the writes inside a few cache lines at a time.
    @inline(__always)
    private func transposeRows<T: Numeric>(_ src: UnsafePointer<T>, batch: Int, width: Int, tile: Int,
                                           into dst: UnsafeMutablePointer<T>) {
        let n = inFeatures
        var l0 = 0
        while l0 < width {
            let w = min(tile, width - l0)
            let region = dst + l0 &* n
            let real = max(0, min(batch, l0 + w) - l0)
            var i0 = 0
            while i0 < n {
                let i1 = min(n, i0 + 16)
                for b in 0..<real {
                    let row = src + (l0 + b) &* n
                    for i in i0..<i1 { region[i &* w &+ b] = row[i] }
                }
                for i in i0..<i1 { for b in real..<w { region[i &* w &+ b] = .zero } }
                i0 = i1
            }
            l0 += w
        }
    }
}
