import TensorCore

/// One BitNet b1.58 decoder layer (pre-norm, residual):
/// `h = x + self_attn(input_layernorm(x))`, `out = h + mlp(post_attention_layernorm(h))`.
public final class DecoderBlock: Module {
    public let inputNorm: RMSNorm
    public let attention: GroupedQueryAttention
    public let postAttentionNorm: RMSNorm
    public let feedForward: GatedFeedForward
    let workspace: Workspace

    init(inputNorm: RMSNorm, attention: GroupedQueryAttention, postAttentionNorm: RMSNorm,
         feedForward: GatedFeedForward, workspace: Workspace) {
        self.inputNorm = inputNorm
        self.attention = attention
        self.postAttentionNorm = postAttentionNorm
        self.feedForward = feedForward
        self.workspace = workspace
    }

    public override var children: [(key: String, module: Module)] {
        [("input_layernorm", inputNorm), ("self_attn", attention),
         ("post_attention_layernorm", postAttentionNorm), ("mlp", feedForward)]
    }

    public override var summary: String { "DecoderBlock" }

    /// Updates the hidden states `x` (`count × hidden`) in place, appending to `cache`.
    func callAsFunction(_ x: UnsafeMutableBufferPointer<Float>, count: Int, cache: KVCache) {
        let n = count * inputNorm.dimensions
        let normed = workspace.floats(.normed, count: n)
        let branch = workspace.floats(.projection, count: n)
        inputNorm(UnsafeBufferPointer(x), rows: count, into: normed)
        attention(UnsafeBufferPointer(normed), count: count, cache: cache, into: branch)
        for i in 0..<n { x[i] += branch[i] }
        postAttentionNorm(UnsafeBufferPointer(x), rows: count, into: normed)
        feedForward(UnsafeBufferPointer(normed), count: count, into: branch)
        for i in 0..<n { x[i] += branch[i] }
    }
}
