import Backends
import CKernels
import TensorCore

/// Grouped-query causal self-attention with rotary positions and ternary projections:
/// `o_proj(subNorm?(softmax(QKᵀ/√d + causal mask) · V))`, where `heads / kvHeads` query heads
/// share each key/value head and Q, K, V come from `BitLinear` projections of the same
/// (once-quantized) input.
///
/// With `kvHeads == heads` it is ordinary multi-head attention (Llama 2 style); with fewer KV
/// heads the cache shrinks by `heads / kvHeads` (Llama 3, BitNet b1.58). The optional norm on the
/// attention output before `o_proj` is BitNet's `attn_sub_norm`.
///
/// Scores, softmax and the value mix are Float32, computed by one C kernel (`tk_attention_f32_*`)
/// for one KV head and a block of query rows (the heads of its group times a block of tokens),
/// which reuses every key and value row it loads for all those rows. Each (token, head) row's
/// arithmetic depends only on its query, its visible length and the keys and values, so prefill
/// in one call, decoding one token at a time with the cache, any thread count and the batched
/// decode all give the same bits.
public final class GroupedQueryAttention: Module, AttentionBlock {
    /// The four ternary projections: `q_proj`, then `k_proj` and `v_proj` (to ``kvHeads`` heads only), and `o_proj`.
    public let qProj: BitLinear, kProj: BitLinear, vProj: BitLinear, oProj: BitLinear
    /// The norm on the attention output before `o_proj` (`attn_sub_norm`), or nil (Llama).
    public let subNorm: RMSNorm?
    /// Query heads, key/value heads (each shared by `heads / kvHeads` query heads), and the width of one head.
    public let heads: Int, kvHeads: Int, headDimension: Int
    /// The rotary table applied to queries and keys.
    public let rotary: RotaryEmbedding
    /// Scratch shared with the rest of the model.
    public let workspace: Workspace
    /// Threads for the scores / softmax / value mix (the projections use their kernels' own).
    public var threads: Int

    /// Attention over `hiddenSize` features with projections of the right shapes holding zeros
    /// until weights are set (`setParameter(key:_:)`, a checkpoint loader, or the projections'
    /// `setWeight`).
    /// - Parameters:
    ///   - hiddenSize: the model width (input of q/k/v, output of o).
    ///   - heads: query heads; `hiddenSize` must be a multiple of it unless `headDimension` is given.
    ///   - kvHeads: key/value heads; must divide `heads`.
    ///   - headDimension: the width of one head (default `hiddenSize / heads`).
    ///   - rotary: the rotary table (its head dimension must match; its length bounds positions).
    ///   - subNormEpsilon: ε of an RMSNorm on the attention output (BitNet's `attn_sub_norm`); nil for none.
    ///   - backend: the projections' backend (nil: `BackendRegistry.defaultBackend`).
    ///   - context: the projections' thread count, also used for the attention loops.
    ///   - workspace: scratch to share with the other layers of the model.
    /// - Throws: `.invalidArgument` for inconsistent head counts or a rotary table of another width.
    public init(hiddenSize: Int, heads: Int, kvHeads: Int, headDimension: Int? = nil, rotary: RotaryEmbedding,
                subNormEpsilon: Float? = nil, backend: (any LinearBackend)? = nil,
                context: ComputeContext = .singleThreaded, workspace: Workspace? = nil) throws {
        guard hiddenSize > 0, heads > 0, kvHeads > 0, heads % kvHeads == 0 else {
            throw TernaryKitError.invalidArgument("attention: \(heads) heads, \(kvHeads) KV heads, hidden \(hiddenSize)")
        }
        let d = headDimension ?? hiddenSize / heads
        guard d > 0, headDimension != nil || hiddenSize % heads == 0 else {
            throw TernaryKitError.invalidArgument("attention: hidden \(hiddenSize) is not a multiple of \(heads) heads")
        }
        guard rotary.headDimension == d else {
            throw TernaryKitError.invalidArgument("attention: rotary table for head dimension \(rotary.headDimension), heads are \(d) wide")
        }
        let ws = workspace ?? Workspace()
        self.heads = heads
        self.kvHeads = kvHeads
        self.headDimension = d
        self.rotary = rotary
        self.workspace = ws
        threads = context.threads
        func projection(_ out: Int, _ inn: Int) throws -> BitLinear {
            try BitLinear(outFeatures: out, inFeatures: inn, backend: backend, context: context, workspace: ws)
        }
        qProj = try projection(heads * d, hiddenSize)
        kProj = try projection(kvHeads * d, hiddenSize)
        vProj = try projection(kvHeads * d, hiddenSize)
        oProj = try projection(hiddenSize, heads * d)
        subNorm = try subNormEpsilon.map { try RMSNorm(dimensions: heads * d, epsilon: $0) }
    }

