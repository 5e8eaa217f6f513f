import CKernels
import Testing
@testable import Backends
import TensorCore

/// The batched Int8 kernel of the `avx512vnni` variant (`tk_bitpacked_i8_avx512vnni_gemm`:
/// activations packed in the VNNI layout and biased to unsigned, weights unpacked per thread,
/// 12 rows × 32 activation rows per micro-kernel, `128 · Σw` subtracted). The threshold is
/// forced down to 1 so that every shape and batch runs it, against naive.
@Suite struct BitPackedBatchedTests {
    static var supported: Bool { BitPackedVariant.avx512vnni.isSupported }

    /// Odd shapes (1×1, out > in, in > out, in not a multiple of 4, 8, 64, 128 or 256), the
    /// micro-kernel's row blocks (12; last blocks of 4 and 8 rows and rows ending inside one),
    /// super-blocks of rows (72 rows at in = 2560, 24 at 6912) and a row of two 8192-input spans.
    static let shapes: [(out: Int, in: Int)] = oddShapes + [
        (13, 300), (257, 513), (12, 128), (24, 384), (25, 129), (37, 640), (150, 2560), (30, 6912),
        (3, 8192 + 256 + 100),
    ]
    /// Around every edge: 16-row tiles, pairs of tiles (32), and the default threshold.
    static let batches = [1, 2, 3, 4, 5, 8, 15, 16, 17, 31, 32, 33, 47, 48, 64, 65, 127, 128, 129]

    static func kernel(_ w: TernaryMatrix, threads: Int, minimumBatch: Int = 1) throws -> BitPackedKernel {
        try BitPackedKernel(weights: w, context: ComputeContext(threads: threads), variant: .avx512vnni,
                            forceEmulatedAMX: false, vnniBatchedMinimumBatch: minimumBatch,
                            vnniBatchedMinimumActivationBytes: 0)
    }

    @Test(.enabled(if: supported, "needs AVX-512 VNNI"))
    func batchedKernelMatchesNaive() throws {
        var g = SeededGenerator(seed: 0xB47C)
        for (out, inn) in Self.shapes {
            let zeroFraction = [0.0, 1.0 / 3.0, 0.9][Int.random(in: 0..<3, using: &g)]
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, zeroFraction: zeroFraction, using: &g)
            // Wide products are slow in a debug build's naive reference: fewer batches there.
            let batchList = out * inn > 100_000 ? [1, 15, 16, 17, 33, 64] : Self.batches
            for threads in [1, 2] {
                let kernel = try Self.kernel(w, threads: threads)
                for batch in batchList {
                    #expect(kernel.runsBatchedKernel(batch: batch))
                    let x = g.int8s(count: batch * inn)
                    let mismatch = KernelCheck.firstMismatch(try kernel.apply(x), try referenceInt(w, x), outFeatures: out)
                    #expect(mismatch == nil, "batched \(out)x\(inn) batch \(batch) threads \(threads): \(mismatch ?? "")")
                }
            }
        }
    }

    /// The largest sums: activations all −128 or all 127 (biased: 0 and 255), weights all −1 or
    /// all +1, at in = 16, 512 and 65,536 (|y| = 2^23; the biased sums exceed 2^24), 1 and 2 threads.
    @Test(.enabled(if: supported, "needs AVX-512 VNNI"))
    func extremesAreExact() throws {
        for (n, out, batches) in [(16, 13, [1, 16, 17, 33]), (512, 13, [1, 16, 17, 33]), (65536, 5, [1, 16, 33])] {
            try expectExtremesExact(inFeatures: n, outFeatures: out, batches: batches, threads: [1, 2]) { w, threads in
                try Self.kernel(w, threads: threads)
            }
        }
    }

    /// With the default batch threshold and a 1 MiB byte threshold: the batched kernel from 16 rows *and* 1 MiB of activations
    /// (batch · paddedInFeatures) on, the 4 × 4 kernel otherwise; both exact. With only the
    /// byte threshold lowered, the batch threshold still holds. Other variants never run it;
    /// `amx` runs it only below its own tile threshold.
    @Test(.enabled(if: supported, "needs AVX-512 VNNI"))
    func thresholdChoosesTheKernel() throws {
        var g = SeededGenerator(seed: 78)
        // paddedInFeatures = 32,768: 32 rows are 1 MiB.
        let inn = 32 * 1024 - 5
        let wide = try TernaryMatrix.random(outFeatures: 5, inFeatures: inn, using: &g)
        #expect(BitPackedKernel.vnniBatchedMinimumActivationBytes == BitPackedKernel.level2CacheBytes)
        #expect((256 << 10)...(8 << 20) ~= BitPackedKernel.level2CacheBytes)
        let kernel = try BitPackedKernel(weights: wide, context: .singleThreaded, variant: .avx512vnni,
                                         forceEmulatedAMX: false, vnniBatchedMinimumActivationBytes: 1 << 20)
        #expect(1 << 20 == 32 * kernel.packed.paddedInFeatures)
        for batch in [1, 16, 31, 32, 33] {
            #expect(kernel.runsBatchedKernel(batch: batch) == (batch >= 32), "batch \(batch)")
            let x = g.int8s(count: batch * inn)
            #expect(try kernel.apply(x) == referenceInt(wide, x), "batch \(batch)")
        }
        let w = try TernaryMatrix.random(outFeatures: 40, inFeatures: 300, using: &g)
        let t = BitPackedKernel.vnniBatchedMinimumBatch
        let byBatch = try BitPackedKernel(weights: w, context: .singleThreaded, variant: .avx512vnni,
                                          forceEmulatedAMX: false, vnniBatchedMinimumActivationBytes: 0)
        for batch in [1, t - 1, t, t + 1, 2 * t + 3] where batch >= 1 {
            #expect(byBatch.runsBatchedKernel(batch: batch) == (batch >= t), "batch \(batch)")
            let x = g.int8s(count: batch * 300)
            #expect(try byBatch.apply(x) == referenceInt(w, x), "batch \(batch)")
        }
        for variant in [BitPackedVariant.portable, .avx2] where variant.isSupported {
            let k = try BitPackedKernel(weights: w, context: .singleThreaded, variant: variant)
            #expect(!k.runsBatchedKernel(batch: 64))
        }
        let amx = try BitPackedKernel(weights: w, context: .singleThreaded, variant: .amx, forceEmulatedAMX: true,
                                      amxMinimumBatch: 32, vnniBatchedMinimumBatch: 16,
                                      vnniBatchedMinimumActivationBytes: 0)
        #expect(!amx.runsBatchedKernel(batch: 15))
        #expect(amx.runsBatchedKernel(batch: 16))
        #expect(!amx.runsBatchedKernel(batch: 32), "tiles from 32 on")
        for batch in [15, 16, 31, 32] {
            let x = g.int8s(count: batch * 300)
            #expect(try amx.apply(x) == referenceInt(w, x), "amx batch \(batch)")
        }
    }
}
