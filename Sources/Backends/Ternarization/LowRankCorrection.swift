import COpenBLAS
import TensorCore

/// A rank-r Float correction `A · B` to add to a ternary product: `W ≈ γ·T + A·B`.
///
/// Ternarizing a float matrix loses about half of its Frobenius norm (the residual
/// `R = W − γT`); the best rank-r approximation of `R` (Eckart–Young, from its SVD) buys a part
/// of it back for `r · (out + in)` extra Float weights. A `BitLinear` then computes
/// `y = γ·T·x + A·(B·x)`: the ternary product stays the fast path and the correction is two thin
/// products (a small C kernel, ``LowRankVariant``). `A = U_r Σ_r` carries the singular values so
/// that `B = V_rᵀ` is orthonormal.
///
/// The correction is batch-invariant: a row's result depends only on that row's input and the
/// factors, never on how many rows one `apply` call holds, the row's position among them or
/// the thread count (see ``apply(_:batch:into:scratch:context:variant:)``).
public struct LowRankCorrection: Sendable, Equatable {
    /// The rank r (0 means no correction: `apply` does nothing).
    public let rank: Int
    /// Rows of the corrected weight (`A` has this many rows).
    public let outFeatures: Int
    /// Columns of the corrected weight (`B` has this many columns).
    public let inFeatures: Int
    /// `A = U_r Σ_r`, row-major `outFeatures × rank`.
    public let a: [Float]
    /// `B = V_rᵀ`, row-major `rank × inFeatures`.
    public let b: [Float]
    /// `Bᵀ`, row-major `inFeatures × rank`: the layout the kernel's first product streams.
    let bt: [Float]
    /// `Aᵀ`, row-major `rank × outFeatures`: the layout the kernel's second product streams.
    let at: [Float]

    /// Equal factors (the transposed copies follow from them).
    public static func == (lhs: LowRankCorrection, rhs: LowRankCorrection) -> Bool {
        lhs.rank == rhs.rank && lhs.outFeatures == rhs.outFeatures && lhs.inFeatures == rhs.inFeatures
            && lhs.a == rhs.a && lhs.b == rhs.b
    }

    /// A correction from its two factors, e.g. read back from a checkpoint.
    /// - Throws: `.invalidShape` for non-positive dimensions or a negative rank,
    ///   `.lengthMismatch` when `a` or `b` does not hold `out·rank` / `rank·in` values,
    ///   `.invalidValue` for a non-finite entry (it would poison every output).
    public init(outFeatures: Int, inFeatures: Int, rank: Int, a: [Float], b: [Float]) throws {
        guard outFeatures > 0, inFeatures > 0, rank >= 0 else {
            throw TernaryKitError.invalidShape(
                "a low-rank correction needs positive dimensions and rank ≥ 0, got \(outFeatures)×\(inFeatures) rank \(rank)")
        }
        let (na, oa) = outFeatures.multipliedReportingOverflow(by: rank)
        let (nb, ob) = rank.multipliedReportingOverflow(by: inFeatures)
        guard !oa, !ob else { throw TernaryKitError.invalidShape("rank \(rank) for \(outFeatures)×\(inFeatures) overflows Int") }
        guard a.count == na else {
            throw TernaryKitError.lengthMismatch(expected: na, actual: a.count, what: "correction factor A (\(outFeatures)×\(rank))")
        }
        guard b.count == nb else {
            throw TernaryKitError.lengthMismatch(expected: nb, actual: b.count, what: "correction factor B (\(rank)×\(inFeatures))")
        }
        if let i = a.firstIndex(where: { !$0.isFinite }) {
            throw TernaryKitError.invalidValue("correction factor A has a non-finite value \(a[i]) at index \(i)")
        }
        if let i = b.firstIndex(where: { !$0.isFinite }) {
            throw TernaryKitError.invalidValue("correction factor B has a non-finite value \(b[i]) at index \(i)")
        }
        self.init(unchecked: outFeatures, inFeatures, rank, a, b)
    }

