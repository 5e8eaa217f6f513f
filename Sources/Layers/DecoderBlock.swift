import TensorCore

/// One BitNet b1.58 decoder layer (pre-norm, residual):
/// `h = x + self_attn(input_layernorm(x))`, `out = h + mlp(post_attention_layernorm(h))`.
public final class DecoderBlock: Module {
    /// The norm before attention (`input_layernorm`).
    public let inputNorm: RMSNorm
    /// The self-attention branch (`self_attn`).
    public let attention: GroupedQueryAttention
    /// The norm before the feed-forward (`post_attention_layernorm`).
    public let postAttentionNorm: RMSNorm
    /// The feed-forward branch (`mlp`).
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

    /// The two norms, attention and feed-forward, under their Hugging Face keys.
    public override var children: [(key: String, module: Module)] {
        [("input_layernorm", inputNorm), ("self_attn", attention),
         ("post_attention_layernorm", postAttentionNorm), ("mlp", feedForward)]
    }

    /// Just the kind: the block's parts print their own lines.
    public override var summary: String { "DecoderBlock" }

    /// The residual connection `x += branch`.
    static func add(_ branch: UnsafeMutableBufferPointer<Float>, into x: UnsafeMutableBufferPointer<Float>, threads: Int) {
        let b = SendableConstPointer(UnsafeBufferPointer(branch)), xs = SendablePointer(x)
        Parallel.forEachChunk(count: branch.count, threads: threads, granularity: 64, minimumWork: 1 << 16) { range in
            for i in range { xs.base[i] += b.base[i] }
        }
    }

    /// Updates the hidden states `x` (`count × hidden`) in place, appending to `cache`.
    func callAsFunction(_ x: UnsafeMutableBufferPointer<Float>, count: Int, cache: KVCache) {
        let n = count * inputNorm.dimensions
        let normed = workspace.floats(.normed, count: n)
        let branch = workspace.floats(.projection, count: n)
        let threads = attention.threads
        inputNorm(UnsafeBufferPointer(x), rows: count, into: normed, threads: threads)
        attention(UnsafeBufferPointer(normed), count: count, cache: cache, into: branch)
        DecoderBlock.add(branch, into: x, threads: threads)
        postAttentionNorm(UnsafeBufferPointer(x), rows: count, into: normed, threads: threads)
        feedForward(UnsafeBufferPointer(normed), count: count, into: branch)
        DecoderBlock.add(branch, into: x, threads: threads)
    }
}
