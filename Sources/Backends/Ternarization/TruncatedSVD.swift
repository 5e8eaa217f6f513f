import COpenBLAS
import TensorCore

/// LAPACKE's `lapack_int` (a C macro, so not imported): 32-bit on Debian's liblapacke.
typealias LapackInt = Int32

/// How `Ternarization.lowRankCorrection` computes the truncated SVD of the residual.
///
/// The three LAPACK drivers give the exact (to Float precision) best rank-r factors; they differ
/// in speed and in what they compute. `randomized` trades a small, measurable loss of accuracy
/// for speed on large matrices with small r.
public enum SVDMethod: Sendable, Equatable, CustomStringConvertible {
    /// `LAPACKE_sgesdd`, divide and conquer: all singular values and the thin factors.
    case gesdd
    /// `LAPACKE_sgesvd`, QR iteration: all singular values and the thin factors.
    case gesvd
    /// `LAPACKE_sgesvdx`: only the r largest singular triplets (after a full bidiagonalization);
    /// the error after correction comes from `‖R‖² − Σ_{i≤r} σᵢ²`.
    case gesvdx
    /// Randomized SVD (Halko, Martinsson, Tropp 2011): a Gaussian sketch of `r + oversampling`
    /// columns, `powerIterations` rounds of `R Rᵀ` with re-orthonormalization (sgemm +
    /// `sgeqrf`/`sorgqr`), then `sgesdd` of the small projected matrix. Deterministic for a
    /// given `seed`. Its factors are the best rank-r approximation within the sketched subspace,
    /// so its error is a little above Eckart–Young's; the reported error is exact for the factors
    /// it returns (`‖R‖² − Σ_{i≤r} σ̃ᵢ²`). Falls back to `gesdd` when `r + oversampling` reaches
    /// `min(out, in)`.
    case randomized(oversampling: Int = 10, powerIterations: Int = 2, seed: UInt64 = 0x5EED)

    /// The method used when none is given: `gesvdx`, the fastest exact driver measured on this
    /// project's machine (2560×6912 Gaussian residual, r = 64, one thread, CPU seconds):
    /// `gesvdx` 2.4–2.5 s, `gesdd` 5.2–5.8 s, `gesvd` 119 s; `randomized()` takes
    /// 0.2 s but keeps 84 % of the optimal error reduction on that (flat-spectrum) matrix.
    public static let `default`: SVDMethod = .gesvdx

    /// e.g. "gesdd" or "randomized(p: 10, q: 2)".
    public var description: String {
        switch self {
        case .gesdd: return "gesdd"
        case .gesvd: return "gesvd"
        case .gesvdx: return "gesvdx"
        case .randomized(let p, let q, _): return "randomized(p: \(p), q: \(q))"
        }
    }
}

/// The rank-r factors of an SVD in the layout `LowRankCorrection` keeps, and the singular
/// values the method computed (descending).
struct TruncatedSVDFactors {
    var a: [Float]             // out × r, row-major, U_r Σ_r
    var b: [Float]             // r × in, row-major, V_rᵀ
    var singularValues: [Float]
    /// True when `singularValues` holds all min(out, in) values (so the tail is Σ_{i>r} σᵢ²).
    var complete: Bool
}

/// Truncated SVDs of a row-major `m × n` Float matrix through LAPACKE.
///
/// A row-major `m × n` matrix is the column-major `n × m` matrix `Rᵀ`, so every call works
/// column-major on the caller's bytes without LAPACKE's row-major transposition copies:
/// `Rᵀ = V Σ Uᵀ`, LAPACK's "U" is our `V` (its columns, contiguous, are the rows of `B = V_rᵀ`)
/// and its "VT" is our `Uᵀ` (so `A[o, i] = σᵢ · VT[i + o·ldvt]`).
enum TruncatedSVD {
    static func lapackChar(_ c: Unicode.Scalar) -> CChar { CChar(UInt8(ascii: c)) }

    /// Throws when LAPACK reports a failure: info < 0 is a bad argument (a bug here), info > 0
    /// that the iteration did not converge.
    static func check(_ info: LapackInt, _ routine: String, _ name: String) throws {
        if info < 0 {
            throw TernaryKitError.invalidArgument("\(name): LAPACKE_\(routine) rejected argument \(-info)")
        }
        if info > 0 {
            throw TernaryKitError.invalidValue("\(name): LAPACKE_\(routine) did not converge (info \(info))")
        }
    }

