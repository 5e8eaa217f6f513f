/// What `BitNetModel.generate` does: how many tokens, how to pick them, when to stop.
public struct GenerationParameters: Sendable {
    /// The most tokens to generate (≥ 1).
    public var maxNewTokens: Int
    /// 0 (the default) picks the most likely token (greedy, deterministic); above 0, logits are divided by it before sampling, so higher values give more varied text.
    public var temperature: Float
    /// When sampling, keep only the `topK` most likely tokens; nil or 0 keeps all.
    public var topK: Int?
    /// When sampling, keep the smallest most-likely set whose probability reaches `topP` (nucleus); nil or 1 keeps all.
    public var topP: Float?
    /// Seeds the sampler: the same seed, prompt and parameters give the same tokens.
    public var seed: UInt64
    /// Generation stops after producing one of these (the config's EOS ids by default).
    public var stopTokens: Set<Int>?

    /// Parameters with greedy decoding by default.
    ///
    /// Values are checked when generation starts (the sampler throws `.invalidArgument` for a negative temperature or top-k, for example).
    public init(maxNewTokens: Int, temperature: Float = 0, topK: Int? = nil, topP: Float? = nil, seed: UInt64 = 0,
                stopTokens: Set<Int>? = nil) {
        self.maxNewTokens = maxNewTokens
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        self.seed = seed
        self.stopTokens = stopTokens
    }
}
