import Backends
import Foundation
import TensorCore

/// A BitNet b1.58 causal language model: the root of the layer tree, with Hugging Face's keys
/// (`model.embed_tokens`, `model.layers.{i}`, `model.norm`, `lm_head`).
///
/// It owns one KV cache per layer; `forward(_:allLogits:)` appends tokens to the cache and
/// returns logits, `resetCache()` starts a new sequence. Build it from a config and weight
/// providers (a checkpoint loader), or with random weights from a seed (`random(config:seed:…)`).
public final class BitNetModel: Module {
    /// The shapes this model was built with (already validated).
    public let config: BitNetConfig
    /// The token embedding (`model.embed_tokens`); also the LM head's weight when embeddings are tied.
    public let embedding: Embedding
    /// The decoder layers, in order (`model.layers.{i}`).
    public let layers: [DecoderBlock]
    /// The final norm before the LM head (`model.norm`).
    public let norm: RMSNorm
    /// The output projection to vocabulary logits (`lm_head`).
    public let lmHead: LMHead
    /// One KV cache per decoder layer, holding the current sequence; ``resetCache()`` empties them all.
    public let caches: [KVCache]
    let workspace: Workspace
    /// The thread count of the element-wise work and of newly prepared kernels.
    public private(set) var context: ComputeContext

    /// A model whose tensors come from `ternary(key, out, in)` (every projection, by its
    /// checkpoint key without `.weight`, e.g. `model.layers.0.self_attn.q_proj`) and
    /// `floats(key, count)` (embedding and norm weights by the same kind of key; return nil for
    /// the default: norm gains of 1; the embedding has no default).
    /// - Throws: `config.validate()` errors, the providers' errors, shape mismatches, the
    ///   backend's `prepare` errors.
    public init(config: BitNetConfig, backend: any LinearBackend = NaiveBackend(), context: ComputeContext = .singleThreaded,
                ternary: (String, Int, Int) throws -> TernaryMatrix,
                floats: (String, Int) throws -> [Float]?) throws {
        try config.validate()
        // Layers are first built with the naive backend, whose `prepare` only keeps the matrix;
        // `setBackend` below then prepares them for `backend`, several at a time.
        let finalBackend = backend
        let backend: any LinearBackend = NaiveBackend()
        self.config = config
        self.context = context
        let ws = Workspace()
        workspace = ws
        let h = config.hiddenSize, inter = config.intermediateSize, d = config.headDimension
        let eps = config.rmsNormEps
        func matrix(_ key: String, _ out: Int, _ inn: Int) throws -> TernaryMatrix {
            let m = try ternary(key, out, inn)
            guard m.outFeatures == out, m.inFeatures == inn else {
                throw TernaryKitError.invalidShape("\(key): \(m.outFeatures)×\(m.inFeatures), expected \(out)×\(inn)")
            }
            return m
        }
        func norm(_ key: String, _ n: Int) throws -> RMSNorm {
            let r = try RMSNorm(dimensions: n, epsilon: eps)
            if let w = try floats(key, n) { try r.setParameter("weight", .floats(w)) }
            return r
        }
        guard let table = try floats("model.embed_tokens", config.vocabSize * h) else {
            throw TernaryKitError.invalidArgument("no embedding table for model.embed_tokens")
        }
        embedding = try Embedding(weight: table, vocabularySize: config.vocabSize, dimensions: h)
        let rotary = try RotaryEmbedding(headDimension: d, theta: config.ropeTheta, maxPositions: config.cacheCapacity)
        var blocks: [DecoderBlock] = []
        for i in 0..<config.numHiddenLayers {
            let p = "model.layers.\(i)"
            let kv = config.numKeyValueHeads * d
            let attention = try GroupedQueryAttention(
                hidden: h, heads: config.numAttentionHeads, kvHeads: config.numKeyValueHeads, rotary: rotary, epsilon: eps,
                projections: (try matrix("\(p).self_attn.q_proj", h, h), try matrix("\(p).self_attn.k_proj", kv, h),
                              try matrix("\(p).self_attn.v_proj", kv, h), try matrix("\(p).self_attn.o_proj", h, h)),
                backend: backend, context: context, workspace: ws)
            if let w = try floats("\(p).self_attn.attn_sub_norm", h) { try attention.subNorm.setParameter("weight", .floats(w)) }
            let ffn = try GatedFeedForward(
                hidden: h, intermediate: inter, epsilon: eps,
                projections: (try matrix("\(p).mlp.gate_proj", inter, h), try matrix("\(p).mlp.up_proj", inter, h),
                              try matrix("\(p).mlp.down_proj", h, inter)),
                backend: backend, context: context, workspace: ws)
            if let w = try floats("\(p).mlp.ffn_sub_norm", inter) { try ffn.subNorm.setParameter("weight", .floats(w)) }
            blocks.append(DecoderBlock(
                inputNorm: try norm("\(p).input_layernorm", h), attention: attention,
                postAttentionNorm: try norm("\(p).post_attention_layernorm", h), feedForward: ffn, workspace: ws))
        }
        layers = blocks
        self.norm = try norm("model.norm", h)
        let headWeight: [Float]
        if config.tieWordEmbeddings {
            headWeight = table
        } else {
            guard let w = try floats("lm_head", config.vocabSize * h) else {
                throw TernaryKitError.invalidArgument("untied embeddings but no lm_head weight")
            }
            headWeight = w
        }
        lmHead = LMHead(weight: headWeight, vocabularySize: config.vocabSize, dimensions: h, format: config.lmHeadFormat,
                        tied: config.tieWordEmbeddings, threads: context.threads, workspace: ws)
        caches = try (0..<config.numHiddenLayers).map { _ in
            try KVCache(kvHeads: config.numKeyValueHeads, headDimension: d, capacity: config.cacheCapacity)
        }
        super.init()
        if !(finalBackend is NaiveBackend) { try setBackend(finalBackend, context: context) }
        if config.tieWordEmbeddings {
            embedding.onWeightChange = { [unowned self] in self.lmHead.setWeight(self.embedding.weight) }
        }
    }

