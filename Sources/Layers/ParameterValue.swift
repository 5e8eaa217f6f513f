import TensorCore

/// A value for `Module.setParameter`: a ternary weight (with its scale) for `BitLinear`, or
/// Float32 values for embeddings and norms.
public enum ParameterValue: Sendable {
    /// A ternary weight with its scale, for a `BitLinear` `weight`.
    case ternary(TernaryMatrix)
    /// Float32 values in row-major order, for embedding tables, norm gains and an untied LM head.
    case floats([Float])
}
