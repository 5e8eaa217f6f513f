/// What `BitNetModel.generate` does: how many tokens, how to pick them, when to stop.
public struct GenerationParameters: Sendable {
    /// The most tokens to generate (≥ 1).
    public var maxNewTokens: Int
    public var temperature: Float
    public var topK: Int?
    public var topP: Float?
    public var seed: UInt64
    /// Generation stops after producing one of these (the config's EOS ids by default).
    public var stopTokens: Set<Int>?

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
