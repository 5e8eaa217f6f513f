import TensorCore

/// BitNet b1.58's feed-forward: `down_proj(ffn_sub_norm(relu(gate_proj(x))² ⊙ up_proj(x)))`,
/// with the gate and up projections reading the same once-quantized input.
public final class GatedFeedForward: Module {
    /// The three ternary projections (`gate_proj`, `up_proj`: hidden → intermediate; `down_proj`: intermediate → hidden).
    public let gateProj: BitLinear, upProj: BitLinear, downProj: BitLinear
    /// The norm on the ReLU² ⊙ product before `down_proj` (`ffn_sub_norm`), BitNet's addition to Llama's MLP.
    public let subNorm: RMSNorm
    let workspace: Workspace
    /// Threads for the element-wise ReLU² ⊙ product.
    public var threads: Int

    init(hidden: Int, intermediate: Int, epsilon: Float,
         projections: (gate: TernaryMatrix, up: TernaryMatrix, down: TernaryMatrix),
         backend: any LinearBackend, context: ComputeContext, workspace: Workspace) throws {
        self.workspace = workspace
        threads = context.threads
        gateProj = try BitLinear(weight: projections.gate, backend: backend, context: context, workspace: workspace)
        upProj = try BitLinear(weight: projections.up, backend: backend, context: context, workspace: workspace)
        downProj = try BitLinear(weight: projections.down, backend: backend, context: context, workspace: workspace)
        subNorm = try RMSNorm(dimensions: intermediate, epsilon: epsilon)
    }

    /// The projections and the sub-norm under their Hugging Face keys.
    public override var children: [(key: String, module: Module)] {
        [("gate_proj", gateProj), ("up_proj", upProj), ("down_proj", downProj), ("ffn_sub_norm", subNorm)]
    }

    /// The activation and the widths.
    public override var summary: String { "GatedFeedForward relu² \(gateProj.inFeatures)→\(gateProj.outFeatures)" }

    /// `count` rows of `x` (`count × hidden`) → `y` (`count × hidden`).
    func callAsFunction(_ x: UnsafeBufferPointer<Float>, count: Int, into y: UnsafeMutableBufferPointer<Float>) {
        let hidden = gateProj.inFeatures, inter = gateProj.outFeatures
        let qx = workspace.quantized(count: count * hidden)
        let qs = workspace.scales(count: count)
        LayerKernels.quantize(x, rows: count, columns: hidden, into: qx, scales: qs, threads: threads)
        let gate = workspace.floats(.gate, count: count * inter)
        let up = workspace.floats(.up, count: count * inter)
        gateProj.applyQuantized(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), batch: count, into: gate)
        upProj.applyQuantized(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), batch: count, into: up)
        let g = SendablePointer(gate), u = SendableConstPointer(UnsafeBufferPointer(up))
        Parallel.forEachChunk(count: count * inter, threads: threads, granularity: 64, minimumWork: 1 << 16) { range in
            for i in range {
                let r = max(g.base[i], 0)
                g.base[i] = r * r * u.base[i]
            }
        }
        subNorm(UnsafeBufferPointer(gate), rows: count, into: gate, threads: threads)
        downProj(UnsafeBufferPointer(gate), batch: count, into: y)
    }
}
