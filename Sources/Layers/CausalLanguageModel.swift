import TensorCore

/// A model that turns a token sequence into next-token logits, one step at a time, with
/// per-sequence state (KV caches) kept by the caller.
///
/// Conform your own model to get the library's generation (``generate(prompt:parameters:onToken:)``:
/// batch prefill, cached decode, sampling, stop tokens) and ``GenerationSession`` (streaming and
/// multi-turn use that keeps the cache between calls). `BitNetModel` conforms; so does the model
/// of the `CustomModel` example.
public protocol CausalLanguageModel: AnyObject {
    /// Logits per position (the vocabulary size).
    var vocabularySize: Int { get }
    /// The most positions one sequence's cache can hold.
    var maximumSequenceLength: Int { get }
    /// Tokens that end generation unless the caller says otherwise (EOS, end of turn).
    var stopTokens: Set<Int> { get }
    /// A new, empty state for one sequence, able to hold `capacity` positions.
    /// - Throws: `.invalidArgument` for a capacity outside `1 ... maximumSequenceLength`.
    func makeCache(capacity: Int) throws -> ModelCache
    /// Runs `tokens` at positions `cache.length ..< cache.length + tokens.count` as one batch,
    /// appends them to `cache`, and returns logits: of the last token (`vocabularySize` values), or
    /// of every token (`tokens.count × vocabularySize`) when `allPositions`.
    /// - Throws: `.invalidArgument` for no tokens, ids outside the vocabulary, or a full cache.
    func logits(for tokens: [Int], cache: ModelCache, allPositions: Bool) throws -> [Float]
    /// One decode step for several independent sequences at once: `tokens[r]` is the next token
    /// of the sequence whose state is `caches[r]`, at position `caches[r].length`. Appends each
    /// token to its own cache and returns `tokens.count × vocabularySize` logits, row `r` for
    /// sequence `r`, each bit-identical to what ``logits(for:cache:allPositions:)`` gives for
    /// that sequence alone.
    ///
    /// The default runs the sequences one after the other; a model overrides it with a true
    /// batched step, where every weight is read once for all rows (`BitNetModel` does).
    /// - Throws: `.invalidArgument` for no tokens, a count mismatch, the same cache twice, bad
    ///   ids or a full cache (checked before any cache changes).
    func logits(forNextTokens tokens: [Int], caches: [ModelCache]) throws -> [Float]
}

extension CausalLanguageModel {
    /// Runs each sequence alone (see the requirement's documentation).
    public func logits(forNextTokens tokens: [Int], caches: [ModelCache]) throws -> [Float] {
        try ModelCache.validateBatch(tokens, caches: caches, vocabularySize: vocabularySize)
        var out: [Float] = []
        out.reserveCapacity(tokens.count * vocabularySize)
        for (token, cache) in zip(tokens, caches) { out += try logits(for: [token], cache: cache, allPositions: false) }
        return out
    }
}

/// The state of one sequence: one KV cache per attention layer, all at the same length.
public final class ModelCache {
    /// One cache per layer, in layer order.
    public let layers: [KVCache]

    /// A state from per-layer caches (each empty, all of the same capacity).
    public init(layers: [KVCache]) {
        precondition(!layers.isEmpty && layers.allSatisfy { $0.capacity == layers[0].capacity })
        self.layers = layers
    }

    /// Positions held: the position of the next token.
    public var length: Int { layers[0].length }
    /// The most positions this state can hold.
    public var capacity: Int { layers[0].capacity }
    /// Bytes of keys and values reserved.
    public var bytes: Int { layers.reduce(0) { $0 + $1.bytes } }
    /// Forgets the sequence (the memory stays reserved).
    public func reset() { layers.forEach { $0.reset() } }

    /// Checks a batched decode step: one token per cache, at least one, no cache twice, and
    /// each token valid for its cache (``validate(_:vocabularySize:)``).
    /// - Throws: `.invalidArgument` naming the problem.
    public static func validateBatch(_ tokens: [Int], caches: [ModelCache], vocabularySize: Int) throws {
        guard !tokens.isEmpty, tokens.count == caches.count else {
            throw TernaryKitError.invalidArgument("a batched step needs one token per cache, got \(tokens.count) tokens for \(caches.count) caches")
        }
        guard Set(caches.map(ObjectIdentifier.init)).count == caches.count else {
            throw TernaryKitError.invalidArgument("the same cache appears twice in one batched step")
        }
        for (token, cache) in zip(tokens, caches) { try cache.validate([token], vocabularySize: vocabularySize) }
    }

    /// Checks that `tokens` can run next: non-empty, within the vocabulary and the capacity.
    /// - Throws: `.invalidArgument` naming the problem.
    public func validate(_ tokens: [Int], vocabularySize: Int) throws {
        guard !tokens.isEmpty else { throw TernaryKitError.invalidArgument("no tokens to run") }
        if let bad = tokens.first(where: { $0 < 0 || $0 >= vocabularySize }) {
            throw TernaryKitError.invalidArgument("token id \(bad) is outside the vocabulary 0..<\(vocabularySize)")
        }
        guard tokens.count <= capacity - length else {
            throw TernaryKitError.invalidArgument(
                "\(length) cached + \(tokens.count) new positions exceed the KV cache capacity \(capacity)")
        }
    }
}

