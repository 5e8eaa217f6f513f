import CKernels
import TensorCore

/// A `bitpacked` kernel: the weights in `PackedTernaryMatrix` layout plus the chosen C variant.
///
/// Swift does everything around the inner loops: it pads activations when `inFeatures` is not
/// a multiple of 256 (the kernels then never read past the caller's `x`), computes `Σx` per
/// activation row for the SIMD variants' `+1` correction, and splits output rows across threads.
public struct BitPackedKernel: LinearKernel {
    /// The packed weights (shared, immutable).
    public let packed: PackedTernaryMatrix
    /// The weight scale: multiplies Float-path outputs; the Int8 path returns exact `W·x` without it.
    public let scale: Float
    /// The threads that output rows are split across (in chunks of whole 4-row tiles; 32-row
    /// blocks on the `amx` tile path).
    public let context: ComputeContext
    /// The C variant this kernel calls.
    public let variant: BitPackedVariant

    /// Always "bitpacked", whichever C variant runs (see ``variant`` for that).
    public var backendName: String { "bitpacked" }
    /// Rows of the weight matrix: the length of each output row.
    public var outFeatures: Int { packed.outFeatures }
    /// Columns of the weight matrix (unpadded): the length each activation row must have.
    public var inFeatures: Int { packed.inFeatures }
    /// The packed rows plus the scale.
    public var storageBytes: Int { packed.byteCount + MemoryLayout<Float>.size }

    /// The smallest batch (activation rows) the `amx` variant runs on tiles; smaller batches and
    /// the Float path use the `avx512vnni` kernels.
    ///
    /// A guess, not measured: the machines this was written on have no AMX. A B tile holds 16
    /// activation rows, so below 16 part of every TDPBSSD multiplies zero padding (half of it at
    /// batch 8), and the weight unpacking is shared by fewer products; the kernel's work without
    /// its tile instructions, measured on Zen 4, suggests the crossover is at or below 16.
    /// Measure the crossover on an AMX host (docs/performance/amx.md): `ternary bench --variant
    /// amx --variant avx512vnni --backends bitpacked --batch 8 --batch 16 --batch 32 ...`.
    public static let amxMinimumBatch = 16

    /// How the Int8 path of the `amx` variant runs its tile product.
    enum TileMode: Sendable {
        /// Not the `amx` variant.
        case none
        /// The AMX instructions.
        case hardware
        /// The same C kernel on the scalar tile emulator (tests, on machines without AMX).
        case emulated
    }

    /// Whether (and how) batches of at least ``tileMinimumBatch`` rows run on AMX tiles.
    let tileMode: TileMode
    /// The batch from which the `amx` variant uses tiles (``amxMinimumBatch`` unless a test chose).
    let tileMinimumBatch: Int

    /// Packs `weights` for `variant`.
    /// - Throws: `.invalidArgument` when this CPU cannot run `variant`.
    public init(weights: TernaryMatrix, context: ComputeContext, variant: BitPackedVariant) throws {
        try self.init(weights: weights, context: context, variant: variant, forceEmulatedAMX: false)
    }

    /// For tests: with `forceEmulatedAMX`, the `amx` variant on the tile emulator (it then needs
    /// only what `avx512vnni` needs), using tiles from `amxMinimumBatch` activation rows on.
    init(weights: TernaryMatrix, context: ComputeContext, variant: BitPackedVariant, forceEmulatedAMX: Bool,
         amxMinimumBatch: Int = BitPackedKernel.amxMinimumBatch) throws {
        let emulated = forceEmulatedAMX && variant == .amx
        let runnable = emulated ? BitPackedVariant.avx512vnni.isSupported : variant.isSupported
        guard runnable else {
            throw TernaryKitError.invalidArgument(
                "bitpacked variant '\(variant.rawValue)'\(emulated ? " (emulated)" : "") needs CPU features this machine lacks (it has: \(CPUFeatures.detected.summary))")
        }
        self.packed = PackedTernaryMatrix(weights)
        self.scale = weights.scale
        self.context = context
        self.variant = variant
        self.tileMode = variant != .amx ? .none : emulated ? .emulated : .hardware
        self.tileMinimumBatch = max(1, amxMinimumBatch)
    }

