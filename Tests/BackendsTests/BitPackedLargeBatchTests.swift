import Testing
@testable import Backends
import TensorCore

/// The Int8 batch kernel of the `avx512vnni` variant (`tk_bitpacked_i8_avx512vnni`: tiles of 4
/// rows × 4 activation rows, walked in blocks of whole tiles of up to 128 KiB of weights per 4
/// activation rows) at large batches, against naive, through the normal variant. It is the only
/// Int8 batch kernel of the variant at every batch ≥ 2 (a batched GEMM-style kernel took batches
/// of ≥ 16 rows and ≥ L2 of activations until 2026-12-01: docs/performance/bitpacked.md).
@Suite struct BitPackedLargeBatchTests {
    static var supported: Bool { BitPackedVariant.avx512vnni.isSupported }

    /// Odd shapes (1×1, out > in, in > out, in not a multiple of 4, 8, 64, 128 or 256), row
    /// counts around whole tiles (12, 24; 13, 25, 37, 257: a last tile of 1 row), less than one
    /// block of tiles (150 rows at in = 2560, whose blocks hold 204 rows; 30 at 6912, blocks of
    /// 72) and a row of two 8192-input spans.
    static let shapes: [(out: Int, in: Int)] = oddShapes + [
        (13, 300), (257, 513), (12, 128), (24, 384), (25, 129), (37, 640), (150, 2560), (30, 6912),
        (3, 8192 + 256 + 100),
    ]
    /// Around every edge of 4 activation rows (remainders 0–3), 16 and 32, up to 129.
    static let batches = [1, 2, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 47, 48, 64, 65, 127, 128, 129]

    static func kernel(_ w: TernaryMatrix, threads: Int) throws -> BitPackedKernel {
        try BitPackedKernel(weights: w, context: ComputeContext(threads: threads), variant: .avx512vnni)
    }

    /// One product of `batch` random activation rows against naive.
    static func expectMatchesNaive(_ kernel: BitPackedKernel, _ w: TernaryMatrix, batch: Int,
                                   using g: inout SeededGenerator, _ what: String,
                                   sourceLocation: SourceLocation = #_sourceLocation) throws {
        let x = g.int8s(count: batch * w.inFeatures)
        let mismatch = KernelCheck.firstMismatch(try kernel.apply(x), try referenceInt(w, x), outFeatures: w.outFeatures)
        #expect(mismatch == nil, "\(w.outFeatures)x\(w.inFeatures) batch \(batch) \(what): \(mismatch ?? "")",
                sourceLocation: sourceLocation)
    }

    @Test(.enabled(if: supported, "needs AVX-512 VNNI"))
    func largeBatchesMatchNaive() throws {
        var g = SeededGenerator(seed: 0xB47C)
        for (out, inn) in Self.shapes {
            let zeroFraction = [0.0, 1.0 / 3.0, 0.9][Int.random(in: 0..<3, using: &g)]
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, zeroFraction: zeroFraction, using: &g)
            // Wide products are slow in a debug build's naive reference: fewer batches there.
            let batchList = out * inn > 100_000 ? [1, 15, 16, 17, 33, 64] : Self.batches
            for threads in [1, 2] {
                let kernel = try Self.kernel(w, threads: threads)
                for batch in batchList {
                    try Self.expectMatchesNaive(kernel, w, batch: batch, using: &g, "threads \(threads)")
                }
            }
        }
    }

    /// The largest sums: activations all −128 or all 127, weights all −1 or all +1, at in = 16,
    /// 512 and 65,536 (|y| = 2^23; the sums before the `Σx` correction reach 2^24), 1 and 2 threads.
    @Test(.enabled(if: supported, "needs AVX-512 VNNI"))
    func extremesAreExact() throws {
        for (n, out, batches) in [(16, 13, [1, 16, 17, 33]), (512, 13, [1, 16, 17, 33]), (65536, 5, [1, 16, 33])] {
            try expectExtremesExact(inFeatures: n, outFeatures: out, batches: batches, threads: [1, 2]) { w, threads in
                try Self.kernel(w, threads: threads)
            }
        }
    }

    /// Rows per block of whole tiles in the C kernel: as many 4-row tiles as fit in 128 KiB of
    /// packed weights (`BP_TILE_BLOCK_BYTES` in bitpacked.c), at least one.
    static func blockRows(_ packed: PackedTernaryMatrix) -> Int {
        4 * max(1, (128 << 10) / (4 * packed.rowBytes))
    }

    /// Row ranges that each span several blocks of tiles, the last block partial, and a last tile
    /// of 3, 2 or 1 rows, on 2 threads (so 2 · `int8ChunksPerThread` = 8 row ranges, each starting
    /// its own blocks): 2560 inputs (blocks of 204 rows; ranges of 500–503 rows), 7012 and 16,484
    /// (both ending in a half group; blocks of 72 and 28 rows, ranges of 168–172 and 68–72).
    /// Batches with 1, 2 and 3 activation rows left after the passes of 4.
    @Test(.enabled(if: supported, "needs AVX-512 VNNI"))
    func blocksOfTilesSplitOverThreadsMatchNaive() throws {
        var g = SeededGenerator(seed: 0xB10C)
        let ranges = 2 * BitPackedKernel.int8ChunksPerThread
        for (out, inn) in [(4003, 2560), (1362, 6912 + 100), (561, 16384 + 100)] {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &g)
            let kernel = try Self.kernel(w, threads: 2)
            let block = Self.blockRows(kernel.packed)
            // The shortest range (whole tiles, split as evenly as tiles allow) holds two blocks
            // and part of a third.
            let shortest = 4 * ((out + 3) / 4 / ranges)
            #expect(shortest > 2 * block && shortest % block != 0, "\(out)x\(inn): blocks of \(block) rows")
            #expect(out % 4 != 0)
            for batch in [5, 6, 7] {
                try Self.expectMatchesNaive(kernel, w, batch: batch, using: &g, "threads 2, blocks of \(block) rows")
            }
        }
    }
}
