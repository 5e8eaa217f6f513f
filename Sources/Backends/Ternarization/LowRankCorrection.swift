import COpenBLAS
import TensorCore

/// A rank-r Float correction `A · B` to add to a ternary product: `W ≈ γ·T + A·B`.
///
/// Ternarizing a float matrix loses about half of its Frobenius norm (the residual
/// `R = W − γT`); the best rank-r approximation of `R` (Eckart–Young, from its SVD) buys a part
/// of it back for `r · (out + in)` extra Float weights. A `BitLinear` then computes
/// `y = γ·T·x + A·(B·x)`: the ternary product stays the fast path and the correction is two thin
/// BLAS products. `A = U_r Σ_r` carries the singular values so that `B = V_rᵀ` is orthonormal.
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
    }

    /// The empty (rank-0) correction of an `outFeatures × inFeatures` weight.
    static func zero(outFeatures: Int, inFeatures: Int) -> LowRankCorrection {
        LowRankCorrection(unchecked: outFeatures, inFeatures, 0, [], [])
    }

    /// Bytes of the two factors: `4 · rank · (out + in)`, the price of the correction
    /// next to the ternary weight's `out · in / 4` bytes at 2 bits per weight.
    public var storageBytes: Int { (a.count + b.count) * MemoryLayout<Float>.size }

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
    /// The hot path of a corrected `BitLinear`: it allocates nothing. `B · x` goes into the
    /// caller's `scratch` (at least `scratchCount(batch:)` Floats), then `A ·` that is added
    /// to `y` (BLAS beta = 1). Batch 1 uses two `cblas_sgemv`, larger batches two `cblas_sgemm`.
    /// OpenBLAS's (global) thread pool is set to `context.threads` first, as `BLASKernel` does.
    /// Rank 0 leaves `y` unchanged.
    /// - Throws: `.invalidArgument` for `batch < 1`; `.lengthMismatch` when `x`, `y` or
    ///   `scratch` is too short for the batch.
    public func apply(_ x: UnsafeBufferPointer<Float>, batch: Int, into y: UnsafeMutableBufferPointer<Float>,
                      scratch: UnsafeMutableBufferPointer<Float>, context: ComputeContext = .singleThreaded) throws {
        guard batch >= 1 else { throw TernaryKitError.invalidArgument("batch must be at least 1, got \(batch)") }
        let (nx, ox) = batch.multipliedReportingOverflow(by: inFeatures)
        let (ny, oy) = batch.multipliedReportingOverflow(by: outFeatures)
        guard !ox, !oy, batch <= Int(Int32.max) else {
            throw TernaryKitError.invalidArgument("batch \(batch) is too large for \(outFeatures)×\(inFeatures)")
        }
        guard x.count >= nx else { throw TernaryKitError.lengthMismatch(expected: nx, actual: x.count, what: "correction input x (batch \(batch) × \(inFeatures))") }
        guard y.count >= ny else { throw TernaryKitError.lengthMismatch(expected: ny, actual: y.count, what: "correction output y (batch \(batch) × \(outFeatures))") }
        let ns = batch &* rank
        guard scratch.count >= ns else {
            throw TernaryKitError.lengthMismatch(expected: ns, actual: scratch.count, what: "correction scratch (batch \(batch) × rank \(rank))")
        }
        guard rank > 0, let px = x.baseAddress, let py = y.baseAddress, let pt = scratch.baseAddress else { return }
        openblas_set_num_threads(Int32(context.threads))
        let m = Int32(outFeatures), n = Int32(inFeatures), r = Int32(rank)
        a.withUnsafeBufferPointer { pa in
            b.withUnsafeBufferPointer { pb in
                if batch == 1 {
                    // t (r) = B (r × in) · x;  y (out) += A (out × r) · t
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, r, n, 1, pb.baseAddress, n, px, 1, 0, pt, 1)
                    cblas_sgemv(CblasRowMajor, CblasNoTrans, m, r, 1, pa.baseAddress, r, pt, 1, 1, py, 1)
                } else {
                    // T (batch × r) = X (batch × in) · Bᵀ;  Y (batch × out) += T · Aᵀ
                    let nb = Int32(batch)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, r, n, 1, px, n, pb.baseAddress, n, 0, pt, r)
                    cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, nb, m, r, 1, pt, r, pa.baseAddress, r, 1, py, m)
                }
            }
        }
    }

    /// Array convenience for `apply(_:batch:into:scratch:context:)`: allocates its scratch, so
    /// keep it off hot paths.
    /// - Throws: as the pointer form.
    public func apply(_ x: [Float], batch: Int, to y: inout [Float], context: ComputeContext = .singleThreaded) throws {
        guard batch >= 1 else { throw TernaryKitError.invalidArgument("batch must be at least 1, got \(batch)") }
        let (ns, os) = batch.multipliedReportingOverflow(by: rank)
        guard !os else { throw TernaryKitError.invalidArgument("batch \(batch) × rank \(rank) overflows Int") }
        var scratch = [Float](repeating: 0, count: ns)
        try x.withUnsafeBufferPointer { px in
            try y.withUnsafeMutableBufferPointer { py in
                try scratch.withUnsafeMutableBufferPointer { ps in
                    try apply(px, batch: batch, into: py, scratch: ps, context: context)
                }
            }
        }
    }
}