    /// Rows per thread chunk are multiples of this: whole tiles of 4 rows (the C kernels rely on it).
    private static let rowGranularity = 4

    /// Row ranges per thread of an Int8 product of several activation rows, claimed as the threads
    /// finish, so that a late or slower thread takes fewer: in a 2-thread 128-token prefill the
    /// pool's waiting (the caller's spin at the join and the worker's polling) took ≈ 2 % of all
    /// samples with one range per thread, ≈ 1.2 % with four (`perf record`, one profile each, AMD
    /// Zen 5; too small to resolve end to end). One activation row (decode) keeps one range per thread:
    /// its products stream weights from memory, and there the finer split measured 0.96–0.97× in
    /// three alternated pairs (within the noise, but no gain either).
    static let int8ChunksPerThread = 4

    /// Exact `y = W·x` in Int32 (no scale), each row's `Σx` computed once for the SIMD variants' `+1` correction.
    public func apply(_ x: UnsafeBufferPointer<Int8>, batch: Int, into y: UnsafeMutableBufferPointer<Int32>) {
        checkApply(xCount: x.count, yCount: y.count, batch: batch)
        if tileMode != .none && batch >= tileMinimumBatch {
            applyTiles(x, batch: batch, into: y)
            return
        }
        let n = inFeatures, m = outFeatures, p = packed.paddedInFeatures
        let function = variant.int8Function
        let packed = self.packed, threads = context.threads
        // Per-row sums in the calling thread's scratch (reused, see `ThreadScratch`).
        let sums = ThreadScratch.buffer(.output, of: Int32.self, count: batch)
        let rowSum = variant.rowSumFunction
        for b in 0..<batch { sums[b] = rowSum(x.baseAddress! + b &* n, n) }
        let sumsPointer = SendableConstPointer(UnsafePointer(sums))
        let ys = SendablePointer(y)
        withPaddedRows(x, batch: batch, n: n, p: p) { xs, xStride in
            let xp = SendableConstPointer(xs)
            Parallel.forEachChunk(count: m, threads: threads, granularity: Self.rowGranularity,
                                  costPerItem: n &* batch, chunksPerThread: batch > 1 ? Self.int8ChunksPerThread : 1) { rows in
                var args = tk_bitpacked_i8_args(
                    weights: UnsafePointer(packed.bytes.assumingMemoryBound(to: UInt8.self)),
                    row_bytes: packed.rowBytes, groups: packed.groups, half: packed.hasHalfGroup ? 1 : 0, rows: m,
                    row_begin: rows.lowerBound, row_end: rows.upperBound, batch: batch,
                    x: xp.base, x_stride: xStride, x_sum: sumsPointer.base, y: ys.base, y_stride: m)
                function(&args)
            }
        }
    }

    /// `y = scale · W·x` in Float; activations are padded to a multiple of 256 columns when needed.
    public func apply(_ x: UnsafeBufferPointer<Float>, batch: Int, into y: UnsafeMutableBufferPointer<Float>) {
        checkApply(xCount: x.count, yCount: y.count, batch: batch)
        let n = inFeatures, m = outFeatures, p = packed.paddedInFeatures
        let function = variant.floatFunction
        let packed = self.packed, threads = context.threads, scale = self.scale
        let ys = SendablePointer(y)
        withPaddedRows(x, batch: batch, n: n, p: p) { xs, xStride in
            let xp = SendableConstPointer(xs)
            Parallel.forEachChunk(count: m, threads: threads, granularity: Self.rowGranularity,
                                  costPerItem: n &* batch) { rows in
                var args = tk_bitpacked_f32_args(
                    weights: UnsafePointer(packed.bytes.assumingMemoryBound(to: UInt8.self)),
                    row_bytes: packed.rowBytes, groups: packed.groups, half: packed.hasHalfGroup ? 1 : 0, rows: m,
                    row_begin: rows.lowerBound, row_end: rows.upperBound, batch: batch,
                    x: xp.base, x_stride: xStride, scale: scale, y: ys.base, y_stride: m)
                function(&args)
            }
        }
        applyNonFiniteRule(x, batch: batch, into: y)
    }
}