    /// Factors from LAPACK's column-major view: `u` is `n × k` (ld n), `vt` is `k × m` (ld ldvt).
    static func factors(u: UnsafePointer<Float>, vt: UnsafePointer<Float>, ldvt: Int, s: [Float],
                        m: Int, n: Int, rank r: Int, complete: Bool) -> TruncatedSVDFactors {
        let b = Array(UnsafeBufferPointer(start: u, count: r &* n))
        var a = [Float](repeating: 0, count: m &* r)
        a.withUnsafeMutableBufferPointer { pa in
            for o in 0..<m {
                let row = o &* r, col = o &* ldvt
                for i in 0..<r { pa[row &+ i] = s[i] * vt[col &+ i] }
            }
        }
        return TruncatedSVDFactors(a: a, b: b, singularValues: s, complete: complete)
    }

    /// `gesdd` or `gesvd`: the thin SVD of the whole matrix, truncated to r.
    /// `work` is destroyed (a copy of the matrix, row-major m × n).
    static func full(_ work: inout [Float], m: Int, n: Int, rank r: Int, divideAndConquer: Bool, name: String) throws -> TruncatedSVDFactors {
        let k = min(m, n)
        var s = [Float](repeating: 0, count: k)
        var u = [Float](repeating: 0, count: n &* k)
        var vt = [Float](repeating: 0, count: k &* m)
        let jobS = lapackChar("S")
        let info: LapackInt = work.withUnsafeMutableBufferPointer { pw in
            s.withUnsafeMutableBufferPointer { ps in
                u.withUnsafeMutableBufferPointer { pu in
                    vt.withUnsafeMutableBufferPointer { pv in
                        if divideAndConquer {
                            return LAPACKE_sgesdd(LAPACK_COL_MAJOR, jobS, LapackInt(n), LapackInt(m), pw.baseAddress, LapackInt(n),
                                                  ps.baseAddress, pu.baseAddress, LapackInt(n), pv.baseAddress, LapackInt(k))
                        }
                        var superb = [Float](repeating: 0, count: max(1, k - 1))
                        return superb.withUnsafeMutableBufferPointer { pb in
                            LAPACKE_sgesvd(LAPACK_COL_MAJOR, jobS, jobS, LapackInt(n), LapackInt(m), pw.baseAddress, LapackInt(n),
                                           ps.baseAddress, pu.baseAddress, LapackInt(n), pv.baseAddress, LapackInt(k), pb.baseAddress)
                        }
                    }
                }
            }
        }
        try check(info, divideAndConquer ? "sgesdd" : "sgesvd", name)
        return u.withUnsafeBufferPointer { pu in
            vt.withUnsafeBufferPointer { pv in
                factors(u: pu.baseAddress!, vt: pv.baseAddress!, ldvt: k, s: s, m: m, n: n, rank: r, complete: true)
            }
        }
    }

    /// `gesvdx` with RANGE = 'I': only the r largest singular triplets (1 ≤ r ≤ min(m, n)).
    static func selected(_ work: inout [Float], m: Int, n: Int, rank r: Int, name: String) throws -> TruncatedSVDFactors {
        let k = min(m, n)
        var s = [Float](repeating: 0, count: k)
        var u = [Float](repeating: 0, count: n &* r)
        var vt = [Float](repeating: 0, count: r &* m)
        var superb = [LapackInt](repeating: 0, count: 12 &* k)
        var found: LapackInt = 0
        let jobV = lapackChar("V"), range = lapackChar("I")
        let info: LapackInt = work.withUnsafeMutableBufferPointer { pw in
            s.withUnsafeMutableBufferPointer { ps in
                u.withUnsafeMutableBufferPointer { pu in
                    vt.withUnsafeMutableBufferPointer { pv in
                        superb.withUnsafeMutableBufferPointer { pb in
                            LAPACKE_sgesvdx(LAPACK_COL_MAJOR, jobV, jobV, range, LapackInt(n), LapackInt(m), pw.baseAddress, LapackInt(n),
                                            0, 0, 1, LapackInt(r), &found, ps.baseAddress, pu.baseAddress, LapackInt(n),
                                            pv.baseAddress, LapackInt(r), pb.baseAddress)
                        }
                    }
                }
            }
        }
        try check(info, "sgesvdx", name)
        guard Int(found) == r else {
            throw TernaryKitError.invalidValue("\(name): LAPACKE_sgesvdx found \(found) singular values, expected \(r)")
        }
        let top = Array(s.prefix(r))
        return u.withUnsafeBufferPointer { pu in
            vt.withUnsafeBufferPointer { pv in
                factors(u: pu.baseAddress!, vt: pv.baseAddress!, ldvt: r, s: top, m: m, n: n, rank: r, complete: r == k)
            }
        }
    }

