import TensorCore

/// Generation for many independent sequences at once (continuous batching): each sequence has
/// its own prompt, KV cache, sampling parameters and stop condition, and every decode step runs
/// all unfinished sequences as one batch through the model
/// (`CausalLanguageModel.logits(forNextTokens:caches:)`), so each weight is read once per step
/// for all of them instead of once per sequence.
///
/// ```swift
/// let batch = BatchGenerator(model: model)
/// let a = try batch.add(prompt: [1, 2, 3], parameters: GenerationParameters(maxNewTokens: 32))
/// let b = try batch.add(prompt: [7, 8], parameters: GenerationParameters(maxNewTokens: 8, temperature: 0.7, seed: 1))
/// while batch.hasActiveSequences {
///     for t in try batch.step() { print(t.id, t.token, t.finished) }
///     // A server may `add` new requests here: they join the next step.
/// }
/// let tokensOfA = batch.result(for: a)!.tokens
/// ```
///
/// A sequence behaves exactly as `generate(prompt:parameters:)` would alone: its prompt is
/// prefilled by itself in ``add(prompt:parameters:)``; each ``step()`` samples its next token
/// from its last logits, reports it, and (unless that token ends it) runs it in the batch. Its
/// logits are bit-identical to a lone run, so greedy tokens (and seeded samples) are the same.
/// A sequence leaves the batch when it produces a stop token, reaches its `maxNewTokens`, or
/// is cancelled; its cache is released then and its ``GenerationResult`` stays available.
///
/// Not thread-safe: call it from one thread (the model's products use their own threads).
public final class BatchGenerator {
    /// Names one sequence of a generator (ids count up from 0 in the order of `add`).
    public struct SequenceID: Hashable, Sendable, Comparable, CustomStringConvertible {
        /// The id's number.
        public let rawValue: Int
        public static func < (a: SequenceID, b: SequenceID) -> Bool { a.rawValue < b.rawValue }
        public var description: String { "#\(rawValue)" }
    }

    /// One token produced by ``step()``.
    public struct Token: Sendable, Equatable {
        /// The sequence it belongs to.
        public let id: SequenceID
        /// The token id.
        public let token: Int
        /// True when this is the sequence's last token (stop token, token limit, or full context):
        /// the sequence has left the batch.
        public let finished: Bool
    }

    private final class Sequence {
        let id: SequenceID
        var cache: ModelCache?
        var sampler: Sampler
        let stops: Set<Int>
        let maxNewTokens: Int
        var logits: [Float]
        var result: GenerationResult

        init(id: SequenceID, cache: ModelCache, sampler: Sampler, stops: Set<Int>, maxNewTokens: Int, logits: [Float],
             result: GenerationResult) {
            self.id = id
            self.cache = cache
            self.sampler = sampler
            self.stops = stops
            self.maxNewTokens = maxNewTokens
            self.logits = logits
            self.result = result
        }
    }

    /// The model every sequence runs on.
    public let model: any CausalLanguageModel
    private var active: [Sequence] = []
    private var finished: [SequenceID: GenerationResult] = [:]
    private var nextID = 0

    /// Wall-clock seconds of all batched decode passes so far.
    public private(set) var decodeSeconds: Double = 0
    /// Tokens run through the model by the batched decode passes so far (the sum of the batch sizes).
    public private(set) var decodedTokens = 0
    /// Batched decode passes run so far.
    public private(set) var decodeSteps = 0
    /// Wall-clock seconds of all prefills so far.
    public private(set) var prefillSeconds: Double = 0
    /// Prompt tokens prefilled so far.
    public private(set) var prefillTokens = 0

    /// A generator with no sequences.
    public init(model: any CausalLanguageModel) {
        self.model = model
    }

    /// Sequences still generating, in the order they were added.
    public var activeSequences: [SequenceID] { active.map(\.id) }
    /// True while some sequence is still generating.
    public var hasActiveSequences: Bool { !active.isEmpty }
    /// Aggregate decode speed: tokens run by batched passes per second of those passes (NaN before the first).
    public var decodeTokensPerSecond: Double { decodeSteps > 0 ? Double(decodedTokens) / decodeSeconds : .nan }
    /// Aggregate prefill speed: prompt tokens per second of prefill (NaN before the first).
    public var prefillTokensPerSecond: Double { prefillTokens > 0 ? Double(prefillTokens) / prefillSeconds : .nan }

