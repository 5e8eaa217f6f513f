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
    /// The threads that output rows are split across (in chunks of whole 4-row tiles).
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

    /// Packs `weights` for `variant`.
    /// - Throws: `.invalidArgument` when this CPU cannot run `variant`.
    public init(weights: TernaryMatrix, context: ComputeContext, variant: BitPackedVariant) throws {
        guard variant.isSupported else {
            throw TernaryKitError.invalidArgument(
                "bitpacked variant '\(variant.rawValue)' needs CPU features this machine lacks (it has: \(CPUFeatures.detected.summary))")
        }
        self.packed = PackedTernaryMatrix(weights)
        self.scale = weights.scale
        self.context = context
        self.variant = variant
    }

    /// Rows per thread chunk are multiples of this: whole tiles of 4 rows (the C kernels rely on it).
    private static let rowGranularity = 4

    /// Exact `y = W·x` in Int32 (no scale), each row's `Σx` computed once for the SIMD variants' `+1` correction.
    public func apply(_ x: UnsafeBufferPointer<Int8>, batch: Int, into y: UnsafeMutableBufferPointer<Int32>) {
        checkApply(xCount: x.count, yCount: y.count, batch: batch)
        let n = inFeatures, m = outFeatures, p = packed.paddedInFeatures
        let function = variant.int8Function
        let packed = self.packed, threads = context.threads
        withUnsafeTemporaryAllocation(of: Int32.self, capacity: batch) { sums in
            for b in 0..<batch { sums[b] = tk_bitpacked_sum_i8(x.baseAddress! + b &* n, n) }
            let sumsPointer = SendableConstPointer(UnsafeBufferPointer(sums))
            let ys = SendablePointer(y)
            withPaddedRows(x, batch: batch, n: n, p: p) { xs, xStride in
                let xp = SendableConstPointer(xs)
                Parallel.forEachChunk(count: m, threads: threads, granularity: Self.rowGranularity,
                                      costPerItem: n &* batch) { rows in
                    var args = tk_bitpacked_i8_args(
                        weights: UnsafePointer(packed.bytes.assumingMemoryBound(to: UInt8.self)),
                        row_bytes: packed.rowBytes, groups: packed.groups, half: packed.hasHalfGroup ? 1 : 0, rows: m,
                        row_begin: rows.lowerBound, row_end: rows.upperBound, batch: batch,
                        x: xp.base, x_stride: xStride, x_sum: sumsPointer.base, y: ys.base, y_stride: m)
                    function(&args)
                }
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

/// Calls `body` with activation rows the kernels may read `p` elements of: `x` itself when
/// `p == n`, else a zero-padded copy (so no kernel ever reads past the caller's buffer).
private func withPaddedRows<T: Numeric>(
    _ x: UnsafeBufferPointer<T>, batch: Int, n: Int, p: Int,
    _ body: (UnsafePointer<T>, Int) -> Void
) {
    if p == n {
        body(x.baseAddress!, n)
        return
    }
    withUnsafeTemporaryAllocation(of: T.self, capacity: batch * p) { padded in
        let base = padded.baseAddress!
        for b in 0..<batch {
            (base + b &* p).initialize(from: x.baseAddress! + b &* n, count: n)
            (base + (b &* p &+ n)).initialize(repeating: 0, count: p &- n)
        }
        body(UnsafePointer(base), p)
    }
}
