/// Building ternary matrices from Float weights (absmean) and at random.
extension TernaryMatrix {
    /// Ternarizes Float weights with BitNet b1.58's per-tensor "absmean" rule:
    /// `γ = max(mean|W|, 1e-5)`, `W_t = clip(round(W / γ), -1, 1)` (round half to even), and
    /// `scale = γ`, so that `scale · values ≈ W`.
    /// - Throws: shape errors as `init(outFeatures:inFeatures:values:scale:)`; `.invalidValue` for
    ///   a non-finite weight.
    public init(absmean weights: [Float], outFeatures: Int, inFeatures: Int) throws {
        try TernaryMatrix.checkShape(outFeatures: outFeatures, inFeatures: inFeatures)
        guard weights.count == outFeatures * inFeatures else {
            throw TernaryKitError.lengthMismatch(expected: outFeatures * inFeatures, actual: weights.count,
                                                 what: "Float weights for \(outFeatures)×\(inFeatures)")
        }
        var sum: Double = 0
        for (i, w) in weights.enumerated() {
            guard w.isFinite else {
                throw TernaryKitError.invalidValue("weight \(w) at row \(i / inFeatures), column \(i % inFeatures) is not finite")
            }
            sum += Double(abs(w))
        }
        let gamma = max(Float(sum / Double(weights.count)), 1e-5)
        var binary = true
        let values = weights.map { w -> Int8 in
            let q = (w / gamma).rounded(.toNearestOrEven)
            let v: Int8 = q >= 1 ? 1 : (q <= -1 ? -1 : 0)
            if v == -1 { binary = false }
            return v
        }
        self.init(unchecked: outFeatures, inFeatures, values, gamma, isBinary: binary)
    }

    /// A random matrix: each entry is 0 with probability `zeroFraction`, otherwise ±1 with equal
    /// probability (or always +1 when `binary` is true).
    ///
    /// `zeroFraction = 1/3` gives the "about a third of each value" weights the benchmarks use.
    /// - Throws: shape errors; `.invalidArgument` when `zeroFraction` is outside [0, 1].
    public static func random(
        outFeatures: Int, inFeatures: Int, zeroFraction: Double = 1.0 / 3.0, binary: Bool = false,
        scale: Float = 1, using generator: inout SeededGenerator
    ) throws -> TernaryMatrix {
        try checkShape(outFeatures: outFeatures, inFeatures: inFeatures)
        guard zeroFraction >= 0, zeroFraction <= 1 else {
            throw TernaryKitError.invalidArgument("zeroFraction \(zeroFraction) is outside [0, 1]")
        }
        guard scale.isFinite else { throw TernaryKitError.invalidValue("scale \(scale) is not finite") }
        let threshold = UInt64(min(zeroFraction * 0x1p53, 0x1p53))
        let n = outFeatures * inFeatures
        var values = [Int8](repeating: 0, count: n)
        var hasNegative = false
        for i in 0..<n {
            let r = generator.next()
            if (r >> 11) < threshold { continue }            // zero
            if binary || (r & 1) == 0 { values[i] = 1 } else { values[i] = -1; hasNegative = true }
        }
        return TernaryMatrix(unchecked: outFeatures, inFeatures, values, scale, isBinary: !hasNegative)
    }

    /// The effective Float weights `scale · values`, row-major.
    public func dequantized() -> [Float] {
        values.map { Float($0) * scale }
    }
}
