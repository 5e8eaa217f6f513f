import Foundation
import TensorCore


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
        let t0 = MonotonicClock.seconds()
        var logits = try forward(prompt)
        let prefill = MonotonicClock.seconds() - t0
        var result = GenerationResult(tokens: [], promptLength: prompt.count, prefillSeconds: prefill,
                                      decodeSeconds: 0, decodeSteps: 0, stoppedAtStopToken: false)
        while true {
            let token = sampler.next(logits)
            result.tokens.append(token)
            let goOn = try onToken(result.tokens.count - 1, token)
            if stops.contains(token) { result.stoppedAtStopToken = true; break }
            if !goOn { break }
            if result.tokens.count >= parameters.maxNewTokens { break }
            let t1 = MonotonicClock.seconds()
            logits = try forward([token])
            result.decodeSeconds += MonotonicClock.seconds() - t1
            result.decodeSteps += 1
        }
        return result
    }
}

