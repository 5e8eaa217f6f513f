import Backends
import Foundation
import TensorCore

/// A feed-forward block a `DecoderBlock` can hold: `rows × width` in, `rows × width` out.
///
/// The library's `GatedFeedForward` conforms; so can a block of your own (a `Module` subclass
/// with its own children and parameters).
public protocol FeedForwardBlock: Module {
    /// Transforms `rows` rows of `x` into `y` (same width; `y` is not `x`).
    /// - Throws: a projection's `prepare` error.
    func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, into y: UnsafeMutableBufferPointer<Float>) throws
}

/// The gated feed-forward of Llama-family models with ternary projections:
/// `down_proj(subNorm?(act(gate_proj(x)) ⊙ up_proj(x)))`, the gate and up projections reading
/// the same once-quantized input.
///
/// - `activation: .reluSquared` with a sub-norm is BitNet b1.58's MLP (`relu(g)² ⊙ u`, then
///   `ffn_sub_norm`);
/// - `activation: .silu` without one is SwiGLU (Llama's MLP).
public final class GatedFeedForward: Module, FeedForwardBlock {
    /// The gate's non-linearity.
    public enum Activation: String, Sendable, CaseIterable {
        /// `max(g, 0)²` (BitNet b1.58, `hidden_act: relu2`).
        case reluSquared = "relu2"
        /// `g · sigmoid(g)` (SwiGLU, `hidden_act: silu`).
        case silu
    }

    /// The three ternary projections (`gate_proj`, `up_proj`: hidden → intermediate; `down_proj`: intermediate → hidden).
    public let gateProj: BitLinear, upProj: BitLinear, downProj: BitLinear
    /// The norm on `act(gate) ⊙ up` before `down_proj` (`ffn_sub_norm`, BitNet's addition), or nil.
    public let subNorm: RMSNorm?
    /// The gate's non-linearity.
    public let activation: Activation
    /// Scratch shared with the rest of the model.
    public let workspace: Workspace
    /// Threads for the element-wise gating.
    public var threads: Int

    /// A block of the given widths with projections holding zeros until weights are set.
    /// - Parameters:
    ///   - hiddenSize: input and output width.
    ///   - intermediateSize: width of the gate and up projections.
    ///   - activation: the gate's non-linearity.
    ///   - subNormEpsilon: ε of an RMSNorm before `down_proj` (BitNet's `ffn_sub_norm`); nil for none.
    ///   - backend: the projections' backend (nil: `BackendRegistry.defaultBackend`).
    ///   - context: the projections' thread count, also used for the gating.
    ///   - workspace: scratch to share with the other layers of the model.
    /// - Throws: `.invalidShape` for non-positive widths.
    public init(hiddenSize: Int, intermediateSize: Int, activation: Activation, subNormEpsilon: Float? = nil,
                backend: (any LinearBackend)? = nil, context: ComputeContext = .singleThreaded,
                workspace: Workspace? = nil) throws {
        let ws = workspace ?? Workspace()
        self.workspace = ws
        self.activation = activation
        threads = context.threads
        gateProj = try BitLinear(outFeatures: intermediateSize, inFeatures: hiddenSize, backend: backend, context: context, workspace: ws)
        upProj = try BitLinear(outFeatures: intermediateSize, inFeatures: hiddenSize, backend: backend, context: context, workspace: ws)
        downProj = try BitLinear(outFeatures: hiddenSize, inFeatures: intermediateSize, backend: backend, context: context, workspace: ws)
        subNorm = try subNormEpsilon.map { try RMSNorm(dimensions: intermediateSize, epsilon: $0) }
    }

    /// The projections and the sub-norm under their Hugging Face keys.
    public override var children: [(key: String, module: Module)] {
        var c: [(key: String, module: Module)] = [("gate_proj", gateProj), ("up_proj", upProj), ("down_proj", downProj)]
        if let n = subNorm { c.append(("ffn_sub_norm", n)) }
        return c
    }

    /// The activation and the widths.
    public override var summary: String {
        "GatedFeedForward \(activation.rawValue) \(gateProj.inFeatures)→\(gateProj.outFeatures)"
    }

