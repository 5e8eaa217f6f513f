/// The tokens generated and the two speeds.
public struct GenerationResult: Sendable {
    /// The new tokens (the prompt not included).
    public var tokens: [Int]
    /// Tokens in the prompt, all processed by the prefill pass.
    public var promptLength: Int
    /// Seconds of the prefill pass (the whole prompt as one batch, including the first token's logits).
    public var prefillSeconds: Double
    /// Seconds of the decode passes (one per generated token after the first).
    public var decodeSeconds: Double
    /// Decode passes run (`tokens.count − 1`, or fewer when stopped).
    public var decodeSteps: Int
    /// True when a stop token ended generation.
    public var stoppedAtStopToken: Bool

    /// Prompt tokens per second of prefill.
    public var prefillTokensPerSecond: Double { Double(promptLength) / prefillSeconds }
    /// Tokens per second of decoding (NaN when no decode pass ran).
    public var decodeTokensPerSecond: Double { decodeSteps > 0 ? Double(decodeSteps) / decodeSeconds : .nan }
}
