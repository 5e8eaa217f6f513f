import COpenBLAS
import TensorCore

/// What ternarizing one float matrix gave: the ternary weight and how much of `W` it lost.
public struct TernarizationResult: Sendable, Equatable {
    /// The tensor's name, as given to `Ternarization.ternarize` (used in error messages).
    public let name: String
    /// The ternary weight `T` with `scale = γ`, from `TernaryMatrix(absmean:)`.
    public let matrix: TernaryMatrix
    /// `‖W‖_F`, accumulated in Double.
    public let weightNorm: Double
    /// `‖W − γT‖_F`, accumulated in Double (with each entry's difference rounded to Float, as
    /// `Ternarization.residual` stores it).
    public let residualNorm: Double

    /// BitNet's per-tensor scale `γ = max(mean|W|, 1e-5)`.
    public var gamma: Float { matrix.scale }
    /// `‖W − γT‖_F / ‖W‖_F`: the share of the weight ternarization loses (about 0.52 for
    /// Gaussian weights). 0 for an all-zero `W`, which ternarizes exactly.
    public var relativeError: Double { weightNorm > 0 ? residualNorm / weightNorm : 0 }
}

/// A rank-r correction of a ternarization residual and its accuracy.
public struct LowRankCorrectionResult: Sendable {
    /// The factors `A` (`out × rank`) and `B` (`rank × in`).
    public let correction: LowRankCorrection
    /// The rank asked for; `correction.rank` is `min(requestedRank, min(out, in))`.
    public let requestedRank: Int
    /// True when `requestedRank > min(out, in)` and the rank was lowered to `min(out, in)`
    /// (a rank-min(out, in) correction is already exact, so more would only waste memory).
    public let clamped: Bool
    /// The SVD method that computed the factors (`.gesdd` when `.randomized` fell back to it).
    public let method: SVDMethod
    /// The singular values the method computed, descending: all `min(out, in)` for `gesdd` and
    /// `gesvd`, the r largest for `gesvdx`, the sketch's `r + oversampling` for `randomized`;
    /// empty for rank 0.
    public let singularValues: [Float]
    /// `‖R‖_F` of the residual that was corrected (Double accumulation).
    public let residualNorm: Double
    /// `‖R − A·B‖_F` from the singular values: `sqrt(Σ_{i>r} σᵢ²)` when all are known
    /// (Eckart–Young), otherwise `sqrt(max(0, ‖R‖² − Σ_{i≤r} σᵢ²))`, exact for the returned
    /// orthogonal-projection factors up to rounding.
    public let correctedResidualNorm: Double
    /// The norm errors are relative to: `‖W‖_F` from `Ternarization.ternarize`, or what the
    /// caller passed (`‖R‖_F` by default).
    public let referenceNorm: Double
    /// `‖R − A·B‖_F` measured by forming `A·B` with `cblas_sgemm`, relative to `referenceNorm`;
    /// nil unless `verify: true` (it costs an `out × in` Float buffer and a GEMM).
    public let explicitRelativeError: Double?

    /// The rank used.
    public var rank: Int { correction.rank }
    /// `‖W − γT − A·B‖_F / ‖W‖_F` (relative to `referenceNorm`): what the correction leaves.
    public var correctedRelativeError: Double { referenceNorm > 0 ? correctedResidualNorm / referenceNorm : 0 }
}

