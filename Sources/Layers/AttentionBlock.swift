/// A self-attention block a `DecoderBlock` can hold: `rows × hiddenSize` in, `rows × hiddenSize`
/// out, with its keys and values in a `KVCache` per sequence.
///
/// The library's `GroupedQueryAttention` conforms; so can an attention of your own (a `Module`
/// subclass with its own children and parameters), e.g. with another position scheme.
public protocol AttentionBlock: Module {
    /// Input and output width.
    var hiddenSize: Int { get }
    /// Threads for the block's own loops (its projections use their kernels' own).
    var threads: Int { get set }
    /// Scratch shared with the rest of the model (a `DecoderBlock` uses the same one by default).
    var workspace: Workspace { get }
    /// A cache of the right shape for this block, holding up to `capacity` positions.
    func makeCache(capacity: Int) throws -> KVCache
    /// Attends `rows` new tokens of one sequence that follow the `cache.length` positions already
    /// cached; appends their keys and values; writes `rows × hiddenSize` outputs into `y`.
    func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, cache: KVCache,
                        into y: UnsafeMutableBufferPointer<Float>) throws
    /// One new token per sequence: row `r` attends against `caches[r]` at its own position.
    /// The default runs the rows one at a time through the single-sequence call.
    func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, caches: [KVCache],
                        into y: UnsafeMutableBufferPointer<Float>) throws
}

extension AttentionBlock {
    /// Row by row through ``callAsFunction(_:rows:cache:into:)``: correct for any block, without
    /// the shared weight reads of a true batched step.
    public func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, caches: [KVCache],
                               into y: UnsafeMutableBufferPointer<Float>) throws {
        precondition(caches.count == rows, "one cache per row")
        let h = hiddenSize
        for r in 0..<rows {
            try self(UnsafeBufferPointer(rebasing: x[(r * h)..<((r + 1) * h)]), rows: 1, cache: caches[r],
                     into: UnsafeMutableBufferPointer(rebasing: y[(r * h)..<((r + 1) * h)]))
        }
    }
}
