import TensorCore

/// Root-mean-square normalization with a learned gain, as in Llama / BitNet:
/// `y = x / √(mean(x²) + ε) · weight`, per row, in Float32.
public final class RMSNorm: Module {
    /// The per-feature gain.
    public private(set) var weight: [Float]
    /// ε, added to the mean square (`rms_norm_eps`).
    public let epsilon: Float
    /// Features normalized per row.
    public var dimensions: Int { weight.count }

    /// A norm over `dimensions` features with all gains 1.
    /// - Throws: `.invalidShape` for `dimensions < 1`, `.invalidArgument` for a negative or non-finite ε.
    public init(dimensions: Int, epsilon: Float) throws {
        guard dimensions > 0 else { throw TernaryKitError.invalidShape("RMSNorm over \(dimensions) features") }
        guard epsilon >= 0, epsilon.isFinite else { throw TernaryKitError.invalidArgument("RMSNorm epsilon \(epsilon)") }
        weight = [Float](repeating: 1, count: dimensions)
        self.epsilon = epsilon
    }

    /// One tensor, `weight`: the gains a checkpoint stores under `<path>.weight`.
    public override var parameterSpecs: [(name: String, spec: ParameterSpec)] { [("weight", .floats(shape: [dimensions]))] }

    /// The gains as a `.floats` value.
    public override func parameter(_ name: String) -> ParameterValue? { name == "weight" ? .floats(weight) : nil }

    /// Replaces the gains with a `.floats` value of the same length.
    /// - Throws: `.invalidArgument` for another name or kind, `.lengthMismatch` for a wrong count.
    public override func setParameter(_ name: String, _ value: ParameterValue) throws {
        guard name == "weight", case .floats(let w) = value else {
            throw TernaryKitError.invalidArgument("RMSNorm takes Float 'weight', got '\(name)'")
        }
        guard w.count == weight.count else {
            throw TernaryKitError.lengthMismatch(expected: weight.count, actual: w.count, what: "RMSNorm weight")
        }
        weight = w
    }

    /// The Float32 gains: 4 bytes per feature.
    public override var parameterBytes: Int { weight.count * 4 }
    /// Width, ε and bytes.
    public override var summary: String { "RMSNorm \(dimensions) eps=\(epsilon) \(formatBytes(parameterBytes))" }

    /// Normalizes `rows` rows of `x` into `y` (`y` may be `x`), rows split over `threads` threads.
    /// Each row is one call of the C row loop (`VectorKernelVariant.rmsNormRow`, the best variant
    /// this CPU runs), so a row's result does not depend on the other rows or on `threads`.
    public func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, into y: UnsafeMutableBufferPointer<Float>, threads: Int = 1) {
        let n = dimensions, eps = epsilon
        precondition(x.count >= rows * n && y.count >= rows * n)
        let xs = SendableConstPointer(x), ys = SendablePointer(y)
        let f = LayerKernels.rmsNormRow
        weight.withUnsafeBufferPointer { gb in
            let g = SendableConstPointer(gb)
            Parallel.forEachChunk(count: rows, threads: threads, costPerItem: n, minimumWork: 1 << 15) { range in
                for r in range { f(xs.base + r &* n, g.base, Int64(n), eps, ys.base + r &* n) }
            }
        }
    }

    public func callAsFunction(_ x: [Float]) -> [Float] {
        precondition(x.count % dimensions == 0)
        var y = x
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { self(xp, rows: x.count / dimensions, into: $0) } }
        return y
    }
}
