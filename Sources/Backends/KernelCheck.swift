import TensorCore

/// Comparing a kernel's output with the reference (naive) output: used by `ternary bench`
/// before it times anything, and by the tests.
public enum KernelCheck {
    /// The first index where two Int8-path results differ, described, or nil when identical.
    public static func firstMismatch(_ actual: [Int32], _ expected: [Int32], outFeatures: Int) -> String? {
        guard actual.count == expected.count else { return "lengths differ: \(actual.count) vs \(expected.count)" }
        for i in 0..<actual.count where actual[i] != expected[i] {
            return "batch row \(i / outFeatures), output \(i % outFeatures): \(actual[i]) != \(expected[i])"
        }
        return nil
    }

    /// Float-path tolerance per output: `tol = 8 · √in · 2⁻²⁴ · Σ|scale · w · x| + 1e-30`.
    ///
    /// Different backends sum in different orders. The worst-case bound for any order,
    /// `(in − 1) · 2⁻²⁴ · Σ|terms|`, is too loose to catch a single wrong term, so this uses the
    /// statistical √in growth of rounding errors for non-adversarial data with a margin of 8.
    /// Tests that need exact comparisons use integer-valued Float inputs instead.
    public static func floatTolerances(weights: TernaryMatrix, x: [Float], batch: Int) -> [Float] {
        let n = weights.inFeatures, m = weights.outFeatures
        let factor = 8 * Float(n).squareRoot() * 0x1p-24 * abs(weights.scale)
        var tol = [Float](repeating: 0, count: batch * m)
        weights.values.withUnsafeBufferPointer { w in
            x.withUnsafeBufferPointer { xp in
                for b in 0..<batch {
                    for o in 0..<m {
                        var s: Float = 0
                        for i in 0..<n where w[o * n + i] != 0 { s += abs(xp[b * n + i]) }
                        tol[b * m + o] = factor * s + 1e-30
                    }
                }
            }
        }
        return tol
    }

    /// The first index where a Float-path result is outside `tolerances` of the reference
    /// (or non-finite), described, or nil when all agree.
    public static func firstMismatch(_ actual: [Float], _ expected: [Float], tolerances: [Float], outFeatures: Int) -> String? {
        guard actual.count == expected.count, tolerances.count == expected.count else {
            return "lengths differ: \(actual.count) vs \(expected.count)"
        }
        for i in 0..<actual.count {
            let d = abs(actual[i] - expected[i])
            if !(d <= tolerances[i]) {
                return "batch row \(i / outFeatures), output \(i % outFeatures): \(actual[i]) vs \(expected[i]) (tolerance \(tolerances[i]))"
            }
        }
        return nil
    }
}
