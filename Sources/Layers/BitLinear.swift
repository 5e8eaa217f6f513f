import Backends
import TensorCore

/// A linear layer with a ternary weight and one scale γ, applied to per-token Int8 activations
/// through a backend's exact integer product (BitNet b1.58's BitLinear):
/// `y = (W_t · x_q) · γ / s` with `s = 127 / max|x|` per token (`ActivationQuantizer`).
///
/// All floating-point work after the product is one multiply per output, so for the same input
/// every backend gives bit-identical outputs. The layer keeps its `TernaryMatrix` so that a
/// backend can be swapped at run time (`prepare(backend:context:)`, `Module.setBackend`).
///
/// The kernel is prepared lazily: when a backend is set, or on the first product after the
/// weight changed. A layer built from a shape alone holds zeros until a weight is set (a loader's
/// job). A row holding a non-finite value gives a row of NaN outputs.
///
/// An optional rank-r Float ``correction`` (`LowRankCorrection`, e.g. from
/// `Ternarization.ternarize(_:outFeatures:inFeatures:rank:…)`) makes the layer compute
/// `y = γ·T·x + A·(B·x)`: the ternary product on the backend as above, plus two thin BLAS
/// products on the Float input. Its factors are the parameters `weight_lowrank_a` (`[out, r]`)
/// and `weight_lowrank_b` (`[r, in]`), so a checkpoint stores them as `<path>.weight_lowrank_a`
/// / `_b` next to `<path>.weight`.
public final class BitLinear: Module {
    /// Output width (rows of the weight).
    public let outFeatures: Int
    /// Input width (columns of the weight).
    public let inFeatures: Int
    private var storedWeight: TernaryMatrix?
    private var preparedKernel: (any LinearKernel)?
    /// The backend that prepares (or prepared) the kernel.
    public private(set) var backend: any LinearBackend
    /// The thread count the kernel is prepared for.
    public private(set) var context: ComputeContext
    /// Scratch shared with the rest of the model (or private to this layer).
    public let workspace: Workspace
    /// The low-rank Float correction added to every product (`y += A·(B·x)`), or nil (the plain
    /// ternary layer). A rank-0 correction is stored as nil. Set it with ``setCorrection(_:)``.
    public private(set) var correction: LowRankCorrection?

    /// The parameter names of the correction's factors (`A`, `B`).
    public static let lowRankNames = (a: "weight_lowrank_a", b: "weight_lowrank_b")

    /// A layer of the given shape with all-zero weights (scale 1) until ``setWeight(_:)`` or
    /// `setParameter` provides them: what a model skeleton holds before a checkpoint is read.
    /// - Parameters:
    ///   - outFeatures: rows of the weight (the output width).
    ///   - inFeatures: columns of the weight (the input width).
    ///   - backend: the backend of the product; nil picks `BackendRegistry.defaultBackend`.
    ///   - context: the thread count of the product.
    ///   - workspace: scratch to share with other layers of the same model (a new one if nil).
    /// - Throws: `.invalidShape` for a non-positive size or an input wider than exact Int32 products allow.
    public init(outFeatures: Int, inFeatures: Int, backend: (any LinearBackend)? = nil,
                context: ComputeContext = .singleThreaded, workspace: Workspace? = nil) throws {
        try TernaryMatrix.checkShape(outFeatures: outFeatures, inFeatures: inFeatures)
        self.outFeatures = outFeatures
        self.inFeatures = inFeatures
        self.backend = backend ?? BackendRegistry.defaultBackend
        self.context = context
        self.workspace = workspace ?? Workspace()
    }

    /// A layer with a ternary weight; the kernel is prepared by `backend` at once.
    /// - Throws: the backend's `prepare` error.
    public convenience init(weight: TernaryMatrix, backend: (any LinearBackend)? = nil,
                            context: ComputeContext = .singleThreaded, workspace: Workspace? = nil) throws {
        try self.init(outFeatures: weight.outFeatures, inFeatures: weight.inFeatures, backend: backend,
                      context: context, workspace: workspace)
        storedWeight = weight
        try prepareKernel()
    }

    /// A layer from Float weights (`outFeatures × inFeatures`, row-major), ternarized by
    /// BitNet's absmean rule (`TernaryMatrix(absmean:)`).
    /// - Throws: shape and value errors of the ternarization; the backend's `prepare` error.
    public convenience init(floatWeights: [Float], outFeatures: Int, inFeatures: Int,
                            backend: (any LinearBackend)? = nil, context: ComputeContext = .singleThreaded,
                            workspace: Workspace? = nil) throws {
        try self.init(weight: TernaryMatrix(absmean: floatWeights, outFeatures: outFeatures, inFeatures: inFeatures),
                      backend: backend, context: context, workspace: workspace)
    }

    /// The ternary weight and its scale γ (the effective weight is `γ · W_t`); zeros with scale 1
    /// until a weight is set.
    public var weight: TernaryMatrix {
        if let w = storedWeight { return w }
        // Valid by construction (the shape was checked in init).
        return try! TernaryMatrix(outFeatures: outFeatures, inFeatures: inFeatures,
                                  values: [Int8](repeating: 0, count: outFeatures * inFeatures), scale: 1)
    }

