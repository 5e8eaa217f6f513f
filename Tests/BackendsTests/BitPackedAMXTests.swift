import CKernels
import Testing
@testable import Backends
import TensorCore

/// The `amx` variant of `bitpacked`. Its C kernel is built twice from one source: on the real
/// AMX instructions and on a scalar emulator of the tile registers (TDPBSSD semantics). The
/// emulated build runs wherever AVX-512 does (the unpacking is AVX-512 code shared by both),
/// so the layout, blocking, edge tiles and threading are checked here against naive on every
/// shape; the real build is checked the same way only where the CPU has AMX and the OS grants
/// the tile state. Serialized: the emulator's process-wide counters are compared before/after.
@Suite(.serialized) struct BitPackedAMXTests {
    /// Odd and random shapes: 1×1, out and in not multiples of 16, 32, 64 or 256, out > in,
    /// in > out, a half group only (in ≤ 128), several K blocks (in > 8192 inputs) with a tail.
    static let shapes: [(out: Int, in: Int)] = oddShapes + [
        (16, 64), (32, 256), (33, 129), (47, 385), (2, 8192 + 256 + 100), (20, 16 * 1024 + 64),
    ]
    /// Every tile edge of the batch: 1 and 2 rows, around 16 (one B tile), 32 (a pair), 64, 128.
    static let batches = [1, 2, 15, 16, 17, 31, 32, 33, 63, 64, 65, 127, 128, 129, 130]

    static var canEmulate: Bool { BitPackedVariant.avx512vnni.isSupported }

    /// An `amx` kernel: emulated or real tiles, tiles from `minimumBatch` rows on.
    static func kernel(_ w: TernaryMatrix, threads: Int, emulated: Bool, minimumBatch: Int = 1) throws -> BitPackedKernel {
        try BitPackedKernel(weights: w, context: ComputeContext(threads: threads), variant: .amx,
                            forceEmulatedAMX: emulated, amxMinimumBatch: minimumBatch)
    }

