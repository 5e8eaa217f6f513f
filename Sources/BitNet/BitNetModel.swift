import Backends
import Foundation
import Layers
import TensorCore

/// A BitNet b1.58 causal language model assembled from the generic `Layers` blocks: the root of
/// the layer tree, with Hugging Face's keys (`model.embed_tokens`, `model.layers.{i}`,
/// `model.norm`, `lm_head`). Those keys, in ``children``, are the only place the checkpoint
/// names are written: the loader, the exporter and the random presets all walk the tree.
///
/// It conforms to `CausalLanguageModel`, so generation, sessions and sampling come from
/// `Layers`. For convenience it also keeps a default cache (`forward(_:allLogits:)`,
/// `resetCache()`, `cacheLength`), created on first use with `config.cacheCapacity` positions.
public final class BitNetModel: Module, CausalLanguageModel {
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
    /// Scratch shared by every layer of the model.
    public let workspace: Workspace
    /// The thread count of the element-wise work and of newly prepared kernels.
    public private(set) var context: ComputeContext
    private var defaultCache: ModelCache?

    /// The model skeleton for `config`: every layer in place, ternary projections and norms at
    /// their defaults (zeros, gains of 1), an all-zero embedding. Fill it through the parameter
    /// keys (`setParameter(key:_:)`, as `load(checkpoint:)` and `random(config:seed:)` do), then
    /// call `prepareKernels()`.
    /// - Parameters:
    ///   - config: the model's shapes; validated first.
    ///   - backend: the backend of every ternary projection (nil: `BackendRegistry.defaultBackend`).
    ///   - context: the thread count of the kernels and the element-wise work.
    /// - Throws: `config.validate()` errors; `.invalidArgument` when the model would not fit in
    ///   physical memory (`BitNetConfig.estimatedBytes()`, checked before anything is allocated).
    public init(config: BitNetConfig, backend: (any LinearBackend)? = nil, context: ComputeContext = .singleThreaded) throws {
        try config.validate()
        try SizeLimits.requireFits(bytes: config.estimatedBytes(), what: "a BitNet model of this config")
        self.config = config
        self.context = context
        let ws = Workspace()
        workspace = ws
        let h = config.hiddenSize, eps = config.rmsNormEps
        embedding = try Embedding(vocabularySize: config.vocabSize, dimensions: h)
        let rotary = try RotaryEmbedding(headDimension: config.headDimension, theta: config.ropeTheta,
                                         maxPositions: config.cacheCapacity)
        layers = try (0..<config.numHiddenLayers).map { _ in
            let attention = try GroupedQueryAttention(
                hiddenSize: h, heads: config.numAttentionHeads, kvHeads: config.numKeyValueHeads, rotary: rotary,
                subNormEpsilon: eps, backend: backend, context: context, workspace: ws)
            let mlp = try GatedFeedForward(hiddenSize: h, intermediateSize: config.intermediateSize, activation: .reluSquared,
                                           subNormEpsilon: eps, backend: backend, context: context, workspace: ws)
            return try DecoderBlock(inputNorm: RMSNorm(dimensions: h, epsilon: eps), attention: attention,
                                    postAttentionNorm: RMSNorm(dimensions: h, epsilon: eps), feedForward: mlp, workspace: ws)
        }
        norm = try RMSNorm(dimensions: h, epsilon: eps)
        lmHead = try LMHead(weight: embedding.weight, vocabularySize: config.vocabSize, dimensions: h, format: config.lmHeadFormat,
                            tied: config.tieWordEmbeddings, threads: context.threads, workspace: ws)
        super.init()
        if config.tieWordEmbeddings {
            embedding.onWeightChange = { [unowned self] in try self.lmHead.setWeight(self.embedding.weight) }
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

    // MARK: CausalLanguageModel

    /// `vocab_size`.
    public var vocabularySize: Int { config.vocabSize }
    /// The positions the rotary table covers (`config.cacheCapacity`).
    public var maximumSequenceLength: Int { config.cacheCapacity }
    /// The config's EOS ids.
    public var stopTokens: Set<Int> { Set(config.eosTokenIds) }

    /// One KV cache per decoder layer, for `capacity` positions.
    /// - Throws: `.invalidArgument` for a capacity outside `1 ... maximumSequenceLength`.
    public func makeCache(capacity: Int) throws -> ModelCache {
        guard capacity >= 1, capacity <= maximumSequenceLength else {
            throw TernaryKitError.invalidArgument("cache capacity \(capacity) is outside 1...\(maximumSequenceLength)")
        }
        return ModelCache(layers: try layers.map { try $0.attention.makeCache(capacity: capacity) })
    }

    /// Runs `tokens` after what `cache` holds and returns the logits of the last token, or of
    /// every token when `allPositions` (only the rows asked for go through the LM head).
    public func logits(for tokens: [Int], cache: ModelCache, allPositions: Bool) throws -> [Float] {
        try run(tokens, cache: cache)
        let h = config.hiddenSize, v = config.vocabSize
        let rows = allPositions ? tokens.count : 1
        let finals = workspace.floats(.logitsInput, count: tokens.count * h)
        let first = allPositions ? 0 : tokens.count - 1
        var logits = [Float](repeating: 0, count: rows * v)
        logits.withUnsafeMutableBufferPointer { out in
            lmHead(UnsafeBufferPointer(rebasing: finals[(first * h)...]), rows: rows, into: out)
        }
        return logits
    }

    /// One batched decode step: `tokens[r]` runs after what `caches[r]` holds, all rows through
    /// every projection at once (each weight read once per step), attention per row against its
    /// own cache. Row `r` of the result is bit-identical to `logits(for: [tokens[r]], cache:
    /// caches[r], allPositions: false)`.
    /// - Throws: `.invalidArgument` (checked before any cache changes) for a count mismatch, a
    ///   cache used twice or of another model, bad ids, a full cache.
    public func logits(forNextTokens tokens: [Int], caches: [ModelCache]) throws -> [Float] {
        try ModelCache.validateBatch(tokens, caches: caches, vocabularySize: config.vocabSize)
        guard caches.allSatisfy({ $0.layers.count == layers.count }) else {
            throw TernaryKitError.invalidArgument("a cache of another layer count than the model's \(layers.count)")
        }
        let h = config.hiddenSize, v = config.vocabSize, n = tokens.count
        let x = workspace.floats(.residual, count: n * h)
        embedding.lookup(tokens, into: x)
        for (i, block) in layers.enumerated() { try block(x, rows: n, caches: caches.map { $0.layers[i] }) }
        let finals = workspace.floats(.logitsInput, count: n * h)
        norm(UnsafeBufferPointer(x), rows: n, into: finals, threads: context.threads)
        var logits = [Float](repeating: 0, count: n * v)
        logits.withUnsafeMutableBufferPointer { out in lmHead(UnsafeBufferPointer(finals), rows: n, into: out) }
        return logits
    }

    /// Runs `tokens` through the decoder stack and the final norm into `workspace`'s
    /// `.logitsInput` slot (`tokens.count × hidden`).
    private func run(_ tokens: [Int], cache: ModelCache) throws {
        try cache.validate(tokens, vocabularySize: config.vocabSize)
        guard cache.layers.count == layers.count else {
            throw TernaryKitError.invalidArgument("a cache of \(cache.layers.count) layers for a model of \(layers.count)")
        }
        let h = config.hiddenSize, n = tokens.count
        let x = workspace.floats(.residual, count: n * h)
        embedding.lookup(tokens, into: x)
        for (i, block) in layers.enumerated() { try block(x, rows: n, cache: cache.layers[i]) }
        let finals = workspace.floats(.logitsInput, count: n * h)
        norm(UnsafeBufferPointer(x), rows: n, into: finals, threads: context.threads)
    }

    // MARK: The default cache

    private func cache() throws -> ModelCache {
        if let c = defaultCache { return c }
        let c = try makeCache(capacity: config.cacheCapacity)
        defaultCache = c
        return c
    }

    /// Positions held in the default cache (the position of the next `forward` token).
    public var cacheLength: Int { defaultCache?.length ?? 0 }

    /// Forgets the default cache's sequence: the next `forward` starts at position 0.
    public func resetCache() { defaultCache?.reset() }

    /// Runs `tokens` as one batch after the default cache's positions and returns logits: of the
    /// last token (`vocab_size` values), or of every token (`tokens.count × vocab_size`) when `allLogits`.
    /// - Throws: `.invalidArgument` for an empty list, a token id outside the vocabulary, or more
    ///   positions than the cache holds.
    public func forward(_ tokens: [Int], allLogits: Bool = false) throws -> [Float] {
        try logits(for: tokens, cache: cache(), allPositions: allLogits)
    }

    /// Runs `tokens` with the default cache (see ``forward(_:allLogits:)``) and returns the final
    /// normalized hidden states (`tokens.count × hidden_size`).
    public func hiddenStates(_ tokens: [Int]) throws -> [Float] {
        try run(tokens, cache: cache())
        return Array(UnsafeBufferPointer(workspace.floats(.logitsInput, count: tokens.count * config.hiddenSize)))
    }

    // MARK: Sizes and threads

    /// Bytes of weights read per decoded token: every ternary kernel's layout plus the LM head
    /// (the KV cache and one embedding row are small beside them and not counted).
    public var weightBytesPerToken: Int {
        bitLinears().reduce(0) { $0 + $1.layer.parameterBytes } + lmHead.bytesPerToken
    }

    /// Re-prepares every ternary layer (with its current backend) and sets the element-wise
    /// work for `context.threads` threads.
    /// - Throws: the backends' `prepare` errors.
    public func setContext(_ context: ComputeContext) throws {
        self.context = context
        for (_, l) in bitLinears() { try l.prepare(backend: l.backend, context: context) }
        for b in layers {
            b.attention.threads = context.threads
            if let mlp = b.feedForward as? GatedFeedForward { mlp.threads = context.threads }
        }
        lmHead.threads = context.threads
    }
}