    /// The embedding, every decoder layer, the final norm and the LM head, under their Hugging Face keys.
    public override var children: [(key: String, module: Module)] {
        var c: [(key: String, module: Module)] = [("model.embed_tokens", embedding)]
        for (i, l) in layers.enumerated() { c.append(("model.layers.\(i)", l)) }
        c.append(("model.norm", norm))
        c.append(("lm_head", lmHead))
        return c
    }

    /// Layer count, widths, vocabulary and thread count: the first line of a model summary.
    public override var summary: String {
        "BitNetModel \(config.numHiddenLayers) layers, hidden \(config.hiddenSize), vocab \(config.vocabSize), threads \(context.threads)"
    }

    /// Positions held in the KV caches (the position of the next token).
    public var cacheLength: Int { caches.first?.length ?? 0 }

    /// Forgets the sequence: the next `forward` starts at position 0.
    public func resetCache() { caches.forEach { $0.reset() } }

    /// Bytes of weights read per decoded token: every ternary kernel's layout plus the LM head
    /// (the KV cache and one embedding row are small beside them and not counted).
    public var weightBytesPerToken: Int {
        bitLinears().reduce(0) { $0 + $1.layer.kernel.storageBytes } + lmHead.bytesPerToken
    }

    /// Re-prepares every ternary layer (with its current backend) and sets the element-wise
    /// work for `context.threads` threads.
    public func setContext(_ context: ComputeContext) throws {
        self.context = context
        for (_, l) in bitLinears() { try l.prepare(backend: l.backend, context: context) }
        for b in layers {
            b.attention.threads = context.threads
            b.feedForward.threads = context.threads
        }
        lmHead.threads = context.threads
    }

    /// Runs `tokens` (one batch, at positions `cacheLength ..< cacheLength + tokens.count`)
    /// through the model, appending to the caches, and returns the final normalized hidden
    /// states (`tokens.count × hidden_size`).
    /// - Throws: `.invalidArgument` for an empty list, a token id outside the vocabulary, or more
    ///   positions than the cache holds.
    public func hiddenStates(_ tokens: [Int]) throws -> [Float] {
        try run(tokens)
        let n = tokens.count * config.hiddenSize
        return Array(UnsafeBufferPointer(workspace.floats(.logitsInput, count: n)))
    }

    /// Runs `tokens` as one batch (see `hiddenStates`) and returns logits: of the last token
    /// (`vocab_size` values), or of every token (`tokens.count × vocab_size`) when `allLogits`.
    public func forward(_ tokens: [Int], allLogits: Bool = false) throws -> [Float] {
        try run(tokens)
        let h = config.hiddenSize, v = config.vocabSize
        let rows = allLogits ? tokens.count : 1
        let finals = workspace.floats(.logitsInput, count: tokens.count * h)
        let first = allLogits ? 0 : tokens.count - 1
        var logits = [Float](repeating: 0, count: rows * v)
        logits.withUnsafeMutableBufferPointer { out in
            lmHead(UnsafeBufferPointer(rebasing: finals[(first * h)...]), rows: rows, into: out)
        }
        return logits
    }

    private func run(_ tokens: [Int]) throws {
        guard !tokens.isEmpty else { throw TernaryKitError.invalidArgument("no tokens to run") }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= config.vocabSize }) {
            throw TernaryKitError.invalidArgument("token id \(bad) is outside the vocabulary 0..<\(config.vocabSize)")
        }
        guard cacheLength + tokens.count <= config.cacheCapacity else {
            throw TernaryKitError.invalidArgument(
                "\(cacheLength) cached + \(tokens.count) new positions exceed the KV cache capacity \(config.cacheCapacity)")
        }
        let h = config.hiddenSize, n = tokens.count
        let x = workspace.floats(.residual, count: n * h)
        embedding.lookup(tokens, into: x)
        for (i, block) in layers.enumerated() { block(x, count: n, cache: caches[i]) }
        let finals = workspace.floats(.logitsInput, count: n * h)
        norm(UnsafeBufferPointer(x), rows: n, into: finals, threads: context.threads)
    }
}
