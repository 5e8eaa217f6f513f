import TensorCore

/// One pre-norm transformer decoder layer with residual connections (Llama, BitNet b1.58):
/// `h = x + self_attn(input_layernorm(x))`, `out = h + mlp(post_attention_layernorm(h))`.
///
/// The attention is any ``AttentionBlock`` and the feed-forward any ``FeedForwardBlock``: the
/// library's `GroupedQueryAttention` and `GatedFeedForward`, or blocks of your own. Children use the Hugging Face Llama keys.
public final class DecoderBlock: Module {
    /// The norm before attention (`input_layernorm`).
    public let inputNorm: RMSNorm
    /// The self-attention branch (`self_attn`): the library's `GroupedQueryAttention` or any
    /// ``AttentionBlock``.
    public let attention: any AttentionBlock
    /// The norm before the feed-forward (`post_attention_layernorm`).
    public let postAttentionNorm: RMSNorm
    /// The feed-forward branch (`mlp`).
    public let feedForward: any FeedForwardBlock
    /// Scratch shared with the rest of the model (the block's norm output and branch output).
    public let workspace: Workspace

    /// A block from its parts; `workspace` should be the one its attention uses.
    /// - Throws: `.invalidShape` when the norms' widths differ from the attention's input width.
    public init(inputNorm: RMSNorm, attention: any AttentionBlock, postAttentionNorm: RMSNorm,
                feedForward: any FeedForwardBlock, workspace: Workspace? = nil) throws {
        guard inputNorm.dimensions == attention.hiddenSize, postAttentionNorm.dimensions == inputNorm.dimensions else {
            throw TernaryKitError.invalidShape(
                "decoder block: norms of \(inputNorm.dimensions) and \(postAttentionNorm.dimensions) features around attention over \(attention.hiddenSize)")
        }
        self.inputNorm = inputNorm
        self.attention = attention
        self.postAttentionNorm = postAttentionNorm
        self.feedForward = feedForward
        self.workspace = workspace ?? attention.workspace
    }

    /// The two norms, attention and feed-forward, under their Hugging Face keys.
    public override var children: [(key: String, module: Module)] {
        [("input_layernorm", inputNorm), ("self_attn", attention),
         ("post_attention_layernorm", postAttentionNorm), ("mlp", feedForward)]
    }

    /// Just the kind: the block's parts print their own lines.
    public override var summary: String { "DecoderBlock" }

    /// The residual connection `x += branch`, split over `threads` threads.
    public static func addResidual(_ branch: UnsafeBufferPointer<Float>, into x: UnsafeMutableBufferPointer<Float>, threads: Int) {
        precondition(x.count >= branch.count)
        let b = SendableConstPointer(branch), xs = SendablePointer(x)
        Parallel.forEachChunk(count: branch.count, threads: threads, granularity: 64, minimumWork: 1 << 16) { range in
            for i in range { xs.base[i] += b.base[i] }
        }
    }

    /// Updates the hidden states `x` (`rows × hidden`) in place, appending to `cache`.
    /// - Throws: the attention's errors (a full cache), a projection's `prepare` error.
    public func callAsFunction(_ x: UnsafeMutableBufferPointer<Float>, rows: Int, cache: KVCache) throws {
        try forward(x, rows: rows) { normed, branch in try attention(normed, rows: rows, cache: cache, into: branch) }
    }

    /// Updates the hidden states `x` (`rows × hidden`) of one new token per sequence in place:
    /// row `r` belongs to the sequence of `caches[r]` (see
    /// `AttentionBlock.callAsFunction(_:rows:caches:into:)`). The norms and the feed-forward work
    /// row by row, so each row gets the bits it would get alone.
    /// - Throws: the attention's errors (a full cache, a cache count other than `rows`), a
    ///   projection's `prepare` error.
    public func callAsFunction(_ x: UnsafeMutableBufferPointer<Float>, rows: Int, caches: [KVCache]) throws {
        try forward(x, rows: rows) { normed, branch in try attention(normed, rows: rows, caches: caches, into: branch) }
    }

    /// The block around its attention step: norm → `attend(normed, branch)` → residual → norm →
    /// feed-forward → residual.
    private func forward(_ x: UnsafeMutableBufferPointer<Float>, rows: Int,
                         attend: (UnsafeBufferPointer<Float>, UnsafeMutableBufferPointer<Float>) throws -> Void) throws {
        let n = rows * inputNorm.dimensions
        let normed = workspace.floats(.normed, count: n)
        let branch = workspace.floats(.projection, count: n)
        let threads = attention.threads
        inputNorm(UnsafeBufferPointer(x), rows: rows, into: normed, threads: threads)
        try attend(UnsafeBufferPointer(normed), branch)
        DecoderBlock.addResidual(UnsafeBufferPointer(branch), into: x, threads: threads)
        postAttentionNorm(UnsafeBufferPointer(x), rows: rows, into: normed, threads: threads)
        try feedForward(UnsafeBufferPointer(normed), rows: rows, into: branch)
        DecoderBlock.addResidual(UnsafeBufferPointer(branch), into: x, threads: threads)
    }
}
