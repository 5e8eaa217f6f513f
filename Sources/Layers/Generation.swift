import Foundation
import TensorCore

#if canImport(Glibc)
import Glibc
#endif

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

/// The tokens generated and the two speeds.
public struct GenerationResult: Sendable {
    /// The new tokens (the prompt not included).
    public var tokens: [Int]
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

extension BitNetModel {
    /// Generates after `prompt`: the prompt runs as one batch (prefill), then one token at a time
    /// with the KV cache (decode). The cache is reset first.
    ///
    /// `onToken(index, token)` is called after each new token; returning false stops. It may
    /// change the model (e.g. `setBackend`) between steps.
    /// - Throws: `.invalidArgument` for an empty prompt, bad ids, `maxNewTokens < 1`, bad sampling
    ///   parameters, or a sequence longer than the KV cache.
    public func generate(prompt: [Int], parameters: GenerationParameters,
                         onToken: (Int, Int) throws -> Bool = { _, _ in true }) throws -> GenerationResult {
        guard parameters.maxNewTokens >= 1 else {
            throw TernaryKitError.invalidArgument("max new tokens must be at least 1, got \(parameters.maxNewTokens)")
        }
        guard !prompt.isEmpty else { throw TernaryKitError.invalidArgument("empty prompt") }
        guard prompt.count + parameters.maxNewTokens - 1 <= config.cacheCapacity else {
            throw TernaryKitError.invalidArgument(
                "prompt \(prompt.count) + \(parameters.maxNewTokens) new tokens exceed the KV cache capacity \(config.cacheCapacity)")
        }
        var sampler = try Sampler(temperature: parameters.temperature, topK: parameters.topK, topP: parameters.topP,
                                  seed: parameters.seed)
        let stops = parameters.stopTokens ?? Set(config.eosTokenIds)
        resetCache()
        let t0 = monotonicTime()
        var logits = try forward(prompt)
        let prefill = monotonicTime() - t0
        var result = GenerationResult(tokens: [], promptLength: prompt.count, prefillSeconds: prefill,
                                      decodeSeconds: 0, decodeSteps: 0, stoppedAtStopToken: false)
        while true {
            let token = sampler.next(logits)
            result.tokens.append(token)
            let goOn = try onToken(result.tokens.count - 1, token)
            if stops.contains(token) { result.stoppedAtStopToken = true; break }
            if !goOn { break }
            if result.tokens.count >= parameters.maxNewTokens { break }
            let t1 = monotonicTime()
            logits = try forward([token])
            result.decodeSeconds += monotonicTime() - t1
            result.decodeSteps += 1
        }
        return result
    }
}

/// Monotonic seconds.
func monotonicTime() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}
