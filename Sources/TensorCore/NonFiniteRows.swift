/// The Float path's rule for non-finite and overflowing inputs, the same on every backend.
///
/// A batch row of `x` that contains a NaN or an infinity, or whose largest magnitude is so
/// large that a sum of `inFeatures` weighted values could overflow Float32
/// (`4 · inFeatures · max|x| · max(1, |scale|) > Float.greatestFiniteMagnitude`), gives NaN in
/// every output of that row. Every other row is computed normally, and its outputs are finite
/// (no partial sum can overflow). Without this, backends disagree: summation order decides
/// whether a row with one NaN leaves some outputs finite (the RSR gathers skip zero weights),
/// and whether an overflowing row gives +Inf, −Inf or NaN.
///
/// Kernels call ``apply(x:batch:inFeatures:outFeatures:scale:y:)`` once after their product; it
/// costs one vectorized read of `x` (the maximum of the magnitudes' bit patterns).
public enum NonFiniteRows {
    /// Whether `row` (of `count` values) must give all-NaN outputs under the rule above.
    @inlinable
    public static func isPoisoned(_ row: UnsafePointer<Float>, count: Int, scale: Float) -> Bool {
        let maxBits = maximumMagnitudeBits(row, count: count)
        if maxBits >= 0x7F80_0000 { return true }   // an infinity or a NaN
        let bound = 4 * Double(count) * Double(Float(bitPattern: maxBits)) * max(1, Double(scale.magnitude))
        return !(bound <= Double(Float.greatestFiniteMagnitude))
    }

    /// The largest `bits & 0x7FFF_FFFF` over the values: for finite values, the bit pattern of
    /// the largest magnitude; ≥ 0x7F80_0000 exactly when a value is infinite or NaN.
    @inlinable
    public static func maximumMagnitudeBits(_ row: UnsafePointer<Float>, count: Int) -> UInt32 {
        let mask: UInt32 = 0x7FFF_FFFF
        var i = 0
        var best: UInt32 = 0
        let raw = UnsafeRawPointer(row)
        if count >= 16 {
            var acc = SIMD16<UInt32>(repeating: 0)
            let lanes = SIMD16<UInt32>(repeating: mask)
            while i + 16 <= count {
                let v = raw.loadUnaligned(fromByteOffset: i &* 4, as: SIMD16<UInt32>.self)
                acc = pointwiseMax(acc, v & lanes)
                i &+= 16
            }
            best = acc.max()
        }
        while i < count {
            best = max(best, row[i].bitPattern & mask)
            i &+= 1
        }
        return best
    }

    /// Applies the rule: fills with NaN the output rows of `y` whose input rows of `x` are
    /// poisoned (see the type). `x` is `batch × inFeatures`, `y` is `batch × outFeatures`.
    @inlinable
    public static func apply(x: UnsafeBufferPointer<Float>, batch: Int, inFeatures: Int, outFeatures: Int, scale: Float,
                             y: UnsafeMutableBufferPointer<Float>) {
        guard let xs = x.baseAddress, let ys = y.baseAddress else { return }
        for b in 0..<batch where isPoisoned(xs + b &* inFeatures, count: inFeatures, scale: scale) {
            (ys + b &* outFeatures).update(repeating: .nan, count: outFeatures)
        }
    }
}

extension LinearKernel {
    /// Applies the Float path's non-finite rule (``NonFiniteRows``) to a finished product.
    @inlinable
    public func applyNonFiniteRule(_ x: UnsafeBufferPointer<Float>, batch: Int, into y: UnsafeMutableBufferPointer<Float>) {
        NonFiniteRows.apply(x: x, batch: batch, inFeatures: inFeatures, outFeatures: outFeatures, scale: scale, y: y)
    }
}