/// Ternarizing float weights with BitNet b1.58's absmean rule, and a low-rank Float correction
/// of what that loses, computed by LAPACK.
///
/// ```swift
/// let (t, c) = try Ternarization.ternarize(w, outFeatures: 2560, inFeatures: 6912, rank: 64,
///                                          context: ComputeContext(threads: 2), name: "up_proj")
/// print(t.relativeError, c.correctedRelativeError)   // ≈ 0.52 → less after the correction
/// // y = γ·T·x + A·(B·x):
/// try c.correction.apply(x, batch: 1, into: y, scratch: s)
/// ```
///
/// LAPACK and BLAS run on OpenBLAS's global thread pool, which every call here sets to
/// `context.threads` (as `BLASKernel` does). Dimensions are limited to what LAPACK's 32-bit
/// integers address: `out · in ≤ Int32.max`.
public enum Ternarization {
    /// Checks the shape, the element count and that every value is finite, naming the tensor.
    static func validate(_ w: [Float], outFeatures: Int, inFeatures: Int, name: String, what: String) throws {
        guard outFeatures > 0, inFeatures > 0 else {
            throw TernaryKitError.invalidShape("\(name): \(what) needs positive dimensions, got \(outFeatures)×\(inFeatures)")
        }
        let (count, overflow) = outFeatures.multipliedReportingOverflow(by: inFeatures)
        guard !overflow, count <= Int(Int32.max) else {
            throw TernaryKitError.invalidShape("\(name): \(outFeatures)×\(inFeatures) exceeds Int32.max elements, the LAPACK limit")
        }
        guard w.count == count else {
            throw TernaryKitError.lengthMismatch(expected: count, actual: w.count, what: "\(name): \(what) for \(outFeatures)×\(inFeatures)")
        }
        if let i = w.firstIndex(where: { !$0.isFinite }) {
            throw TernaryKitError.invalidValue(
                "\(name): \(what) has \(w[i]) at row \(i / inFeatures), column \(i % inFeatures); only finite values can be ternarized")
        }
    }

    /// Ternarizes a row-major `outFeatures × inFeatures` Float matrix per tensor:
    /// `γ = max(mean|W|, 1e-5)`, codes `clamp(round_half_even(W / γ), −1, 1)` (exactly
    /// `TernaryMatrix(absmean:)`), and reports `‖W − γT‖ / ‖W‖` in Double.
    /// - Parameters:
    ///   - w: the Float weights, `outFeatures × inFeatures` values.
    ///   - outFeatures: rows of the matrix.
    ///   - inFeatures: columns of the matrix.
    ///   - name: the tensor's name, used in every error message.
    /// - Throws: `.invalidShape` / `.lengthMismatch` for a bad shape or count, `.invalidValue`
    ///   naming the tensor and the position of a NaN or infinity.
    public static func ternarize(_ w: [Float], outFeatures: Int, inFeatures: Int, name: String = "weight") throws -> TernarizationResult {
        try validate(w, outFeatures: outFeatures, inFeatures: inFeatures, name: name, what: "weight")
        let matrix: TernaryMatrix
        do {
            matrix = try TernaryMatrix(absmean: w, outFeatures: outFeatures, inFeatures: inFeatures)
        } catch let error as TernaryKitError {
            throw prefixed(error, name)
        }
        let (wNorm, rNorm) = norms(w, matrix)
        return TernarizationResult(name: name, matrix: matrix, weightNorm: wNorm, residualNorm: rNorm)
    }

    /// `‖W‖` and `‖W − γT‖` (entries of the difference rounded to Float), in Double.
    static func norms(_ w: [Float], _ t: TernaryMatrix) -> (Double, Double) {
        let gamma = t.scale
        var sw: Double = 0, sr: Double = 0
        w.withUnsafeBufferPointer { pw in
            t.values.withUnsafeBufferPointer { pt in
                for i in 0..<pw.count {
                    let x = pw[i]
                    let d = Double(x - gamma * Float(pt[i]))
                    sw += Double(x) * Double(x)
                    sr += d * d
                }
            }
        }
        return (sw.squareRoot(), sr.squareRoot())
    }