extension BitPackedKernel {
    /// Output rows per AMX block (two 16-row A tiles): the unit rows are split across threads in.
    private static let tileRowGranularity = Int(TK_AMX_BLOCK_ROWS)

    /// The `amx` Int8 product: the activations rearranged once into B tiles (shared), then each
    /// thread unpacks its rows' weights into its own scratch and runs the tile kernel (which
    /// loads the tile configuration and releases the tiles itself, on the thread it runs on).
    fileprivate func applyTiles(_ x: UnsafeBufferPointer<Int8>, batch: Int, into y: UnsafeMutableBufferPointer<Int32>) {
        let n = inFeatures, m = outFeatures, p = packed.paddedInFeatures
        let packed = self.packed, threads = context.threads
        let function = tileMode == .emulated ? tk_bitpacked_i8_amx_emulated : tk_bitpacked_i8_amx
        let xBytes = tk_bitpacked_amx_x_bytes(batch, p)
        let xTiles = UnsafeMutableRawPointer.allocate(byteCount: xBytes, alignment: 64)
        defer { xTiles.deallocate() }
        let xt = xTiles.bindMemory(to: Int8.self, capacity: xBytes)
        tk_bitpacked_amx_pack_x(x.baseAddress!, n, n, batch, p, xt)
        let scratchBytes = (tk_bitpacked_amx_scratch_bytes(packed.groups, packed.hasHalfGroup ? 1 : 0) + 63) / 64 * 64
        let chunks = Parallel.maximumChunks(count: m, threads: threads, granularity: Self.tileRowGranularity)
        let scratch = UnsafeMutableRawPointer.allocate(byteCount: scratchBytes * chunks, alignment: 64)
        defer { scratch.deallocate() }
        let scratchBase = SendablePointer(scratch.bindMemory(to: UInt8.self, capacity: scratchBytes * chunks))
        let xp = SendableConstPointer(UnsafePointer(xt)), ys = SendablePointer(y)
        Parallel.forEachIndexedChunk(count: m, threads: threads, granularity: Self.tileRowGranularity,
                                     costPerItem: n &* batch) { chunk, rows in
            var args = tk_bitpacked_amx_args(
                weights: UnsafePointer(packed.bytes.assumingMemoryBound(to: UInt8.self)),
                row_bytes: packed.rowBytes, groups: packed.groups, half: packed.hasHalfGroup ? 1 : 0, rows: m,
                row_begin: rows.lowerBound, row_end: rows.upperBound, batch: batch,
                x_tiles: xp.base, y: ys.base, y_stride: m,
                scratch: UnsafeMutableRawPointer(scratchBase.base + chunk &* scratchBytes))
            function(&args)
        }
    }
}

/// Calls `body` with activation rows the kernels may read `p` elements of: `x` itself when
/// `p == n`, else a zero-padded copy in the calling thread's scratch (so no kernel ever reads
/// past the caller's buffer). The copy used to be a `withUnsafeTemporaryAllocation`, which is
/// on the heap above about 1 KiB (e.g. 64 Float rows of 2560 columns): the scratch is reused.
@inline(__always)
private func withPaddedRows<T: Numeric>(
    _ x: UnsafeBufferPointer<T>, batch: Int, n: Int, p: Int,
    _ body: (UnsafePointer<T>, Int) -> Void
) {
    if p == n {
        body(x.baseAddress!, n)
        return
    }
    let base = ThreadScratch.buffer(.input, of: T.self, count: batch &* p)
    for b in 0..<batch {
        (base + b &* p).initialize(from: x.baseAddress! + b &* n, count: n)
        (base + (b &* p &+ n)).initialize(repeating: 0, count: p &- n)
    }
    body(UnsafePointer(base), p)
}