    /// Adds a sequence: makes its cache (`prompt.count + maxNewTokens − 1` positions), prefills
    /// its prompt alone (one batch), and keeps the logits its first token is sampled from at the
    /// next ``step()``. Call it any time, also between steps: the sequence joins the next one.
    /// - Returns: the sequence's id, for ``result(for:)`` and the tokens ``step()`` reports.
    /// - Throws: `.invalidArgument` for an empty prompt, bad ids, `maxNewTokens < 1`, bad sampling
    ///   parameters, or a sequence longer than the model's maximum length (nothing is added then).
    @discardableResult
    public func add(prompt: [Int], parameters: GenerationParameters) throws -> SequenceID {
        guard parameters.maxNewTokens >= 1 else {
            throw TernaryKitError.invalidArgument("max new tokens must be at least 1, got \(parameters.maxNewTokens)")
        }
        guard !prompt.isEmpty else { throw TernaryKitError.invalidArgument("empty prompt") }
        let (needed, overflow) = prompt.count.addingReportingOverflow(parameters.maxNewTokens)
        guard !overflow, needed - 1 <= model.maximumSequenceLength else {
            throw TernaryKitError.invalidArgument(
                "prompt \(prompt.count) + \(parameters.maxNewTokens) new tokens exceed the maximum sequence length \(model.maximumSequenceLength)")
        }
        let sampler = try Sampler(temperature: parameters.temperature, topK: parameters.topK, topP: parameters.topP,
                                  seed: parameters.seed)
        // The last generated token is not run through the model, so prompt + max − 1 positions suffice.
        let cache = try model.makeCache(capacity: needed - 1)
        let t0 = MonotonicClock.seconds()
        let logits = try model.logits(for: prompt, cache: cache, allPositions: false)
        let seconds = MonotonicClock.seconds() - t0
        prefillSeconds += seconds
        prefillTokens += prompt.count
        let id = SequenceID(rawValue: nextID)
        nextID += 1
        let result = GenerationResult(tokens: [], promptLength: prompt.count, prefillSeconds: seconds, decodeSeconds: 0,
                                      decodeSteps: 0, stoppedAtStopToken: false)
        active.append(Sequence(id: id, cache: cache, sampler: sampler, stops: parameters.stopTokens ?? model.stopTokens,
                               maxNewTokens: parameters.maxNewTokens, logits: logits, result: result))
        return id
    }

    /// One step for every active sequence: samples its next token from its last logits, then
    /// runs the tokens of the sequences that go on as one batch
    /// (`logits(forNextTokens:caches:)`). Sequences whose token was a stop token, their last
    /// allowed token, or fills their context leave the batch (their token is not run, as in
    /// `generate`).
    /// - Returns: one token per sequence that was active, in the order they were added; empty
    ///   when none is.
    /// - Throws: the model's errors. The tokens of this step are then recorded but their logits
    ///   are not: the generator should be discarded.
    @discardableResult
    public func step() throws -> [Token] {
        var out: [Token] = []
        out.reserveCapacity(active.count)
        var goOn: [Sequence] = []
        for s in active {
            let token = s.sampler.next(s.logits)
            s.result.tokens.append(token)
            let cache = s.cache!
            var done = false
            if s.stops.contains(token) {
                s.result.stoppedAtStopToken = true
                done = true
            } else if s.result.tokens.count >= s.maxNewTokens || cache.length >= cache.capacity {
                done = true
            }
            out.append(Token(id: s.id, token: token, finished: done))
            if done { finish(s) } else { goOn.append(s) }
        }
        active = goOn
        guard !goOn.isEmpty else { return out }
        let t0 = MonotonicClock.seconds()
        let tokens = goOn.map { $0.result.tokens.last! }
        let logits = try model.logits(forNextTokens: tokens, caches: goOn.map { $0.cache! })
        let seconds = MonotonicClock.seconds() - t0
        decodeSeconds += seconds
        decodedTokens += goOn.count
        decodeSteps += 1
        let v = model.vocabularySize
        for (r, s) in goOn.enumerated() {
            s.logits = Array(logits[(r * v)..<((r + 1) * v)])
            s.result.decodeSeconds += seconds
            s.result.decodeSteps += 1
        }
        return out
    }

    /// Runs ``step()`` until no sequence is active.
    /// - Returns: the results of every sequence added so far, by id.
    /// - Throws: the model's errors.
    @discardableResult
    public func run() throws -> [SequenceID: GenerationResult] {
        while hasActiveSequences { try step() }
        return finished
    }

    /// Stops a sequence now (a client went away): it leaves the batch with the tokens it has.
    /// - Returns: false when the id is not active.
    @discardableResult
    public func cancel(_ id: SequenceID) -> Bool {
        guard let i = active.firstIndex(where: { $0.id == id }) else { return false }
        finish(active.remove(at: i))
        return true
    }

    /// The tokens and timings of a sequence so far (finished or not); nil for an unknown id.
    /// `decodeSeconds` counts the whole wall time of the batched passes it took part in.
    public func result(for id: SequenceID) -> GenerationResult? {
        finished[id] ?? active.first { $0.id == id }?.result
    }

    /// Whether the sequence has left the batch.
    public func isFinished(_ id: SequenceID) -> Bool { finished[id] != nil }

    private func finish(_ s: Sequence) {
        s.cache = nil
        s.logits = []
        finished[s.id] = s.result
    }
}
