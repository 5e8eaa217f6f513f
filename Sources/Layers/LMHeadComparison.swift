import TensorCore

/// How far a smaller LM head's logits (`int8` or `int4`) are from the Float32 reference on the
/// same hidden states: the measurement behind choosing a format.
public struct LMHeadComparison: Sendable, CustomStringConvertible {
    /// The format compared with `float32`.
    public var format: LMHeadFormat
    /// Positions compared.
    public var positions: Int
    /// max |int8 − float32| over all logits.
    public var maxAbsoluteDifference: Float
    /// mean |int8 − float32|.
    public var meanAbsoluteDifference: Float
    /// max |int8 − float32| / max |float32 logit| of the same position.
    public var maxRelativeDifference: Float
    /// Positions where both heads pick the same argmax.
    public var argmaxAgreements: Int
    /// Positions where the Float32 argmax is among the compared head's top 5.
    public var top5Agreements: Int

    /// One line with every measure, as printed in reports.
    public var description: String {
        "\(format.rawValue) vs float32, \(positions) positions: max |Δ| \(maxAbsoluteDifference), mean |Δ| \(meanAbsoluteDifference), "
            + "max |Δ| / max|logit| \(maxRelativeDifference), argmax agrees \(argmaxAgreements)/\(positions), "
            + "float32 argmax in \(format.rawValue) top-5 \(top5Agreements)/\(positions)"
    }
}
