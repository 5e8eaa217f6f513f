import Backends
import TensorCore

/// BitNet b1.58's linear layer: a ternary weight with one scale γ, applied to per-token Int8
/// activations through a backend's exact integer product:
/// `y = (W_t · x_q) · γ / s` with `s = 127 / max|x|` per token (`ActivationQuantizer`).
///
/// All floating-point work after the product is one multiply per output, so for the same input
/// every backend gives bit-identical outputs. The layer keeps its `TernaryMatrix` so that
/// `prepare(backend:context:)` can re-prepare it for another backend at run time.
/// A row holding a non-finite value gives a row of NaN outputs.
public final class BitLinear: Module {
    /// The ternary weight and its scale γ (the effective weight is `γ · W_t`).
    public private(set) var weight: TernaryMatrix
    /// The prepared product of the current backend.
    public private(set) var kernel: any LinearKernel
    /// The backend that prepared `kernel`.
    public private(set) var backend: any LinearBackend
    /// Scratch shared with the rest of the model (or private to this layer).
    let workspace: Workspace

    /// Input width.
    public var inFeatures: Int { weight.inFeatures }
    /// Output width.
    public var outFeatures: Int { weight.outFeatures }
    /// The thread count the kernel was prepared for.
    public var context: ComputeContext { kernel.context }

    /// A layer with a ternary weight, prepared by `backend` for `context`.
    /// - Throws: the backend's `prepare` error.
    public init(weight: TernaryMatrix, backend: any LinearBackend = NaiveBackend(),
                context: ComputeContext = .singleThreaded, workspace: Workspace? = nil) throws {
        self.weight = weight
        self.backend = backend
        self.kernel = try backend.prepare(weight, context: context)
        self.workspace = workspace ?? Workspace()
    }

    /// A layer from Float weights (`outFeatures × inFeatures`, row-major), ternarized by
    /// BitNet's absmean rule (`TernaryMatrix(absmean:)`).
    /// - Throws: shape and value errors of the ternarization; the backend's `prepare` error.
    public convenience init(floatWeights: [Float], outFeatures: Int, inFeatures: Int,
                            backend: any LinearBackend = NaiveBackend(), context: ComputeContext = .singleThreaded,
                            workspace: Workspace? = nil) throws {
        try self.init(weight: TernaryMatrix(absmean: floatWeights, outFeatures: outFeatures, inFeatures: inFeatures),
                      backend: backend, context: context, workspace: workspace)
    }

    /// Re-prepares the weight for `backend` and `context` (once); the old kernel is released.
    /// - Throws: the backend's `prepare` error (the layer then keeps its old backend).
    public func prepare(backend: any LinearBackend, context: ComputeContext) throws {
        let k = try backend.prepare(weight, context: context)
        self.kernel = k
        self.backend = backend
    }

    /// Installs a kernel prepared elsewhere (in parallel, by `Module.setBackend`) from `weight`.
    func install(_ k: any LinearKernel, backend: any LinearBackend) {
        precondition(k.outFeatures == outFeatures && k.inFeatures == inFeatures)
        kernel = k
        self.backend = backend
    }

    /// Replaces the weight (same shape) and prepares it with the current backend.
    /// - Throws: `.invalidShape` for another shape; the backend's `prepare` error.
    public func setWeight(_ w: TernaryMatrix) throws {
        guard w.outFeatures == outFeatures, w.inFeatures == inFeatures else {
            throw TernaryKitError.invalidShape("weight \(w.outFeatures)×\(w.inFeatures) for a \(outFeatures)×\(inFeatures) BitLinear")
        }
        let k = try backend.prepare(w, context: context)
        weight = w
        kernel = k
    }

    /// One tensor, `weight`: the ternary matrix a checkpoint stores under `<path>.weight`.
    public override var parameterNames: [String] { ["weight"] }

    /// Replaces `weight` with a `.ternary` value of the same shape and re-prepares it with the current backend.
    /// - Throws: `.invalidArgument` for another name or kind of value; ``setWeight(_:)``'s errors.
    public override func setParameter(_ name: String, _ value: ParameterValue) throws {
        guard name == "weight", case .ternary(let m) = value else {
            throw TernaryKitError.invalidArgument("BitLinear takes a ternary 'weight', got '\(name)'")
        }
        try setWeight(m)
    }

    /// The kernel's layout in bytes, so it reflects the backend's format (2 bits per weight, RSR index, ...).
    public override var parameterBytes: Int { kernel.storageBytes }

    /// Shape, backend (and `k` when the backend has one) and bytes: what a model summary prints per projection.
    public override var summary: String {
        "BitLinear \(outFeatures)x\(inFeatures) [\(kernel.backendName)\(kernel.k.map { ", k=\($0)" } ?? "")] \(formatBytes(kernel.storageBytes))"
    }

    /// `batch` rows of `x` (`batch × inFeatures`) → `y` (`batch × outFeatures`).
    public func callAsFunction(_ x: UnsafeBufferPointer<Float>, batch: Int, into y: UnsafeMutableBufferPointer<Float>) {
        precondition(x.count >= batch * inFeatures, "BitLinear: x too small")
        let q = workspace.quantized(count: batch * inFeatures)
        let s = workspace.scales(count: batch)
        LayerKernels.quantize(x, rows: batch, columns: inFeatures, into: q, scales: s, threads: context.threads)
        applyQuantized(UnsafeBufferPointer(q), scales: UnsafeBufferPointer(s), batch: batch, into: y)
    }

    /// The product for activations already quantized (several layers reading the same input,
    /// such as q/k/v or gate/up, quantize it once).
    public func applyQuantized(_ q: UnsafeBufferPointer<Int8>, scales: UnsafeBufferPointer<Float>, batch: Int,
                               into y: UnsafeMutableBufferPointer<Float>) {
        let acc = workspace.accumulators(count: batch * outFeatures)
        kernel.apply(q, batch: batch, into: acc)
        LayerKernels.dequantize(UnsafeBufferPointer(acc), rows: batch, columns: outFeatures, activationScales: scales,
                                weightScale: weight.scale, threads: context.threads, into: y)
    }

    /// Array convenience: `x` holds a positive multiple of `inFeatures` values.
    /// - Throws: `.lengthMismatch` otherwise.
    public func callAsFunction(_ x: [Float]) throws -> [Float] {
        guard !x.isEmpty, x.count % inFeatures == 0 else {
            throw TernaryKitError.lengthMismatch(expected: inFeatures, actual: x.count, what: "BitLinear input (a multiple of inFeatures)")
        }
        let batch = x.count / inFeatures
        var y = [Float](repeating: 0, count: batch * outFeatures)
        x.withUnsafeBufferPointer { xp in y.withUnsafeMutableBufferPointer { self(xp, batch: batch, into: $0) } }
        return y
    }
}