/// One sequence being generated: a model, its cache, and a sampler, kept between calls so that a
/// conversation or a stream continues without re-running what the cache already holds.
public final class GenerationSession {
    /// The model.
    public let model: any CausalLanguageModel
    /// The sequence's cache.
    public let cache: ModelCache
    /// The logits after the last token run (nil before the first).
    public private(set) var lastLogits: [Float]?
    /// The last generated token, not yet run through the model: the next ``append(_:)`` runs it
    /// first, so a conversation continues exactly without paying for a forward pass that a
    /// one-shot generation would throw away.
    public private(set) var pendingToken: Int?

    /// A session with an empty cache of `capacity` positions (default: the model's maximum).
    /// - Throws: the model's `makeCache` errors.
    public init(model: any CausalLanguageModel, capacity: Int? = nil) throws {
        self.model = model
        cache = try model.makeCache(capacity: capacity ?? model.maximumSequenceLength)
    }

    /// Positions held in the cache.
    public var length: Int { cache.length }

    /// Runs ``pendingToken`` (if any) and `tokens` (a prompt, a user turn) as one batch after
    /// what the cache holds.
    /// - Returns: the logits of the last token.
    /// - Throws: the model's errors (bad ids, a full cache); the session is then unchanged.
    @discardableResult
    public func append(_ tokens: [Int]) throws -> [Float] {
        let run = (pendingToken.map { [$0] } ?? []) + tokens
        let l = try model.logits(for: run, cache: cache, allPositions: false)
        lastLogits = l
        pendingToken = nil
        return l
    }

    /// Forgets the sequence.
    public func reset() {
        cache.reset()
        lastLogits = nil
        pendingToken = nil
    }

    /// Generates after what the cache holds (call ``append(_:)`` with a prompt first): samples a
    /// token from the last logits, reports it, runs it, and repeats until a stop token, the
    /// token limit, the cache's capacity, or `onToken` returning false.
    ///
    /// The last generated token is kept as ``pendingToken`` (not run), so a following
    /// ``append(_:)`` continues the sequence exactly. `onToken(index, token)` may change the
    /// model between steps (e.g. `setBackend`).
    /// - Throws: `.invalidArgument` when nothing was appended yet or for bad sampling parameters;
    ///   the model's errors.
    public func generate(parameters: GenerationParameters, onToken: (Int, Int) throws -> Bool = { _, _ in true }) throws -> GenerationResult {
        guard var logits = lastLogits, pendingToken == nil else {
            throw TernaryKitError.invalidArgument("generate needs logits to start from: append a prompt (or the next turn) first")
        }
        guard parameters.maxNewTokens >= 1 else {
            throw TernaryKitError.invalidArgument("max new tokens must be at least 1, got \(parameters.maxNewTokens)")
        }
        var sampler = try Sampler(temperature: parameters.temperature, topK: parameters.topK, topP: parameters.topP,
                                  seed: parameters.seed)
        let stops = parameters.stopTokens ?? model.stopTokens
        var result = GenerationResult(tokens: [], promptLength: 0, prefillSeconds: 0, decodeSeconds: 0, decodeSteps: 0,
                                      stoppedAtStopToken: false)
        while true {
            let token = sampler.next(logits)
            result.tokens.append(token)
            pendingToken = token
            let goOn = try onToken(result.tokens.count - 1, token)
            if stops.contains(token) { result.stoppedAtStopToken = true; break }
            if !goOn || result.tokens.count >= parameters.maxNewTokens || cache.length >= cache.capacity { break }
            let t1 = MonotonicClock.seconds()
            logits = try model.logits(for: [token], cache: cache, allPositions: false)
            lastLogits = logits
            pendingToken = nil
            result.decodeSeconds += MonotonicClock.seconds() - t1
            result.decodeSteps += 1
        }
        return result
    }
}

extension CausalLanguageModel {
    /// Generates after `prompt` with a fresh cache: the prompt runs as one batch (prefill), then
    /// one token at a time with the KV cache (decode).
    ///
    /// `onToken(index, token)` is called after each new token; returning false stops. It may
    /// change the model (e.g. `setBackend`) between steps.
    /// - Throws: `.invalidArgument` for an empty prompt, bad ids, `maxNewTokens < 1`, bad sampling
    ///   parameters, or a sequence longer than the model's maximum length.
    public func generate(prompt: [Int], parameters: GenerationParameters,
                         onToken: (Int, Int) throws -> Bool = { _, _ in true }) throws -> GenerationResult {
        guard parameters.maxNewTokens >= 1 else {
            throw TernaryKitError.invalidArgument("max new tokens must be at least 1, got \(parameters.maxNewTokens)")
        }
        guard !prompt.isEmpty else { throw TernaryKitError.invalidArgument("empty prompt") }
        let (needed, overflow) = prompt.count.addingReportingOverflow(parameters.maxNewTokens)
        guard !overflow, needed - 1 <= maximumSequenceLength else {
            throw TernaryKitError.invalidArgument(
                "prompt \(prompt.count) + \(parameters.maxNewTokens) new tokens exceed the maximum sequence length \(maximumSequenceLength)")
        }
        // The last generated token is not run through the model, so prompt + max − 1 positions suffice.
        let session = try GenerationSession(model: self, capacity: needed - 1)
        let t0 = MonotonicClock.seconds()
        try session.append(prompt)
        let prefill = MonotonicClock.seconds() - t0
        var result = try session.generate(parameters: parameters, onToken: onToken)
        result.promptLength = prompt.count
        result.prefillSeconds = prefill
        return result
    }
}
