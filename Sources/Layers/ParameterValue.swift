import TensorCore

/// A value for `Module.setParameter`: a ternary weight (with its scale) for `BitLinear`, or
/// Float32 values for embeddings and norms.
public enum ParameterValue: Sendable {
    case ternary(TernaryMatrix)
    case floats([Float])
}
