/// A ternary weight matrix: `outFeatures × inFeatures` values in {-1, 0, +1}, row-major,
/// stored as `Int8`, with one Float `scale` for the whole tensor.
///
/// The effective weight is `scale · values` (BitNet's `γ · W_t`). A binary {0, 1} matrix is the
/// same type without -1 entries (`isBinary`); backends that can exploit that (RSR) do.
///
/// Orientation is PyTorch's: row `o` holds the weights of output `o`, and a product computes
/// `y = W · x`.
public struct TernaryMatrix: Sendable, Equatable {
    /// Number of output features (rows).
    public let outFeatures: Int
    /// Number of input features (columns).
    public let inFeatures: Int
    /// The ternary values, row-major (`values[o * inFeatures + i]`), each -1, 0 or +1.
    public let values: [Int8]
    /// The per-tensor scale γ; the effective weight is `scale · values`.
    public var scale: Float
    /// True when no entry is -1 (a binary {0, 1} matrix).
    public let isBinary: Bool

    /// The largest `inFeatures` for which every Int8 × ternary dot product fits in Int32:
    /// |Σ w·x| ≤ 128 · in ≤ Int32.max.
    public static let maxInFeatures = Int(Int32.max) / 128

    /// A matrix from raw values in {-1, 0, 1}, row-major.
    /// - Throws: `.invalidShape` for non-positive or too large dimensions, `.lengthMismatch` when
    ///   `values.count != outFeatures * inFeatures`, `.invalidValue` for any value outside {-1, 0, 1},
    ///   `.invalidValue` for a non-finite scale.
    public init(outFeatures: Int, inFeatures: Int, values: [Int8], scale: Float = 1) throws {
        try TernaryMatrix.checkShape(outFeatures: outFeatures, inFeatures: inFeatures)
        guard values.count == outFeatures * inFeatures else {
            throw TernaryKitError.lengthMismatch(expected: outFeatures * inFeatures, actual: values.count,
                                                 what: "ternary values for \(outFeatures)×\(inFeatures)")
        }
        guard scale.isFinite else { throw TernaryKitError.invalidValue("scale \(scale) is not finite") }
        var binary = true
        for (i, v) in values.enumerated() {
            if v < -1 || v > 1 {
                throw TernaryKitError.invalidValue(
                    "weight \(v) at row \(i / inFeatures), column \(i % inFeatures) is not in {-1, 0, 1}")
            }
            if v == -1 { binary = false }
        }
        self.init(unchecked: outFeatures, inFeatures, values, scale, isBinary: binary)
    }

    /// A matrix from values the caller has already validated in bulk (every value in
    /// {-1, 0, 1}, `isBinary` true exactly when none is -1, a shape `checkShape` accepts), as a
    /// checkpoint decoder does; skips the per-value check of ``init(outFeatures:inFeatures:values:scale:)``.
    public init(unchecked outFeatures: Int, _ inFeatures: Int, _ values: [Int8], _ scale: Float, isBinary: Bool) {
        precondition(values.count == outFeatures * inFeatures, "ternary matrix: \(values.count) values for \(outFeatures)×\(inFeatures)")
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.values = values
        self.scale = scale
        self.isBinary = isBinary
    }

    /// Checks a shape before anything is allocated for it: positive sizes, `inFeatures ≤ maxInFeatures`, no overflow.
    /// - Throws: `.invalidShape` naming the problem.
    public static func checkShape(outFeatures: Int, inFeatures: Int) throws {
        guard outFeatures > 0, inFeatures > 0 else {
            throw TernaryKitError.invalidShape("a ternary matrix needs positive dimensions, got \(outFeatures)×\(inFeatures)")
        }
        guard inFeatures <= maxInFeatures else {
            throw TernaryKitError.invalidShape("inFeatures \(inFeatures) exceeds \(maxInFeatures), the largest for exact Int32 results")
        }
        guard !outFeatures.multipliedReportingOverflow(by: inFeatures).overflow else {
            throw TernaryKitError.invalidShape("\(outFeatures)×\(inFeatures) overflows Int")
        }
    }

    /// The value at (`row`, `column`).
    public subscript(row: Int, column: Int) -> Int8 {
        precondition(row >= 0 && row < outFeatures && column >= 0 && column < inFeatures,
                     "(\(row), \(column)) out of bounds for \(outFeatures)×\(inFeatures)")
        return values[row * inFeatures + column]
    }

    /// The number of weights, `outFeatures · inFeatures`.
    public var count: Int { outFeatures * inFeatures }

    /// Bytes of the plain Int8 form (one byte per weight, plus the scale).
    public var unpackedBytes: Int { count + MemoryLayout<Float>.size }
}
