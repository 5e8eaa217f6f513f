import Foundation
import TensorCore

/// Grouped-query causal self-attention with rotary positions and BitNet's sub-norm:
/// `o_proj(attn_sub_norm(softmax(QKᵀ/√d + causal mask) · V))`, where `heads / kvHeads` query
/// heads share each key/value head and Q, K, V come from ternary projections of the same
/// (once-quantized) input.
///
/// Scores, softmax and the value mix are Float32. Each (token, head) pair is computed on its own
/// with the same fixed-order loops whether the tokens arrive as one prefill batch or one at a
/// time, so decoding with the cache reproduces a full re-run bit for bit.
public final class GroupedQueryAttention: Module {
    /// The four ternary projections: `q_proj`, then `k_proj` and `v_proj` (to ``kvHeads`` heads only), and `o_proj`.
    public let qProj: BitLinear, kProj: BitLinear, vProj: BitLinear, oProj: BitLinear
    /// The norm on the attention output before `o_proj` (`attn_sub_norm`), BitNet's addition to Llama's attention.
    public let subNorm: RMSNorm
    /// Query heads, key/value heads (each shared by `heads / kvHeads` query heads), and the width of one head.
    public let heads: Int, kvHeads: Int, headDimension: Int
    /// The rotary table applied to queries and keys.
    public let rotary: RotaryEmbedding
    let workspace: Workspace
    /// Threads for the scores / softmax / value mix (the projections use their kernels' own).
    public var threads: Int

    init(hidden: Int, heads: Int, kvHeads: Int, rotary: RotaryEmbedding, epsilon: Float,
         projections: (q: TernaryMatrix, k: TernaryMatrix, v: TernaryMatrix, o: TernaryMatrix),
         backend: any LinearBackend, context: ComputeContext, workspace: Workspace) throws {
        guard heads > 0, kvHeads > 0, heads % kvHeads == 0, hidden % heads == 0 else {
            throw TernaryKitError.invalidArgument("attention: \(heads) heads, \(kvHeads) KV heads, hidden \(hidden)")
        }
        self.heads = heads
        self.kvHeads = kvHeads
        headDimension = hidden / heads
        self.rotary = rotary
        self.workspace = workspace
        threads = context.threads
        qProj = try BitLinear(weight: projections.q, backend: backend, context: context, workspace: workspace)
        kProj = try BitLinear(weight: projections.k, backend: backend, context: context, workspace: workspace)
        vProj = try BitLinear(weight: projections.v, backend: backend, context: context, workspace: workspace)
        oProj = try BitLinear(weight: projections.o, backend: backend, context: context, workspace: workspace)
        subNorm = try RMSNorm(dimensions: heads * headDimension, epsilon: epsilon)
    }

    /// The projections and the sub-norm under their Hugging Face keys.
    public override var children: [(key: String, module: Module)] {
        [("q_proj", qProj), ("k_proj", kProj), ("v_proj", vProj), ("o_proj", oProj), ("attn_sub_norm", subNorm)]
    }

    /// Head counts, head width and the rotary base.
    public override var summary: String {
        "GroupedQueryAttention heads=\(heads) kv=\(kvHeads) headDim=\(headDimension) θ=\(rotary.theta)"
    }

    /// Attends `count` new tokens (`x`: their normalized hidden states, `count × hidden`) that
    /// follow the `cache.length` positions already cached; appends their keys and values and
    /// writes `count × hidden` outputs into `y`.
    func callAsFunction(_ x: UnsafeBufferPointer<Float>, count: Int, cache: KVCache, into y: UnsafeMutableBufferPointer<Float>) {
        let hidden = qProj.inFeatures, d = headDimension
        let start = cache.length
        let qx = workspace.quantized(count: count * hidden)
        let qs = workspace.scales(count: count)
        LayerKernels.quantize(x, rows: count, columns: hidden, into: qx, scales: qs, threads: threads)
        let q = workspace.floats(.query, count: count * heads * d)
        let k = workspace.floats(.key, count: count * kvHeads * d)
        let v = workspace.floats(.value, count: count * kvHeads * d)
        qProj.applyQuantized(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), batch: count, into: q)
        kProj.applyQuantized(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), batch: count, into: k)
        vProj.applyQuantized(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), batch: count, into: v)
        for t in 0..<count {
            rotary.apply(q.baseAddress! + t * heads * d, heads: heads, position: start + t)
            rotary.apply(k.baseAddress! + t * kvHeads * d, heads: kvHeads, position: start + t)
        }
        cache.append(keys: k.baseAddress!, values: v.baseAddress!, count: count)
        let a = workspace.floats(.attention, count: count * heads * d)
        GroupedQueryAttention.attend(
            queries: UnsafePointer(q.baseAddress!), count: count, heads: heads, kvHeads: kvHeads, headDimension: d,
            keys: UnsafePointer(cache.keys.baseAddress!), values: UnsafePointer(cache.values.baseAddress!),
            keyStride: cache.capacity, startPosition: start, threads: threads, into: a.baseAddress!)
        subNorm(UnsafeBufferPointer(a), rows: count, into: a, threads: threads)
        oProj(UnsafeBufferPointer(a), batch: count, into: y)
    }

    /// Causal scaled dot-product attention over a key/value store, the core of the layer.
    ///
    /// - `queries`: `count × heads × headDimension` (already rotated), query `t` at position
    ///   `startPosition + t`, attending to positions `0 ... startPosition + t`.
    /// - `keys`, `values`: `[kvHeads][keyStride][headDimension]`; query head `h` reads KV head
    ///   `h / (heads / kvHeads)`.
    /// - `out`: `count × heads × headDimension`.
    public static func attend(
        queries: UnsafePointer<Float>, count: Int, heads: Int, kvHeads: Int, headDimension d: Int,
        keys: UnsafePointer<Float>, values: UnsafePointer<Float>, keyStride: Int, startPosition: Int,
        threads: Int, into out: UnsafeMutablePointer<Float>
    ) {
        let group = heads / kvHeads
        let scale = 1 / Float(d).squareRoot()
        let q = SendableConstPointer(queries), kp = SendableConstPointer(keys), vp = SendableConstPointer(values)
        let o = SendablePointer(out)
        let dot = LayerKernels.dot, axpy = LayerKernels.axpy
        let average = startPosition + (count + 1) / 2
        Parallel.forEachChunk(count: count * heads, threads: threads, costPerItem: 2 * d * average, minimumWork: 1 << 15) { range in
            let scores = UnsafeMutablePointer<Float>.allocate(capacity: startPosition + count)
            defer { scores.deallocate() }
            for item in range {
                let t = item / heads, h = item % heads
                let g = h / group
                let visible = startPosition + t + 1
                let qv = q.base + item * d
                let kBase = kp.base + g * keyStride * d, vBase = vp.base + g * keyStride * d
                var m = -Float.infinity
                for j in 0..<visible {
                    let s = dot(qv, kBase + j * d, Int64(d)) * scale
                    scores[j] = s
                    if s > m { m = s }
                }
                var sum: Float = 0
                for j in 0..<visible {
                    let e = expf(scores[j] - m)
                    scores[j] = e
                    sum += e
                }
                let ov = o.base + item * d
                ov.update(repeating: 0, count: d)
                let inv = 1 / sum
                for j in 0..<visible { axpy(ov, scores[j] * inv, vBase + j * d, Int64(d)) }
            }
        }
    }
}
