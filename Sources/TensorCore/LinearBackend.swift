/// A way of computing products with a fixed ternary weight matrix.
///
/// A backend turns a `TernaryMatrix` into a prepared, immutable `LinearKernel` (packing it,
/// indexing it, expanding it: whatever its algorithm needs), once. The kernel then computes
/// products with many activations. Backends are interchangeable: for the same weights and
/// input, every backend returns the same integers on the Int8 path.
public protocol LinearBackend: Sendable {
    /// The registry name: "naive", "bitpacked", "rsr", "rsr++", "blas".
    var name: String { get }
    /// Prepares `weights` for products that use `context.threads` threads.
    /// - Throws: when this backend cannot represent the matrix exactly (e.g. a size limit).
    func prepare(_ weights: TernaryMatrix, context: ComputeContext) throws -> any LinearKernel
}

/// A prepared, immutable weight matrix: safe to call from several threads at once.
///
/// Both paths compute `Y[b, :] = W · X[b, :]` for `b` in `0..<batch`, with `X` of shape
/// `batch × inFeatures` and `Y` of shape `batch × outFeatures`, both row-major:
/// - the **Float path** uses the effective weight `scale · W_t` and accumulates in Float; results
///   agree across backends within rounding (summation order differs);
/// - the **Int8 path** computes the exact integer product `W_t · x` (no scale) into Int32; all
///   backends return identical integers.
///
/// **Non-finite and overflowing inputs (Float path), the same on every backend:** a batch row
/// of `x` containing a NaN or an infinity, or with values so large that the row's sums could
/// overflow (`4 · inFeatures · max|x| · max(1, |scale|) > Float.greatestFiniteMagnitude`),
/// gives NaN in every output of that row; the other rows are unaffected and their outputs are
/// finite. Kernels apply it with `applyNonFiniteRule` after their product (see `NonFiniteRows`).
///
/// Buffer sizes are the caller's responsibility (checked with `precondition`): `x.count ≥
/// batch · inFeatures`, `y.count ≥ batch · outFeatures`, `batch ≥ 1`.
public protocol LinearKernel: Sendable {
    /// The name of the backend that prepared this kernel.
    var backendName: String { get }
    /// Rows of the weight (length of each output vector).
    var outFeatures: Int { get }
    /// Columns of the weight (length of each input vector).
    var inFeatures: Int { get }
    /// The weight's scale γ (the Float path includes it, the Int8 path does not).
    var scale: Float { get }
    /// Bytes this kernel keeps for the weight (its whole prepared layout, indexes included).
    var storageBytes: Int { get }
    /// The thread count the kernel was prepared for.
    var context: ComputeContext { get }
    /// The block height k of RSR-style kernels; nil for backends without one.
    var k: Int? { get }

    /// Float path: `y = scale · W_t · x` for each of `batch` rows.
    func apply(_ x: UnsafeBufferPointer<Float>, batch: Int, into y: UnsafeMutableBufferPointer<Float>)
    /// Int8 path: the exact `y = W_t · x` in Int32 for each of `batch` rows.
    func apply(_ x: UnsafeBufferPointer<Int8>, batch: Int, into y: UnsafeMutableBufferPointer<Int32>)
}

extension LinearKernel {
    /// nil: most backends have no block height.
    public var k: Int? { nil }

    /// Bits kept per weight: `8 · storageBytes / (out · in)`.
    public var storageBitsPerWeight: Double {
        Double(storageBytes) * 8 / Double(outFeatures * inFeatures)
    }

    /// Checks the buffer sizes every `apply` relies on (programmer errors, so `precondition`).
    @inlinable
    public func checkApply(xCount: Int, yCount: Int, batch: Int) {
        precondition(batch >= 1, "batch must be at least 1, got \(batch)")
        precondition(xCount >= batch * inFeatures, "x holds \(xCount) elements, need batch·in = \(batch * inFeatures)")
        precondition(yCount >= batch * outFeatures, "y holds \(yCount) elements, need batch·out = \(batch * outFeatures)")
    }

    /// Tensor convenience for the Float path: `x` of shape `[..., inFeatures]` gives
    /// `[..., outFeatures]`.
    /// - Throws: `.invalidShape` when the last dimension is not `inFeatures`.
    public func callAsFunction(_ x: Tensor) throws -> Tensor {
        guard x.rank >= 1, x.rowLength == inFeatures else {
            throw TernaryKitError.invalidShape("input shape \(x.shape) does not end in inFeatures = \(inFeatures)")
        }
        let batch = x.rowCount
        var shape = x.shape
        shape[shape.count - 1] = outFeatures
        var out = [Float](repeating: 0, count: batch * outFeatures)
        if batch > 0 {
            x.withUnsafeBufferPointer { xp in
                out.withUnsafeMutableBufferPointer { yp in apply(xp, batch: batch, into: yp) }
            }
        }
        return try Tensor(shape: shape, scalars: out)
    }

    /// Array convenience for the Int8 path.
    /// - Throws: `.lengthMismatch` when `x.count` is not a positive multiple of `inFeatures`.
    public func apply(_ x: [Int8]) throws -> [Int32] {
        guard !x.isEmpty, x.count % inFeatures == 0 else {
            throw TernaryKitError.lengthMismatch(expected: inFeatures, actual: x.count, what: "Int8 input (a multiple of inFeatures)")
        }
        let batch = x.count / inFeatures
        var y = [Int32](repeating: 0, count: batch * outFeatures)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in apply(xp, batch: batch, into: yp) } }
        return y
    }

    /// Array convenience for the Float path.
    /// - Throws: `.lengthMismatch` when `x.count` is not a positive multiple of `inFeatures`.
    public func apply(_ x: [Float]) throws -> [Float] {
        guard !x.isEmpty, x.count % inFeatures == 0 else {
            throw TernaryKitError.lengthMismatch(expected: inFeatures, actual: x.count, what: "Float input (a multiple of inFeatures)")
        }
        let batch = x.count / inFeatures
        var y = [Float](repeating: 0, count: batch * outFeatures)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { yp in apply(xp, batch: batch, into: yp) } }
        return y
    }
}