    /// The residual `R = W − γT`, row-major, rounded to Float: what `lowRankCorrection` corrects.
    /// - Throws: `.lengthMismatch` when `w` does not have `matrix`'s shape, `.invalidValue` for a
    ///   non-finite value (both naming the tensor).
    public static func residual(_ w: [Float], of matrix: TernaryMatrix, name: String = "weight") throws -> [Float] {
        try validate(w, outFeatures: matrix.outFeatures, inFeatures: matrix.inFeatures, name: name, what: "weight")
        let gamma = matrix.scale
        var r = [Float](repeating: 0, count: w.count)
        w.withUnsafeBufferPointer { pw in
            matrix.values.withUnsafeBufferPointer { pt in
                r.withUnsafeMutableBufferPointer { pr in
                    for i in 0..<pw.count { pr[i] = pw[i] - gamma * Float(pt[i]) }
                }
            }
        }
        return r
    }

    /// The best rank-r approximation `A·B` of a residual (truncated SVD, Eckart–Young), with
    /// `A = U_r Σ_r` and `B = V_rᵀ`, and the error it leaves.
    ///
    /// - Parameters:
    ///   - residual: row-major `outFeatures × inFeatures` (not modified; LAPACK works on a copy).
    ///   - outFeatures: rows of the residual.
    ///   - inFeatures: columns of the residual.
    ///   - rank: r ≥ 0; above `min(out, in)` it is lowered to `min(out, in)` and `clamped` is set.
    ///   - referenceNorm: what the errors are relative to (pass `‖W‖`); nil means `‖R‖`.
    ///   - method: the SVD driver; `SVDMethod.default` (`gesvdx`) is the fastest exact one measured.
    ///   - context: OpenBLAS's thread count for LAPACK and BLAS.
    ///   - verify: also form `A·B` with `cblas_sgemm` and measure `‖R − A·B‖` directly.
    ///   - name: the tensor's name, used in every error message.
    /// - Throws: `.invalidArgument` for a negative rank or bad method parameters, the errors of
    ///   `ternarize` for the shape and values, `.invalidValue` if LAPACK does not converge.
    public static func lowRankCorrection(
        of residual: [Float], outFeatures: Int, inFeatures: Int, rank: Int, relativeTo referenceNorm: Double? = nil,
        method: SVDMethod = .default, context: ComputeContext = .singleThreaded, verify: Bool = false,
        name: String = "weight"
    ) throws -> LowRankCorrectionResult {
        guard rank >= 0 else { throw TernaryKitError.invalidArgument("\(name): rank must be ≥ 0, got \(rank)") }
        try validate(residual, outFeatures: outFeatures, inFeatures: inFeatures, name: name, what: "residual")
        if case .randomized(let p, let q, _) = method, p < 0 || q < 0 || q > 64 {
            throw TernaryKitError.invalidArgument("\(name): randomized SVD needs oversampling ≥ 0 and 0 ≤ powerIterations ≤ 64, got \(p), \(q)")
        }
        if let norm = referenceNorm, !(norm.isFinite && norm >= 0) {
            throw TernaryKitError.invalidArgument("\(name): reference norm \(norm) is not a finite value ≥ 0")
        }
        let m = outFeatures, n = inFeatures, full = min(m, n)
        let r = min(rank, full)
        var sumSquares: Double = 0
        residual.withUnsafeBufferPointer { p in
            for i in 0..<p.count { sumSquares += Double(p[i]) * Double(p[i]) }
        }
        let residualNorm = sumSquares.squareRoot()
        let reference = referenceNorm ?? residualNorm

        guard r > 0, residualNorm > 0 else {
            // Nothing to correct (rank 0, or R = 0 where every singular value is 0).
            return LowRankCorrectionResult(
                correction: r == 0 ? .zero(outFeatures: m, inFeatures: n)
                    : LowRankCorrection(unchecked: m, n, r, [Float](repeating: 0, count: m * r), [Float](repeating: 0, count: r * n)),
                requestedRank: rank, clamped: rank > full, method: method, singularValues: [],
                residualNorm: residualNorm, correctedResidualNorm: residualNorm,
                referenceNorm: reference, explicitRelativeError: verify ? (reference > 0 ? residualNorm / reference : 0) : nil)
        }

        openblas_set_num_threads(Int32(context.threads))
        var used = method
        let f: TruncatedSVDFactors
        switch method {
        case .gesdd, .gesvd:
            var work = residual
            f = try TruncatedSVD.full(&work, m: m, n: n, rank: r, divideAndConquer: method == .gesdd, name: name)
        case .gesvdx:
            var work = residual
            f = try TruncatedSVD.selected(&work, m: m, n: n, rank: r, name: name)
        case .randomized(let p, let q, let seed):
            if r + p >= full {
                used = .gesdd
                var work = residual
                f = try TruncatedSVD.full(&work, m: m, n: n, rank: r, divideAndConquer: true, name: name)
            } else {
                f = try TruncatedSVD.randomized(residual, m: m, n: n, rank: r, oversampling: p, powerIterations: q, seed: seed, name: name)
            }
        }
        let tail: Double
        if f.complete {
            var s: Double = 0
            for i in r..<f.singularValues.count { s += Double(f.singularValues[i]) * Double(f.singularValues[i]) }
            tail = s.squareRoot()
        } else {
            var kept: Double = 0
            for i in 0..<r { kept += Double(f.singularValues[i]) * Double(f.singularValues[i]) }
            tail = max(0, sumSquares - kept).squareRoot()
        }
        let correction = LowRankCorrection(unchecked: m, n, r, f.a, f.b)
        var explicit: Double?
        if verify {
            let ab = correction.denseProduct(context: context)
            var s: Double = 0
            for i in 0..<ab.count {
                let d = Double(residual[i]) - Double(ab[i])
                s += d * d
            }
            explicit = reference > 0 ? s.squareRoot() / reference : 0
        }
        return LowRankCorrectionResult(
            correction: correction, requestedRank: rank, clamped: rank > full, method: used, singularValues: f.singularValues,
            residualNorm: residualNorm, correctedResidualNorm: tail, referenceNorm: reference, explicitRelativeError: explicit)
    }

