import TensorCore

/// The token embedding: one Float32 row of `dimensions` values per token id.
///
/// With tied embeddings (BitNet b1.58 2B4T) the same table is the LM head's weight; the table is
/// shared, not copied (`LMHead` holds the same array).
public final class Embedding: Module {
    /// `vocabularySize × dimensions`, row-major.
    public private(set) var weight: [Float]
    /// Rows of the table: valid token ids are `0 ..< vocabularySize`.
    public let vocabularySize: Int
    /// Values per row: the model's hidden size.
    public let dimensions: Int
    /// Called after the table is replaced (a model with a tied LM head rebuilds the head here).
    public var onWeightChange: (() throws -> Void)?

    /// An embedding table from `weight` (`vocabularySize × dimensions` values).
    /// - Throws: `.invalidShape` for non-positive sizes, `.lengthMismatch` for a wrong count.
    public init(weight: [Float], vocabularySize: Int, dimensions: Int) throws {
        guard vocabularySize > 0, dimensions > 0 else {
            throw TernaryKitError.invalidShape("embedding \(vocabularySize)×\(dimensions)")
        }
        _ = try SizeLimits.product([vocabularySize, dimensions], what: "embedding \(vocabularySize)×\(dimensions)")
        guard weight.count == vocabularySize * dimensions else {
            throw TernaryKitError.lengthMismatch(expected: vocabularySize * dimensions, actual: weight.count, what: "embedding table")
        }
        self.weight = weight
        self.vocabularySize = vocabularySize
        self.dimensions = dimensions
    }

    /// An all-zero table of the given shape, to be filled by `setParameter` (a loader's job).
    /// - Throws: `.invalidShape` for non-positive sizes or a table too large to address.
    public convenience init(vocabularySize: Int, dimensions: Int) throws {
        guard vocabularySize > 0, dimensions > 0, !vocabularySize.multipliedReportingOverflow(by: dimensions).overflow else {
            throw TernaryKitError.invalidShape("embedding \(vocabularySize)×\(dimensions)")
        }
        try SizeLimits.bytes(count: vocabularySize * dimensions, elementSize: MemoryLayout<Float>.size,
                             what: "embedding \(vocabularySize)×\(dimensions)")
        try self.init(weight: [Float](repeating: 0, count: vocabularySize * dimensions), vocabularySize: vocabularySize,
                      dimensions: dimensions)
    }

    /// One tensor, `weight`: the table a checkpoint stores as `<path>.weight`.
    public override var parameterSpecs: [(name: String, spec: ParameterSpec)] {
        [("weight", .floats(shape: [vocabularySize, dimensions]))]
    }

    /// The table as a `.floats` value.
    public override func parameter(_ name: String) -> ParameterValue? { name == "weight" ? .floats(weight) : nil }

    /// Replaces the table with a `.floats` value of the same length (and re-ties the LM head when tied).
    /// - Throws: `.invalidArgument` for another name or kind, `.lengthMismatch` for a wrong count, or the re-tying's error.
    public override func setParameter(_ name: String, _ value: ParameterValue) throws {
        guard name == "weight", case .floats(let w) = value else {
            throw TernaryKitError.invalidArgument("Embedding takes Float 'weight', got '\(name)'")
        }
        guard w.count == weight.count else {
            throw TernaryKitError.lengthMismatch(expected: weight.count, actual: w.count, what: "embedding table")
        }
        weight = w
        try onWeightChange?()
    }

    /// The Float32 table: 4 bytes per value.
    public override var parameterBytes: Int { weight.count * 4 }
    /// Shape, element type and size of the table.
    public override var summary: String { "Embedding \(vocabularySize)x\(dimensions) [float32] \(formatBytes(parameterBytes))" }

    /// Writes the rows of `tokens` into `out` (`tokens.count × dimensions`). Token ids are
    /// checked by the caller (the model validates them once at its boundary).
    public func lookup(_ tokens: [Int], into out: UnsafeMutableBufferPointer<Float>) {
        precondition(out.count >= tokens.count * dimensions)
        weight.withUnsafeBufferPointer { w in
            for (t, id) in tokens.enumerated() {
                precondition(id >= 0 && id < vocabularySize, "token id \(id) out of range")
                (out.baseAddress! + t * dimensions).update(from: w.baseAddress! + id * dimensions, count: dimensions)
            }
        }
    }
}