    /// Whether a kernel for the current weight, backend and context is ready.
    public var isPrepared: Bool { preparedKernel != nil }

    /// The prepared product, preparing it first if needed.
    /// - Throws: the backend's `prepare` error.
    public func kernel() throws -> any LinearKernel {
        if let k = preparedKernel { return k }
        try prepareKernel()
        return preparedKernel!
    }

    /// Prepares the kernel for the current weight with the current backend and context.
    /// - Throws: the backend's `prepare` error (the layer then has no kernel).
    public func prepareKernel() throws {
        preparedKernel = try backend.prepare(weight, context: context)
    }

    /// Re-prepares the weight for `backend` and `context` (once); the old kernel is released.
    /// - Throws: the backend's `prepare` error (the layer then keeps its old backend and kernel).
    public func prepare(backend: any LinearBackend, context: ComputeContext) throws {
        let k = try backend.prepare(weight, context: context)
        install(k, backend: backend)
    }

    /// Installs a kernel prepared elsewhere (in parallel, by `Module.setBackend`) from `weight`.
    func install(_ k: any LinearKernel, backend: any LinearBackend) {
        precondition(k.outFeatures == outFeatures && k.inFeatures == inFeatures)
        preparedKernel = k
        self.backend = backend
        context = k.context
    }

    /// Replaces the weight (same shape). A prepared kernel is dropped and prepared again on the
    /// next product (or by `Module.prepareKernels`).
    /// - Throws: `.invalidShape` for another shape.
    public func setWeight(_ w: TernaryMatrix) throws {
        guard w.outFeatures == outFeatures, w.inFeatures == inFeatures else {
            throw TernaryKitError.invalidShape("weight \(w.outFeatures)×\(w.inFeatures) for a \(outFeatures)×\(inFeatures) BitLinear")
        }
        storedWeight = w
        preparedKernel = nil
    }

    /// Sets (or, with nil or a rank-0 value, removes) the low-rank correction. The kernel is kept.
    /// - Throws: `.invalidShape` naming both shapes when the correction is not `out × in`.
    public func setCorrection(_ c: LowRankCorrection?) throws {
        guard let c, c.rank > 0 else { correction = nil; return }
        guard c.outFeatures == outFeatures, c.inFeatures == inFeatures else {
            throw TernaryKitError.invalidShape(
                "low-rank correction of \(c.outFeatures)×\(c.inFeatures) (A [\(c.outFeatures), \(c.rank)], B [\(c.rank), \(c.inFeatures)]) "
                + "for a \(outFeatures)×\(inFeatures) BitLinear")
        }
        correction = c
    }

    /// `weight`, the ternary matrix a checkpoint stores under `<path>.weight`; with a correction
    /// also `weight_lowrank_a` (Floats `[out, r]`) and `weight_lowrank_b` (Floats `[r, in]`).
    public override var parameterSpecs: [(name: String, spec: ParameterSpec)] {
        let w: (name: String, spec: ParameterSpec) = ("weight", .ternary(outFeatures: outFeatures, inFeatures: inFeatures))
        guard let c = correction else { return [w] }
        return [w, (Self.lowRankNames.a, .floats(shape: [outFeatures, c.rank])),
                (Self.lowRankNames.b, .floats(shape: [c.rank, inFeatures]))]
    }

    /// The weight as a `.ternary` value; the correction's factors as `.floats`.
    public override func parameter(_ name: String) -> ParameterValue? {
        switch name {
        case "weight": return .ternary(weight)
        case Self.lowRankNames.a: return correction.map { .floats($0.a) }
        case Self.lowRankNames.b: return correction.map { .floats($0.b) }
        default: return nil
        }
    }

    /// Replaces `weight` with a `.ternary` value of the same shape, or one factor of the
    /// correction (which must be set, so its rank is known) with `.floats` of its size.
    /// - Throws: `.invalidArgument` for another name or kind of value or a factor without a
    ///   correction; ``setWeight(_:)``'s errors; `LowRankCorrection`'s count and value errors.
    public override func setParameter(_ name: String, _ value: ParameterValue) throws {
        switch (name, value) {
        case ("weight", .ternary(let m)):
            try setWeight(m)
        case (Self.lowRankNames.a, .floats(let v)), (Self.lowRankNames.b, .floats(let v)):
            guard let c = correction else {
                throw TernaryKitError.invalidArgument("BitLinear has no low-rank correction to set '\(name)' of (call setCorrection first)")
            }
            let isA = name == Self.lowRankNames.a
            correction = try LowRankCorrection(outFeatures: outFeatures, inFeatures: inFeatures, rank: c.rank,
                                               a: isA ? v : c.a, b: isA ? c.b : v)
        default:
            throw TernaryKitError.invalidArgument(
                "BitLinear takes a ternary 'weight' (and Float '\(Self.lowRankNames.a)' / '\(Self.lowRankNames.b)'), got '\(name)'")
        }
    }