    /// Replaces the column-major `rows × cols` matrix in `q` (rows ≥ cols) by an orthonormal
    /// basis of its columns (`sgeqrf` then `sorgqr`).
    static func orthonormalize(_ q: UnsafeMutablePointer<Float>, rows: Int, cols: Int, tau: UnsafeMutablePointer<Float>, name: String) throws {
        try check(LAPACKE_sgeqrf(LAPACK_COL_MAJOR, LapackInt(rows), LapackInt(cols), q, LapackInt(rows), tau), "sgeqrf", name)
        try check(LAPACKE_sorgqr(LAPACK_COL_MAJOR, LapackInt(rows), LapackInt(cols), LapackInt(cols), q, LapackInt(rows), tau), "sorgqr", name)
    }

    /// Randomized SVD of the row-major `m × n` matrix `matrix` (not modified), rank r, with
    /// `l = r + oversampling < min(m, n)` sketch columns. In LAPACK's column-major terms the
    /// matrix is `Rt = Rᵀ` (`n × m`, ld n).
    static func randomized(_ matrix: [Float], m: Int, n: Int, rank r: Int, oversampling: Int, powerIterations: Int,
                           seed: UInt64, name: String) throws -> TruncatedSVDFactors {
        let l = r &+ oversampling
        var rng = SeededGenerator(seed: seed)
        let omega = rng.gaussians(count: n &* l)           // n × l
        var y = [Float](repeating: 0, count: m &* l)         // m × l: R Ω, then Q
        var z = [Float](repeating: 0, count: n &* l)         // n × l: Rᵀ Q, then Bᵀ = Rᵀ Q
        var tau = [Float](repeating: 0, count: l)
        let mi = Int32(m), ni = Int32(n), li = Int32(l)
        try matrix.withUnsafeBufferPointer { pr in
            try y.withUnsafeMutableBufferPointer { py in
                try z.withUnsafeMutableBufferPointer { pz in
                    try tau.withUnsafeMutableBufferPointer { pt in
                        let rt = pr.baseAddress!, yq = py.baseAddress!, zq = pz.baseAddress!, t = pt.baseAddress!
                        // Y = R Ω
                        omega.withUnsafeBufferPointer { po in
                            cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, mi, li, ni, 1, rt, ni, po.baseAddress, ni, 0, yq, mi)
                        }
                        try orthonormalize(yq, rows: m, cols: l, tau: t, name: name)
                        for _ in 0..<max(0, powerIterations) {
                            // Z = Rᵀ Q, orthonormalized; Y = R Z, orthonormalized
                            cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, ni, li, mi, 1, rt, ni, yq, mi, 0, zq, ni)
                            try orthonormalize(zq, rows: n, cols: l, tau: t, name: name)
                            cblas_sgemm(CblasColMajor, CblasTrans, CblasNoTrans, mi, li, ni, 1, rt, ni, zq, ni, 0, yq, mi)
                            try orthonormalize(yq, rows: m, cols: l, tau: t, name: name)
                        }
                        // Bᵀ = (Qᵀ R)ᵀ = Rᵀ Q  (n × l)
                        cblas_sgemm(CblasColMajor, CblasNoTrans, CblasNoTrans, ni, li, mi, 1, rt, ni, yq, mi, 0, zq, ni)
                    }
                }
            }
        }
        // Bᵀ = U' Σ VT'  ⇒  R ≈ Q Bs = (Q VT'ᵀ) Σ U'ᵀ: B = U'_rᵀ, A = Q VT'ᵀ_r Σ_r.
        var s = [Float](repeating: 0, count: l)
        var u = [Float](repeating: 0, count: n &* l)
        var vt = [Float](repeating: 0, count: l &* l)
        let info = z.withUnsafeMutableBufferPointer { pz in
            s.withUnsafeMutableBufferPointer { ps in
                u.withUnsafeMutableBufferPointer { pu in
                    vt.withUnsafeMutableBufferPointer { pv in
                        LAPACKE_sgesdd(LAPACK_COL_MAJOR, lapackChar("S"), ni, li, pz.baseAddress, ni, ps.baseAddress,
                                       pu.baseAddress, ni, pv.baseAddress, li)
                    }
                }
            }
        }
        try check(info, "sgesdd", name)
        // A (row-major m × r) is the column-major r × m matrix VT'[0..<r, :] · Qᵀ, then row o scaled by σ.
        var a = [Float](repeating: 0, count: m &* r)
        vt.withUnsafeBufferPointer { pv in
            y.withUnsafeBufferPointer { pq in
                a.withUnsafeMutableBufferPointer { pa in
                    cblas_sgemm(CblasColMajor, CblasNoTrans, CblasTrans, Int32(r), mi, li, 1, pv.baseAddress, li,
                                pq.baseAddress, mi, 0, pa.baseAddress, Int32(r))
                    for o in 0..<m {
                        let row = o &* r
                        for i in 0..<r { pa[row &+ i] = pa[row &+ i] * s[i] }
                    }
                }
            }
        }
        let b = Array(u.prefix(r &* n))
        return TruncatedSVDFactors(a: a, b: b, singularValues: s, complete: false)
    }
}