    /// `rows` rows of `x` (`rows × hiddenSize`) → `y` (`rows × hiddenSize`).
    public func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, into y: UnsafeMutableBufferPointer<Float>) throws {
        let hidden = gateProj.inFeatures, inter = gateProj.outFeatures
        let qx = workspace.quantized(count: rows * hidden)
        let qs = workspace.scales(count: rows)
        LayerKernels.quantize(x, rows: rows, columns: hidden, into: qx, scales: qs, threads: threads)
        let gate = workspace.floats(.gate, count: rows * inter)
        let up = workspace.floats(.up, count: rows * inter)
        if activation == .reluSquared && gateProj.correction == nil && upProj.correction == nil {
            if let norm = subNorm, downProj.correction == nil {
                try fusedReluSquaredGateNormQuantize(UnsafeBufferPointer(qx), scales: qs, rows: rows, norm: norm,
                                                     scratch: up, rowScratch: gate, into: y)
                return
            }
            try fusedReluSquaredGate(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), rows: rows,
                                     scratch: up, into: gate)
        } else {
            try gateProj.applyQuantized(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), rows: rows, into: gate, input: x)
            try upProj.applyQuantized(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), rows: rows, into: up, input: x)
            let g = SendablePointer(gate), u = SendableConstPointer(UnsafeBufferPointer(up))
            let activation = self.activation, relu2 = LayerKernels.relu2Gate
            Parallel.forEachChunk(count: rows * inter, threads: threads, granularity: 64, minimumWork: 1 << 16) { range in
                switch activation {
                case .reluSquared:
                    // max(g, 0)² · u, the C loop (same bits as the scalar formula).
                    relu2(g.base + range.lowerBound, u.base + range.lowerBound, Int64(range.count))
                case .silu:
                    for i in range {
                        let v = g.base[i]
                        g.base[i] = v / (1 + expf(-v)) * u.base[i]
                    }
                }
            }
        }
        if let norm = subNorm { norm(UnsafeBufferPointer(gate), rows: rows, into: gate, threads: threads) }
        try downProj(UnsafeBufferPointer(gate), rows: rows, into: y)
    }

    /// The whole block for ReLU² gate and up projections without corrections, a sub-norm, and a
    /// `down_proj` without one (BitNet b1.58's MLP): the two Int32 products
    /// (``gateAndUpProducts(_:rows:scratch:_:)``), then per row one C call
    /// (`VectorKernelVariant.relu2GateNormQuantize`) dequantizes and gates, normalizes and
    /// quantizes for `down_proj`, whose integer product follows. The Float row lives in one
    /// scratch row per concurrent chunk (`rowScratch`, the otherwise unused gate slot), so it
    /// stays in L1/L2 between the steps instead of three passes sweeping `rows × inter` Floats
    /// through memory; the row functions are the ones the separate passes call, so the output
    /// has the same bits as the unfused path.
    ///
    /// `scales` holds the input's activation scales and is overwritten, row by row, with those of
    /// `down_proj`'s input (each row reads its own scale before writing it).
    private func fusedReluSquaredGateNormQuantize(_ qx: UnsafeBufferPointer<Int8>, scales qs: UnsafeMutableBufferPointer<Float>,
                                                  rows: Int, norm: RMSNorm, scratch: UnsafeMutableBufferPointer<Float>,
                                                  rowScratch: UnsafeMutableBufferPointer<Float>,
                                                  into y: UnsafeMutableBufferPointer<Float>) throws {
        let inter = gateProj.outFeatures
        let chunks = Parallel.maximumChunks(count: rows, threads: threads)
        precondition((rows == 0 || rowScratch.count >= chunks * inter) && norm.dimensions == inter)
        try gateAndUpProducts(qx, rows: rows, scratch: scratch) { ag, au, wg, wu in
            // qx is dead from here on: the Int8 slot may grow (and move) for down_proj's wider input.
            let qd = workspace.quantized(count: rows * inter)
            let s = SendablePointer(qs), q = SendablePointer(qd), buf = SendablePointer(rowScratch)
            let f = LayerKernels.relu2GateNormQuantize, eps = norm.epsilon
            norm.weight.withUnsafeBufferPointer { gb in
                let gamma = SendableConstPointer(gb)
                Parallel.forEachIndexedChunk(count: rows, threads: threads, costPerItem: inter, minimumWork: 1 << 16) { chunk, range in
                    let row = buf.base + chunk * inter
                    for r in range {
                        let o = r * inter, a = s.base[r]
                        s.base[r] = f(ag.base + o, au.base + o, Int64(inter), wg / a, wu / a, gamma.base, eps, row, q.base + o)
                    }
                }
            }
            try downProj.applyQuantized(UnsafeBufferPointer(qd), scales: UnsafeBufferPointer(qs), rows: rows, into: y)
        }
    }

    /// The gate and up products of `qx` as exact Int32, handed to `body` with the two weight scales:
    /// the gate's in `scratch` (the up slot's Float memory, reused), the up's in the workspace
    /// accumulators. The start of both fused ReLU² paths.
    private func gateAndUpProducts(
        _ qx: UnsafeBufferPointer<Int8>, rows: Int, scratch: UnsafeMutableBufferPointer<Float>,
        _ body: (_ gate: SendableConstPointer<Int32>, _ up: SendableConstPointer<Int32>, _ gateScale: Float, _ upScale: Float) throws -> Void
    ) throws {
        let inter = gateProj.outFeatures
        try scratch.withMemoryRebound(to: Int32.self) { accG in
            let accU = workspace.accumulators(count: rows * inter)
            let wg = try gateProj.integerProduct(qx, rows: rows, into: accG)
            let wu = try upProj.integerProduct(qx, rows: rows, into: accU)
            try body(SendableConstPointer(UnsafeBufferPointer(accG)), SendableConstPointer(UnsafeBufferPointer(accU)), wg, wu)
        }
    }

    /// `max(gate, 0)² · up` for ReLU² projections without corrections: the two products stay Int32
    /// (``gateAndUpProducts(_:rows:scratch:_:)``) and one C pass dequantizes both and gates: the
    /// same bits as dequantizing each and then gating, with one pass over two Int32 buffers
    /// instead of three over Int32 and Float ones.
    private func fusedReluSquaredGate(_ qx: UnsafeBufferPointer<Int8>, scales qs: UnsafeBufferPointer<Float>, rows: Int,
                                      scratch: UnsafeMutableBufferPointer<Float>, into gate: UnsafeMutableBufferPointer<Float>) throws {
        let inter = gateProj.outFeatures
        try gateAndUpProducts(qx, rows: rows, scratch: scratch) { ag, au, wg, wu in
            let s = SendableConstPointer(qs), out = SendablePointer(gate)
            let f = LayerKernels.relu2GateDequantize
            Parallel.forEachChunk(count: rows, threads: threads, costPerItem: inter, minimumWork: 1 << 16) { range in
                for r in range {
                    f(ag.base + r * inter, au.base + r * inter, Int64(inter), wg / s.base[r], wu / s.base[r], out.base + r * inter)
                }
            }
        }
    }
}
