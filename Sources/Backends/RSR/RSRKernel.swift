import CKernels
import TensorCore

/// A weight prepared for RSR or RSR++: one or two `RSRIndex`es (the weights themselves are not
/// kept) and, for RSR, the enumeration table of the block product.
///
/// A product runs block by block (blocks split across the context's threads, each thread
/// writing only its own output rows):
/// - **batch 1**: the activations gathered through the block's permutation are prefix-summed
///   (`P[i+1] = P[i] + x[σ(i)]`, 16 columns per AVX-512 gather, no branch on segment lengths),
///   and each segment sum is a difference read at the segment starts,
///   `u[c] = P[L[c+1]] − P[L[c]]`; the pattern-0 segment (sorted first) is skipped entirely;
/// - **batch > 1**: the activations are transposed once to feature-major (`in × batch`, padded
///   to a multiple of 16), and each segment adds whole batch rows, in tiles of up to 64 lanes
///   kept in registers; the index of a block is read once per tile of 64 batch rows.
///
/// Then the block's outputs come from the `radix^k` sums: the fold (RSR++) or the enumeration
/// product (RSR). The Float path accumulates in Float; the Int8 path in Int32, exactly.
public struct RSRKernel: LinearKernel {
    /// Rows of the weight matrix (the last block may be shorter than ``blockHeight``).
    public let outFeatures: Int
    /// Columns of the weight matrix: the length each activation row must have.
    public let inFeatures: Int
    /// The weight scale, applied to Float-path outputs only.
    public let scale: Float
    /// The threads the block loop is split across.
    public let context: ComputeContext
    /// The block product this kernel runs.
    public let variant: RSRBackend.Variant
    /// The form actually used (`.fused` falls back to `.twoPart` above `RSRIndex.maxFusedK`).
    public let form: RSRBackend.Form
    /// The block height.
    public let blockHeight: Int
    /// The indexes: one (binary matrix, or fused form), or two (`B⁺`, then `B⁻`, subtracted).
    public let indexes: [RSRIndex]
    /// The enumeration table of `.rsr`: `k × radix^k` digit weights (0, 1, or −1 for digit 2),
    /// row r for the block's row r. Empty for `.rsrPlusPlus`.
    let tableFloat: [Float]
    let tableInt: [Int32]

    /// "rsr" or "rsr++", as in the registry and the bench tables.
    public var backendName: String { variant == .rsr ? "rsr" : "rsr++" }
    /// The block height, reported so bench tables and layer summaries show which `k` was used.
    public var k: Int? { blockHeight }
    /// `radix^k` of a full block.
    public var codeCount: Int { indexes[0].codeCount }

    /// Permutations, segment starts, the enumeration tables (RSR) and the scale.
    public var storageBytes: Int {
        indexes.reduce(0) { $0 + $1.storageBytes } + tableFloat.count * 4 + tableInt.count * 4
            + MemoryLayout<Float>.size
    }

    /// Builds the index(es) of `weights` with block height `k`.
    /// - Throws: `.invalidArgument` when k is outside 1…16.
    public init(weights: TernaryMatrix, k: Int, variant: RSRBackend.Variant, form: RSRBackend.Form,
                context: ComputeContext) throws {
        guard k >= 1 && k <= RSRIndex.maxK else {
            throw TernaryKitError.invalidArgument("RSR block height k = \(k) is outside 1…\(RSRIndex.maxK)")
        }
        outFeatures = weights.outFeatures
        inFeatures = weights.inFeatures
        scale = weights.scale
        self.context = context
        self.variant = variant
        blockHeight = k
        if weights.isBinary {
            indexes = [try RSRIndex(weights: weights, k: k, digits: .positive)]
            self.form = form
        } else if form == .fused && k <= RSRIndex.maxFusedK {
            indexes = [try RSRIndex(weights: weights, k: k, digits: .ternary)]
            self.form = .fused
        } else {
            indexes = [try RSRIndex(weights: weights, k: k, digits: .positive),
                       try RSRIndex(weights: weights, k: k, digits: .negative)]
            self.form = .twoPart
        }
        if variant == .rsr {
            let t = RSRReference.enumerationTable(k: k, radix: indexes[0].radix)
            tableFloat = t.map(Float.init)
            tableInt = t.map(Int32.init)
        } else {
            tableFloat = []
            tableInt = []
        }
    }

    /// Float path: Float sums, the scale applied once per output.
    public func apply(_ x: UnsafeBufferPointer<Float>, batch: Int, into y: UnsafeMutableBufferPointer<Float>) {
        checkApply(xCount: x.count, yCount: y.count, batch: batch)
        tableFloat.withUnsafeBytes { table in
            run(integer: false, x: UnsafeRawPointer(x.baseAddress!), batch: batch,
                y: UnsafeMutableRawPointer(y.baseAddress!), table: table.baseAddress)
        }
        applyNonFiniteRule(x, batch: batch, into: y)
    }

    /// Int8 path: Int32 sums throughout, exact (|W·x| ≤ 128·in fits Int32).
    public func apply(_ x: UnsafeBufferPointer<Int8>, batch: Int, into y: UnsafeMutableBufferPointer<Int32>) {
        checkApply(xCount: x.count, yCount: y.count, batch: batch)
        tableInt.withUnsafeBytes { table in
            run(integer: true, x: UnsafeRawPointer(x.baseAddress!), batch: batch,
                y: UnsafeMutableRawPointer(y.baseAddress!), table: table.baseAddress)
        }
    }
}
