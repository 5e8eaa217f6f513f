import TensorCore

/// A value for `Module.setParameter`, and what `Module.parameter` returns: a ternary weight
/// (with its scale) for `BitLinear`, or Float32 values for embeddings, norms and dense heads.
public enum ParameterValue: Sendable {
    /// A ternary weight with its scale, for a `BitLinear` `weight`.
    case ternary(TernaryMatrix)
    /// Float32 values in row-major order, for embedding tables, norm gains and an untied LM head.
    case floats([Float])

    /// The spec this value satisfies (a Float value is taken as one-dimensional).
    public var spec: ParameterSpec {
        switch self {
        case .ternary(let m): return .ternary(outFeatures: m.outFeatures, inFeatures: m.inFeatures)
        case .floats(let v): return .floats(shape: [v.count])
        }
    }
}

/// What one parameter of a layer must be: the kind of value and its shape.
///
/// Layers declare their parameters with specs (``Module/parameterSpecs``), so that a checkpoint
/// reader or writer can walk a model's tree and know, for every key, what to read or write
/// without knowing the layer classes.
public enum ParameterSpec: Sendable, Equatable, CustomStringConvertible {
    /// A ternary matrix of this shape (a `BitLinear` weight).
    case ternary(outFeatures: Int, inFeatures: Int)
    /// Float32 values of this shape, row-major.
    case floats(shape: [Int])

    /// Elements the value holds.
    public var elementCount: Int {
        switch self {
        case .ternary(let o, let i): return o * i
        case .floats(let s): return s.reduce(1, *)
        }
    }

    /// e.g. "ternary 64×128" or "floats [256, 64]".
    public var description: String {
        switch self {
        case .ternary(let o, let i): return "ternary \(o)×\(i)"
        case .floats(let s): return "floats [" + s.map(String.init).joined(separator: ", ") + "]"
        }
    }
}