    /// The kernel's layout in bytes, so it reflects the backend's format (2 bits per weight, RSR
    /// index, ...); the Int8 values kept for re-preparation when no kernel is prepared yet; plus
    /// the correction's Float factors.
    public override var parameterBytes: Int {
        (preparedKernel?.storageBytes ?? outFeatures * inFeatures) + (correction?.storageBytes ?? 0)
    }

    /// Shape, backend (and `k` when the backend has one), correction rank and bytes: what a model summary prints per projection.
    public override var summary: String {
        let k = preparedKernel?.k.map { ", k=\($0)" } ?? ""
        let r = correction.map { ", lowrank r=\($0.rank)" } ?? ""
        return "BitLinear \(outFeatures)x\(inFeatures) [\(backend.name)\(k)\(isPrepared ? "" : ", not prepared")\(r)] \(formatBytes(parameterBytes))"
    }

    /// `rows` rows of `x` (`rows × inFeatures`) → `y` (`rows × outFeatures`).
    /// - Throws: the backend's `prepare` error when the kernel is prepared here.
    public func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, into y: UnsafeMutableBufferPointer<Float>) throws {
        precondition(x.count >= rows * inFeatures, "BitLinear: x too small")
        let q = workspace.quantized(count: rows * inFeatures)
        let s = workspace.scales(count: rows)
        LayerKernels.quantize(x, rows: rows, columns: inFeatures, into: q, scales: s, threads: context.threads)
        try applyQuantized(UnsafeBufferPointer(q), scales: UnsafeBufferPointer(s), rows: rows, into: y, input: x)
    }

    /// The product for activations already quantized (several layers reading the same input,
    /// such as q/k/v or gate/up, quantize it once): `q` holds `rows × inFeatures` Int8 values,
    /// `scales` one activation scale per row (`ActivationQuantizer`).
    ///
    /// With a ``correction``, `A·(B·x)` is added on `input`, the Float activations `q` came from;
    /// when `input` is nil it uses the dequantized activations `q / s` instead.
    /// - Throws: the backend's `prepare` error when the kernel is prepared here.
    public func applyQuantized(_ q: UnsafeBufferPointer<Int8>, scales: UnsafeBufferPointer<Float>, rows: Int,
                               into y: UnsafeMutableBufferPointer<Float>, input: UnsafeBufferPointer<Float>? = nil) throws {
        let acc = workspace.accumulators(count: rows * outFeatures)
        let weightScale = try integerProduct(q, rows: rows, into: acc)
        LayerKernels.dequantize(UnsafeBufferPointer(acc), rows: rows, columns: outFeatures, activationScales: scales,
                                weightScale: weightScale, threads: context.threads, into: y)
        if let c = correction { try addCorrection(c, q: q, scales: scales, rows: rows, input: input, into: y) }
    }

    /// The exact Int32 product `W_t · q` of `rows` quantized rows into `acc` (`rows × outFeatures`),
    /// without dequantization or correction; returns the weight scale γ to dequantize with. For
    /// blocks that fuse the dequantization into their next step (`GatedFeedForward`).
    /// - Throws: the backend's `prepare` error when the kernel is prepared here.
    func integerProduct(_ q: UnsafeBufferPointer<Int8>, rows: Int, into acc: UnsafeMutableBufferPointer<Int32>) throws -> Float {
        let kernel = try kernel()
        kernel.apply(q, batch: rows, into: acc)
        return kernel.scale
    }

    /// `y += A·(B·x)` with workspace scratch (no allocation once the slots have grown).
    private func addCorrection(_ c: LowRankCorrection, q: UnsafeBufferPointer<Int8>, scales: UnsafeBufferPointer<Float>,
                               rows: Int, input: UnsafeBufferPointer<Float>?, into y: UnsafeMutableBufferPointer<Float>) throws {
        let x: UnsafeBufferPointer<Float>
        if let input {
            x = input
        } else {
            let n = inFeatures
            let xd = workspace.floats(named: "lowrank.input", count: rows * n)
            for r in 0..<rows {
                let s = scales[r]
                for i in 0..<n { xd[r * n + i] = Float(q[r * n + i]) / s }
            }
            x = UnsafeBufferPointer(xd)
        }
        let scratch = workspace.floats(named: "lowrank", count: c.scratchCount(batch: rows))
        try c.apply(x, batch: rows, into: y, scratch: scratch, context: context)
    }

    /// Array convenience: `x` holds a positive multiple of `inFeatures` values.
    /// - Throws: `.lengthMismatch` otherwise; the backend's `prepare` error.
    public func callAsFunction(_ x: [Float]) throws -> [Float] {
        guard !x.isEmpty, x.count % inFeatures == 0 else {
            throw TernaryKitError.lengthMismatch(expected: inFeatures, actual: x.count, what: "BitLinear input (a multiple of inFeatures)")
        }
        let rows = x.count / inFeatures
        var y = [Float](repeating: 0, count: rows * outFeatures)
        try x.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { try self(xp, rows: rows, into: $0) } }
        return y
    }
}