    /// Ternarizes `w` and corrects the residual with rank r in one call; the correction's errors
    /// are relative to `‖W‖`, so `correction.correctedRelativeError` is `‖W − γT − A·B‖ / ‖W‖`.
    /// - Throws: as `ternarize` and `lowRankCorrection`.
    public static func ternarize(
        _ w: [Float], outFeatures: Int, inFeatures: Int, rank: Int, method: SVDMethod = .default,
        context: ComputeContext = .singleThreaded, verify: Bool = false, name: String = "weight"
    ) throws -> (ternarization: TernarizationResult, correction: LowRankCorrectionResult) {
        guard rank >= 0 else { throw TernaryKitError.invalidArgument("\(name): rank must be ≥ 0, got \(rank)") }
        let t = try ternarize(w, outFeatures: outFeatures, inFeatures: inFeatures, name: name)
        let r = try residual(w, of: t.matrix, name: name)
        let c = try lowRankCorrection(of: r, outFeatures: outFeatures, inFeatures: inFeatures, rank: rank,
                                      relativeTo: t.weightNorm, method: method, context: context, verify: verify, name: name)
        return (t, c)
    }

    /// `error` with the tensor's name in front of its message.
    static func prefixed(_ error: TernaryKitError, _ name: String) -> TernaryKitError {
        switch error {
        case .invalidShape(let m): return .invalidShape("\(name): \(m)")
        case .invalidValue(let m): return .invalidValue("\(name): \(m)")
        case .invalidArgument(let m): return .invalidArgument("\(name): \(m)")
        case .exactnessLimit(let m): return .exactnessLimit("\(name): \(m)")
        case .lengthMismatch(let e, let a, let what): return .lengthMismatch(expected: e, actual: a, what: "\(name): \(what)")
        default: return error
        }
    }
}
