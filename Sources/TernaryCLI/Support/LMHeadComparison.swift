import BitNet
import Layers
import TensorCore

/// How far a smaller LM head's logits (`int8` or `int4`) are from the Float32 reference on the
/// same hidden states: the measurement behind choosing a format.
struct LMHeadComparison: Sendable, CustomStringConvertible {
    /// The format compared with `float32`.
    var format: LMHeadFormat
    /// Positions compared.
    var positions: Int
    /// max |int8 − float32| over all logits.
    var maxAbsoluteDifference: Float
    /// mean |int8 − float32|.
    var meanAbsoluteDifference: Float
    /// max |int8 − float32| / max |float32 logit| of the same position.
    var maxRelativeDifference: Float
    /// Positions where both heads pick the same argmax.
    var argmaxAgreements: Int
    /// Positions where the Float32 argmax is among the compared head's top 5.
    var top5Agreements: Int

    /// One line with every measure, as printed in reports.
    var description: String {
        "\(format.rawValue) vs float32, \(positions) positions: max |Δ| \(maxAbsoluteDifference), mean |Δ| \(meanAbsoluteDifference), "
            + "max |Δ| / max|logit| \(maxRelativeDifference), argmax agrees \(argmaxAgreements)/\(positions), "
            + "float32 argmax in \(format.rawValue) top-5 \(top5Agreements)/\(positions)"
    }
}