    /// The projections and the sub-norm under their Hugging Face keys.
    public override var children: [(key: String, module: Module)] {
        var c: [(key: String, module: Module)] = [("q_proj", qProj), ("k_proj", kProj), ("v_proj", vProj), ("o_proj", oProj)]
        if let n = subNorm { c.append(("attn_sub_norm", n)) }
        return c
    }

    /// Head counts, head width and the rotary base.
    public override var summary: String {
        "GroupedQueryAttention heads=\(heads) kv=\(kvHeads) headDim=\(headDimension) θ=\(rotary.theta)"
    }

    /// Input and output width (`hidden_size`).
    public var hiddenSize: Int { qProj.inFeatures }

    /// A KV cache of the right shape for this layer, holding up to `capacity` positions.
    /// - Throws: `.invalidArgument` for a non-positive capacity.
    public func makeCache(capacity: Int) throws -> KVCache {
        try KVCache(kvHeads: kvHeads, headDimension: headDimension, capacity: capacity)
    }

    /// Q, K and V of `rows` rows of `x` into the workspace's slots: the input is quantized once
    /// and read by the three projections (each adds its low-rank correction, if any, from `x`).
    private func project(_ x: UnsafeBufferPointer<Float>, rows: Int) throws
        -> (q: UnsafeMutableBufferPointer<Float>, k: UnsafeMutableBufferPointer<Float>, v: UnsafeMutableBufferPointer<Float>) {
        let hidden = qProj.inFeatures, d = headDimension
        let qx = workspace.quantized(count: rows * hidden)
        let qs = workspace.scales(count: rows)
        LayerKernels.quantize(x, rows: rows, columns: hidden, into: qx, scales: qs, threads: threads)
        let q = workspace.floats(.query, count: rows * heads * d)
        let k = workspace.floats(.key, count: rows * kvHeads * d)
        let v = workspace.floats(.value, count: rows * kvHeads * d)
        try qProj.applyQuantized(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), rows: rows, into: q, input: x)
        try kProj.applyQuantized(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), rows: rows, into: k, input: x)
        try vProj.applyQuantized(UnsafeBufferPointer(qx), scales: UnsafeBufferPointer(qs), rows: rows, into: v, input: x)
        return (q, k, v)
    }

    /// Attends `rows` new tokens (`x`: their normalized hidden states, `rows × hiddenSize`) that
    /// follow the `cache.length` positions already cached; appends their keys and values and
    /// writes `rows × hiddenSize` outputs into `y`.
    /// - Throws: `.invalidArgument` when the cache is full or does not fit this layer; a
    ///   projection's `prepare` error.
    public func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, cache: KVCache,
                               into y: UnsafeMutableBufferPointer<Float>) throws {
        let hidden = qProj.inFeatures, d = headDimension
        guard cache.kvHeads == kvHeads, cache.headDimension == d else {
            throw TernaryKitError.invalidArgument("KV cache of \(cache.kvHeads)×\(cache.headDimension) for attention with \(kvHeads)×\(d)")
        }
        let start = cache.length
        guard rows <= cache.capacity - start, start + rows <= rotary.maxPositions else {
            throw TernaryKitError.invalidArgument(
                "\(start) cached + \(rows) new positions exceed the KV cache (\(cache.capacity)) or the rotary table (\(rotary.maxPositions))")
        }
        precondition(x.count >= rows * hidden && y.count >= rows * hidden)
        let (q, k, v) = try project(x, rows: rows)
        for t in 0..<rows {
            rotary.apply(q.baseAddress! + t * heads * d, heads: heads, position: start + t)
            rotary.apply(k.baseAddress! + t * kvHeads * d, heads: kvHeads, position: start + t)
        }
        cache.append(keys: k.baseAddress!, values: v.baseAddress!, count: rows)
        let a = workspace.floats(.attention, count: rows * heads * d)
        let scratch = workspace.floats(.scores, count: GroupedQueryAttention.scratchCount(
            count: rows, heads: heads, kvHeads: kvHeads, headDimension: d, startPosition: start, threads: threads))
        GroupedQueryAttention.attend(
            queries: UnsafePointer(q.baseAddress!), count: rows, heads: heads, kvHeads: kvHeads, headDimension: d,
            keys: UnsafePointer(cache.keys.baseAddress!), values: UnsafePointer(cache.values.baseAddress!),
            keyStride: cache.capacity, startPosition: start, threads: threads, scratch: scratch, into: a.baseAddress!)
        try outputProjection(a, rows: rows, into: y)
    }

    /// `o_proj(subNorm?(a))` for `rows` rows of attention output `a` (`rows × heads·headDimension`,
    /// overwritten by the normalized rows when there is a sub-norm).
    ///
    /// With a sub-norm and an `o_proj` without correction (BitNet b1.58), each row is normalized
    /// and quantized for `o_proj` by one C call (`VectorKernelVariant.rmsNormQuantize`) while it
    /// is in cache, instead of a norm pass and a quantization pass over all rows; the row
    /// functions are those of the two passes, so the bits are the same. A correction needs the
    /// normalized Floats of every row as its input, so it keeps the two passes.
    private func outputProjection(_ a: UnsafeMutableBufferPointer<Float>, rows: Int,
                                  into y: UnsafeMutableBufferPointer<Float>) throws {
        guard let norm = subNorm, oProj.correction == nil, rows > 0 else {
            if let norm = subNorm { norm(UnsafeBufferPointer(a), rows: rows, into: a, threads: threads) }
            try oProj(UnsafeBufferPointer(a), rows: rows, into: y)
            return
        }
        let width = heads * headDimension
        precondition(a.count >= rows * width && norm.dimensions == width)
        // The Int8 and scale slots of the q/k/v projections are dead by now.
        let qa = workspace.quantized(count: rows * width), sa = workspace.scales(count: rows)
        let x = SendablePointer(a), q = SendablePointer(qa), s = SendablePointer(sa)
        let f = LayerKernels.rmsNormQuantize, eps = norm.epsilon
        norm.weight.withUnsafeBufferPointer { gb in
            let gamma = SendableConstPointer(gb)
            Parallel.forEachChunk(count: rows, threads: threads, costPerItem: width, minimumWork: 1 << 15) { range in
                for r in range {
                    // In place, as the separate norm pass: `a` then holds what o_proj's input would have been.
                    let row = x.base + r * width
                    s.base[r] = f(row, gamma.base, Int64(width), eps, row, q.base + r * width)
                }
            }
        }
        try oProj.applyQuantized(UnsafeBufferPointer(qa), scales: UnsafeBufferPointer(sa), rows: rows, into: y)
    }

    /// Causal scaled dot-product attention over a key/value store, the core of the layer.
    ///
    /// - `queries`: `count × heads × headDimension` (already rotated), query `t` at position
    ///   `startPosition + t`, attending to positions `0 ... startPosition + t`.
    /// - `keys`, `values`: `[kvHeads][keyStride][headDimension]`; query head `h` reads KV head
    ///   `h / (heads / kvHeads)`. Positions at or past `startPosition + count` are never read.
    /// - `scratch`: at least ``scratchCount(count:heads:kvHeads:headDimension:startPosition:threads:)``
    ///   Floats (checked: a shorter buffer stops the program with a message rather than being
    ///   overrun); nil allocates it for this call.
    /// - `out`: `count × heads × headDimension`.
    ///
    /// The work is split into (KV head, block of tokens) items, each one call of the blocked C
    /// kernel for the group's query heads times the block's tokens. A (token, head) row's result
    /// depends only on its own query, its visible length and the keys and values, not on the
    /// block it lands in or on `threads`: decoding the same tokens one at a time gives the same
    /// bits.
    public static func attend(
        queries: UnsafePointer<Float>, count: Int, heads: Int, kvHeads: Int, headDimension d: Int,
        keys: UnsafePointer<Float>, values: UnsafePointer<Float>, keyStride: Int, startPosition: Int,
        threads: Int, scratch: UnsafeMutableBufferPointer<Float>? = nil, into out: UnsafeMutablePointer<Float>
    ) {
        attend(queries: queries, count: count, heads: heads, kvHeads: kvHeads, headDimension: d, keys: keys, values: values,
               keyStride: keyStride, startPosition: startPosition, threads: threads, scratch: scratch, into: out,
               kernel: LayerKernels.attention)
    }

    /// Floats of scratch ``attend(queries:count:heads:kvHeads:headDimension:keys:values:keyStride:startPosition:threads:scratch:into:)``
    /// needs for these arguments.
    public static func scratchCount(count: Int, heads: Int, kvHeads: Int, headDimension d: Int, startPosition: Int,
                                    threads: Int) -> Int {
        guard count > 0 else { return 0 }
        let plan = split(count: count, heads: heads, kvHeads: kvHeads, headDimension: d, startPosition: startPosition,
                         threads: threads)
        return plan.chunks * plan.perChunk
    }

    /// How `attend` splits its work: tokens per block, blocks, (KV head, block) items, scratch
    /// Floats per concurrent chunk, and the chunks.
    private static func split(count: Int, heads: Int, kvHeads: Int, headDimension d: Int, startPosition: Int,
                              threads: Int) -> (block: Int, blocks: Int, items: Int, perChunk: Int, chunks: Int) {
        let group = heads / kvHeads, length = startPosition + count
        let block = tokenBlock(count: count, group: group, length: length)
        let blocks = (count + block - 1) / block
        let items = kvHeads * blocks
        return (block, blocks, items, kernelScratch(tokens: block, group: group, headDimension: d, length: length),
                Parallel.maximumChunks(count: items, threads: threads))
    }

    /// Tokens per work item: up to 32 (a 128-token prompt of 5 KV heads still makes 20 items for
    /// the threads), fewer when the block's score rows (`tokens × group × length` Floats) would
    /// pass 1 MiB, the L2 of one core. Measured on one core (2B4T shapes, AVX-512): 32 tokens beat
    /// 16 by 3–25 % from 128 to 2048 positions.
    static func tokenBlock(count: Int, group: Int, length: Int) -> Int {
        max(1, min(32, count, (1 << 18) / max(1, group * length)))
    }

    /// Scratch Floats of one kernel call of at most `tokens` tokens whose last row sees `length` positions.
    static func kernelScratch(tokens: Int, group: Int, headDimension d: Int, length: Int) -> Int {
        Int(tk_attention_scratch_floats(Int64(tokens), Int64(group), Int64(d), Int64(max(1, length - tokens + 1))))
    }

    /// ``attend(queries:count:heads:kvHeads:headDimension:keys:values:keyStride:startPosition:threads:scratch:into:)``
    /// with a given kernel variant (tests run every supported one).
    static func attend(
        queries: UnsafePointer<Float>, count: Int, heads: Int, kvHeads: Int, headDimension d: Int,
        keys: UnsafePointer<Float>, values: UnsafePointer<Float>, keyStride: Int, startPosition: Int,
        threads: Int, scratch: UnsafeMutableBufferPointer<Float>?, into out: UnsafeMutablePointer<Float>,
        kernel: VectorKernelVariant.Attention
    ) {
        guard count > 0 else { return }
        let group = heads / kvHeads
        let (block, blocks, items, perChunk, chunks) = split(count: count, heads: heads, kvHeads: kvHeads, headDimension: d,
                                                             startPosition: startPosition, threads: threads)
        if let scratch {
            precondition(scratch.count >= chunks * perChunk,
                         "attention scratch of \(scratch.count) Floats; these arguments need \(chunks * perChunk) (scratchCount)")
        }
        let owned = scratch == nil ? UnsafeMutablePointer<Float>.allocate(capacity: chunks * perChunk) : nil
        defer { owned?.deallocate() }
        let sp = SendablePointer(scratch?.baseAddress ?? owned!)
        let scale = 1 / Float(d).squareRoot()
        let q = SendableConstPointer(queries), kp = SendableConstPointer(keys), vp = SendableConstPointer(values)
        let o = SendablePointer(out)
        let tokenStride = heads * d
        let average = startPosition + (count + 1) / 2
        Parallel.forEachIndexedChunk(count: items, threads: threads, costPerItem: 2 * d * group * block * average,
                                     minimumWork: 1 << 15) { chunk, range in
            let s = sp.base + chunk * perChunk
            for item in range {
                // Blocks of a head in the order 0, n-1, 1, n-2, ...: any run of items mixes short
                // and long prefixes, so the threads' contiguous ranges cost about the same.
                let g = item / blocks, i = item % blocks
                let b = i % 2 == 0 ? i / 2 : blocks - 1 - i / 2
                let t0 = b * block, n = min(block, count - t0)
                let first = (t0 * heads + g * group) * d
                kernel(q.base + first, Int64(tokenStride), o.base + first, Int64(tokenStride), Int64(n), Int64(group), Int64(d),
                       kp.base + g * keyStride * d, vp.base + g * keyStride * d, Int64(startPosition + t0 + 1), scale, s)
            }
        }
    }

    /// Attends one new token per sequence for `rows` independent sequences (`x`: their
    /// normalized hidden states, `rows × hiddenSize`): row `r` is the next token of the sequence
    /// whose keys and values `caches[r]` holds, at position `caches[r].length`. Appends each
    /// row's key and value to its own cache and writes `rows × hiddenSize` outputs into `y`.
    ///
    /// The projections run once for all rows (each weight is read once per step); scores,
    /// softmax and the value mix of row `r` read only `caches[r]`, with the same kernel call per
    /// KV head as ``callAsFunction(_:rows:cache:into:)`` makes for one token, so every row's
    /// output is bit-identical to running its sequence alone.
    /// - Throws: `.invalidArgument` for a cache count other than `rows`, the same cache twice, a
    ///   full cache or one that does not fit this layer (nothing is appended then); a
    ///   projection's `prepare` error.
    public func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, caches: [KVCache],
                               into y: UnsafeMutableBufferPointer<Float>) throws {
        let hidden = qProj.inFeatures, d = headDimension
        guard caches.count == rows, rows >= 1 else {
            throw TernaryKitError.invalidArgument("\(caches.count) KV caches for \(rows) rows")
        }
        guard Set(caches.map(ObjectIdentifier.init)).count == rows else {
            throw TernaryKitError.invalidArgument("the same KV cache appears twice in one batch")
        }
        for cache in caches {
            guard cache.kvHeads == kvHeads, cache.headDimension == d else {
                throw TernaryKitError.invalidArgument("KV cache of \(cache.kvHeads)×\(cache.headDimension) for attention with \(kvHeads)×\(d)")
            }
            guard cache.length < cache.capacity, cache.length < rotary.maxPositions else {
                throw TernaryKitError.invalidArgument(
                    "\(cache.length) cached + 1 new position exceed the KV cache (\(cache.capacity)) or the rotary table (\(rotary.maxPositions))")
            }
        }
        precondition(x.count >= rows * hidden && y.count >= rows * hidden)
        let (q, k, v) = try project(x, rows: rows)
        var longest = 0, total = 0
        for (r, cache) in caches.enumerated() {
            let position = cache.length
            rotary.apply(q.baseAddress! + r * heads * d, heads: heads, position: position)
            rotary.apply(k.baseAddress! + r * kvHeads * d, heads: kvHeads, position: position)
            cache.append(keys: k.baseAddress! + r * kvHeads * d, values: v.baseAddress! + r * kvHeads * d, count: 1)
            longest = max(longest, cache.length)
            total += cache.length
        }
        let a = workspace.floats(.attention, count: rows * heads * d)
        let heads = self.heads, kvHeads = self.kvHeads, group = heads / kvHeads, items = rows * kvHeads
        let chunks = Parallel.maximumChunks(count: items, threads: threads)
        let perChunk = GroupedQueryAttention.kernelScratch(tokens: 1, group: group, headDimension: d, length: longest)
        let scratch = SendablePointer(workspace.floats(.scores, count: chunks * perChunk))
        let scale = 1 / Float(d).squareRoot()
        let kernel = LayerKernels.attention
        let qp = SendableConstPointer(UnsafeBufferPointer(q)), o = SendablePointer(a)
        withUnsafeTemporaryAllocation(of: (keys: UnsafePointer<Float>, values: UnsafePointer<Float>, stride: Int, length: Int).self,
                                      capacity: rows) { views in
            for (r, cache) in caches.enumerated() {
                views[r] = (UnsafePointer(cache.keys.baseAddress!), UnsafePointer(cache.values.baseAddress!), cache.capacity, cache.length)
            }
            let vs = SendableConstPointer(UnsafeBufferPointer(views))
            // One item per (row, KV head): the kernel call a lone sequence's decode step makes.
            Parallel.forEachIndexedChunk(count: items, threads: threads, costPerItem: 2 * d * group * max(1, total / rows),
                                         minimumWork: 1 << 15) { chunk, range in
                let s = scratch.base + chunk * perChunk
                for item in range {
                    let r = item / kvHeads, g = item % kvHeads
                    let view = vs.base[r]
                    let offset = g * view.stride * d, first = (r * heads + g * group) * d
                    kernel(qp.base + first, Int64(heads * d), o.base + first, Int64(heads * d), 1, Int64(group), Int64(d),
                           view.keys + offset, view.values + offset, Int64(view.length), scale, s)
                }
            }
        }
        try outputProjection(a, rows: rows, into: y)
    }
}