    /// Internal: factors already validated (they come from LAPACK on a finite matrix).
    init(unchecked outFeatures: Int, _ inFeatures: Int, _ rank: Int, _ a: [Float], _ b: [Float]) {
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.rank = rank
        self.a = a
        self.b = b
        var bt = [Float](repeating: 0, count: b.count)
        var at = [Float](repeating: 0, count: a.count)
        for j in 0..<rank {
            for i in 0..<inFeatures { bt[i &* rank &+ j] = b[j &* inFeatures &+ i] }
            for o in 0..<outFeatures { at[j &* outFeatures &+ o] = a[o &* rank &+ j] }
        }
        self.bt = bt
        self.at = at
    }

    /// The empty (rank-0) correction of an `outFeatures × inFeatures` weight.
    static func zero(outFeatures: Int, inFeatures: Int) -> LowRankCorrection {
        LowRankCorrection(unchecked: outFeatures, inFeatures, 0, [], [])
    }

    /// Bytes the correction holds in memory: the two factors and their transposed copies the
    /// kernel reads, `2 · 4 · rank · (out + in)`, the price of the correction next to the ternary
    /// weight's `out · in / 4` bytes at 2 bits per weight. (A checkpoint stores the factors
    /// only, half of this.)
    public var storageBytes: Int { (a.count + b.count + at.count + bt.count) * MemoryLayout<Float>.size }

    /// The Float elements of scratch `apply` needs for a batch: `batch · rank` (the
    /// intermediate `B·x`), so that the caller can allocate it once.
    public func scratchCount(batch: Int) -> Int { batch * rank }