    /// Every shape × every batch × 1 and 2 threads, tiles forced at every batch, against naive.
    static func checkAgainstNaive(emulated: Bool) throws {
        var g = SeededGenerator(seed: emulated ? 0xA3E : 0xA3F)
        let before = tk_amx_emulator_stats_read()
        for (out, inn) in shapes {
            let zeroFraction = [0.0, 1.0 / 3.0, 0.9][Int.random(in: 0..<3, using: &g)]
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, zeroFraction: zeroFraction, using: &g)
            // Wide rows are slow on the -O0 emulator: a few batches there.
            let batchList = inn > 2000 ? [1, 16, 17, 33] : batches
            for threads in [1, 2] {
                let kernel = try kernel(w, threads: threads, emulated: emulated)
                for batch in batchList {
                    let x = g.int8s(count: batch * inn)
                    let mismatch = KernelCheck.firstMismatch(try kernel.apply(x), try referenceInt(w, x), outFeatures: out)
                    #expect(mismatch == nil, "amx\(emulated ? " (emulated)" : "") \(out)x\(inn) batch \(batch) threads \(threads): \(mismatch ?? "")")
                }
            }
        }
        if emulated {
            let after = tk_amx_emulator_stats_read()
            #expect(after.faults == before.faults, "the emulator saw illegal tile use")
            #expect(after.configs - before.configs == after.releases - before.releases, "every tile configuration is released")
            #expect(after.dpbssd > before.dpbssd)
        }
    }

    @Test(.enabled(if: canEmulate, "the emulated AMX kernel's unpacking is AVX-512 code; this CPU has no AVX-512"))
    func emulatedTilesMatchNaive() throws {
        try Self.checkAgainstNaive(emulated: true)
    }

    /// Skipped on CPUs without AMX (e.g. AMD Zen 4, where this was written) or where the OS
    /// refuses the tile state: the real instructions would raise SIGILL.
    @Test(.enabled(if: BitPackedVariant.amx.isSupported,
                   "needs AMX-TILE + AMX-INT8 and the OS's grant of the tile state (\(CPUFeatures.detected.summary))"))
    func realTilesMatchNaive() throws {
        try Self.checkAgainstNaive(emulated: false)
    }

    /// The largest sums: activations all −128 or all 127, weights all −1 or all +1, over several
    /// K blocks with a half group (y is added into across blocks), and in = 65536 once (|y| = 2^23).
    @Test(.enabled(if: canEmulate, "needs AVX-512 for the emulated kernel"), arguments: [true, false])
    func extremesAreExact(emulated: Bool) throws {
        guard emulated || BitPackedVariant.amx.isSupported else {
            print("BitPackedAMXTests.extremesAreExact(real): skipped, no usable AMX (\(CPUFeatures.detected.summary))")
            return
        }
        for (n, out, batches) in [(2 * 8192 + 128, 5, [16, 17]), (65536, 2, [16])] {
            try expectExtremesExact(inFeatures: n, outFeatures: out, batches: batches, threads: [1, 2]) { w, threads in
                try Self.kernel(w, threads: threads, emulated: emulated)
            }
        }
    }

    /// With the default threshold, batches below `amxMinimumBatch` run the VNNI kernel (no
    /// TDPBSSD executed) and batches from it on run tiles; both exact. The Float path never
    /// uses tiles.
    @Test(.enabled(if: canEmulate, "needs AVX-512 for the emulated kernel"))
    func thresholdChoosesTheKernel() throws {
        var g = SeededGenerator(seed: 77)
        let w = try TernaryMatrix.random(outFeatures: 40, inFeatures: 300, using: &g)
        let kernel = try Self.kernel(w, threads: 1, emulated: true, minimumBatch: BitPackedKernel.amxMinimumBatch)
        for batch in [1, BitPackedKernel.amxMinimumBatch - 1, BitPackedKernel.amxMinimumBatch, 40] {
            let before = tk_amx_emulator_stats_read().dpbssd
            let x = g.int8s(count: batch * 300)
            #expect(try kernel.apply(x) == referenceInt(w, x), "batch \(batch)")
            let used = tk_amx_emulator_stats_read().dpbssd > before
            #expect(used == (batch >= BitPackedKernel.amxMinimumBatch), "batch \(batch): tiles used \(used)")
        }
        let before = tk_amx_emulator_stats_read().dpbssd
        let xf = g.floats(count: 20 * 300)
        let yf = try kernel.apply(xf)
        #expect(yf.count == 20 * 40)
        #expect(tk_amx_emulator_stats_read().dpbssd == before, "the Float path does not use tiles")
    }

    @Test func supportFollowsTheFeatures() {
        let vnni = CPUFeatures(avx2: true, fma: true, avx512f: true, avx512bw: true, avx512vl: true, avx512vnni: true)
        let amxRefused = CPUFeatures(avx2: true, fma: true, avx512f: true, avx512bw: true, avx512vl: true, avx512vnni: true,
                                     amxTile: true, amxInt8: true, amxOSGranted: false)
        let amxGranted = CPUFeatures(avx2: true, fma: true, avx512f: true, avx512bw: true, avx512vl: true, avx512vnni: true,
                                     amxTile: true, amxInt8: true, amxOSGranted: true)
        let amxOnly = CPUFeatures(amxTile: true, amxInt8: true, amxOSGranted: true)
        #expect(!BitPackedVariant.amx.isSupported(by: vnni))
        #expect(!BitPackedVariant.amx.isSupported(by: amxRefused))
        #expect(BitPackedVariant.amx.isSupported(by: amxGranted))
        #expect(!BitPackedVariant.amx.isSupported(by: amxOnly), "the small-batch fallback needs AVX-512 VNNI")
        #expect(!CPUFeatures(amxOSGranted: true).amxOSGranted, "no grant without AMX in CPUID")
        #expect(amxRefused.summary.hasSuffix("amx-tile amx-int8 (OS: refused)"))
        #expect(amxGranted.summary.hasSuffix("amx-tile amx-int8 (OS: granted)"))
        #expect(!vnni.summary.contains("amx"))
        // The running machine: amx is supported exactly when CPUID, the OS and AVX-512 VNNI agree,
        // and then it is the best variant.
        let f = CPUFeatures.detected
        #expect(BitPackedVariant.amx.isSupported == (f.amxTile && f.amxInt8 && f.amxOSGranted && BitPackedVariant.avx512vnni.isSupported))
        #expect(f.amxOSGranted == (tk_amx_os_granted() != 0))
        if BitPackedVariant.amx.isSupported { #expect(BitPackedVariant.best == .amx) }
        if !f.amxTile { print("BitPackedAMXTests: this CPU has no AMX (\(f.summary)); only the emulated kernel is tested") }
    }

    /// Emulation is a test hook only: the public initializer refuses `amx` where it is unsupported.
    @Test func unsupportedRealAMXIsRefused() throws {
        let w = try TernaryMatrix(outFeatures: 1, inFeatures: 1, values: [1])
        if !BitPackedVariant.amx.isSupported {
            #expect(throws: TernaryKitError.self) { try BitPackedBackend(variant: .amx).prepare(w, context: .singleThreaded) }
            #expect(throws: TernaryKitError.self) { try BitPackedVariant.named("amx") }
        }
    }
}