    /// The dense product `A · B`, row-major `out × in` (for checks and tests; a layer never
    /// forms it, which would cost `out · in` Floats).
    public func denseProduct(context: ComputeContext = .singleThreaded) -> [Float] {
        var ab = [Float](repeating: 0, count: outFeatures * inFeatures)
        guard rank > 0 else { return ab }
        openblas_set_num_threads(Int32(context.threads))
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                ab.withUnsafeMutableBufferPointer { pab in
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasNoTrans, Int32(outFeatures), Int32(inFeatures), Int32(rank),
                                1, pa.baseAddress, Int32(rank), pb.baseAddress, Int32(inFeatures), 0,
                                pab.baseAddress, Int32(inFeatures))
                }
            }
        }
        return ab
    }

    /// Adds the correction to a product: `y += A · (B · x)` for `batch` rows, row-major
    /// (`x` is `batch × in`, `y` is `batch × out`).
    ///
    /// The hot path of a corrected `BitLinear`: it allocates nothing. `t = B · x` goes into the
    /// caller's `scratch` (at least `scratchCount(batch:)` Floats, row-major `batch × rank`), then
    /// `A · t` is added to `y`. Both products run on the transposed factors in a C kernel
    /// (``LowRankVariant``) that gives every row the same bits whatever the batch: each `t[j]` is
    /// one chain over `i = 0 ..< in` from 0, each `y[o]` gets one chain over `j = 0 ..< rank` from
    /// 0 added to it, and neither register tiles of rows, cache blocks nor the split across
    /// `context.threads` (rows, or `t`'s lanes for a batch smaller than the thread count, then
    /// output columns) change any of these chains. Rank 0 leaves `y` unchanged.
    /// - Parameters:
    ///   - x: the Float input rows, `batch × inFeatures`.
    ///   - batch: rows of `x` and `y` (at least 1).
    ///   - y: the rows the correction is added to, `batch × outFeatures`.
    ///   - scratch: at least `scratchCount(batch:)` Floats for `t = B · x`.
    ///   - context: the thread count (it never changes a value).
    ///   - variant: the kernel to run (tests and benchmarks); nil picks ``LowRankVariant/selected``.
    /// - Throws: `.invalidArgument` for `batch < 1` or a variant this CPU cannot run;
    ///   `.lengthMismatch` when `x`, `y` or `scratch` is too short for the batch.
    public func apply(_ x: UnsafeBufferPointer<Float>, batch: Int, into y: UnsafeMutableBufferPointer<Float>,
                      scratch: UnsafeMutableBufferPointer<Float>, context: ComputeContext = .singleThreaded,
                      variant: LowRankVariant? = nil) throws {
        guard batch >= 1 else { throw TernaryKitError.invalidArgument("batch must be at least 1, got \(batch)") }
        let (nx, ox) = batch.multipliedReportingOverflow(by: inFeatures)
        let (ny, oy) = batch.multipliedReportingOverflow(by: outFeatures)
        let (ns, os) = batch.multipliedReportingOverflow(by: rank)
        guard !ox, !oy, !os else {
            throw TernaryKitError.invalidArgument("batch \(batch) is too large for \(outFeatures)×\(inFeatures) rank \(rank)")
        }
        guard x.count >= nx else { throw TernaryKitError.lengthMismatch(expected: nx, actual: x.count, what: "correction input x (batch \(batch) × \(inFeatures))") }
        guard y.count >= ny else { throw TernaryKitError.lengthMismatch(expected: ny, actual: y.count, what: "correction output y (batch \(batch) × \(outFeatures))") }
        guard scratch.count >= ns else {
            throw TernaryKitError.lengthMismatch(expected: ns, actual: scratch.count, what: "correction scratch (batch \(batch) × rank \(rank))")
        }
        let kernel = variant ?? .selected
        if let variant, !variant.isSupported {
            throw TernaryKitError.invalidArgument("low-rank kernel variant '\(variant.rawValue)' is not supported by this CPU (\(CPUFeatures.detected.summary))")
        }
        guard rank > 0, let px = x.baseAddress, let py = y.baseAddress, let pt = scratch.baseAddress else { return }
        let bx = kernel.bx, ay = kernel.at
        let n = inFeatures, m = outFeatures, r = rank, threads = max(1, context.threads)
        bt.withUnsafeBufferPointer { pbt in
            at.withUnsafeBufferPointer { pat in
                let bt = pbt.baseAddress, at = pat.baseAddress
                // Step 1, t = B·x: whole rows per thread, or (fewer rows than threads) ranges of
                // t's lanes; either way every t[row][j] is the same chain.
                if batch >= threads {
                    Parallel.forEachChunk(count: batch, threads: threads, costPerItem: n &* r) { rows in
                        bx(bt, Int64(n), Int64(r), px + rows.lowerBound &* n, Int64(rows.count),
                           pt + rows.lowerBound &* r, 0, Int64(r))
                    }
                } else {
                    Parallel.forEachChunk(count: r, threads: threads, granularity: 16, costPerItem: batch &* n) { js in
                        bx(bt, Int64(n), Int64(r), px, Int64(batch), pt, Int64(js.lowerBound), Int64(js.upperBound))
                    }
                }
                // Step 2, y += A·t: ranges of output columns (whole 64-lane blocks) per thread.
                Parallel.forEachChunk(count: m, threads: threads, granularity: 64, costPerItem: batch &* r) { os in
                    ay(at, Int64(r), Int64(m), pt, Int64(batch), py, Int64(os.lowerBound), Int64(os.upperBound))
                }
            }
        }
    }

    /// Array convenience for `apply(_:batch:into:scratch:context:variant:)`: allocates its scratch, so
    /// keep it off hot paths.
    /// - Throws: as the pointer form.
    public func apply(_ x: [Float], batch: Int, to y: inout [Float], context: ComputeContext = .singleThreaded,
                      variant: LowRankVariant? = nil) throws {
        guard batch >= 1 else { throw TernaryKitError.invalidArgument("batch must be at least 1, got \(batch)") }
        let (ns, os) = batch.multipliedReportingOverflow(by: rank)
        guard !os else { throw TernaryKitError.invalidArgument("batch \(batch) × rank \(rank) overflows Int") }
        var scratch = [Float](repeating: 0, count: ns)
        try x.withUnsafeBufferPointer { px in
            try y.withUnsafeMutableBufferPointer { py in
                try scratch.withUnsafeMutableBufferPointer { ps in
                    try apply(px, batch: batch, into: py, scratch: ps, context: context, variant: variant)
                }
            }
        }
    }
}
