import ArgumentParser
import Layers

/// `--temperature`, `--top-k`, `--top-p`: how `generate` and `chat` pick tokens, checked once
/// here (ArgumentParser validates an option group with its command).
struct SamplingOptions: ParsableArguments {
    @Option(help: "Sampling temperature; 0 is greedy.")
    var temperature: Float = 0

    @Option(help: "Sample among the k most likely tokens (0: all).")
    var topK: Int = 0

    @Option(help: "Nucleus sampling mass in (0, 1].")
    var topP: Float = 1

    func validate() throws {
        if topK < 0 { throw ValidationError("--top-k must not be negative, got \(topK)") }
        if !(topP > 0 && topP <= 1) { throw ValidationError("--top-p must be in (0, 1], got \(topP)") }
        if !(temperature >= 0 && temperature.isFinite) { throw ValidationError("--temperature must be ≥ 0, got \(temperature)") }
    }

    /// The library's parameters for these options (0 top-k and top-p 1 mean "off").
    func parameters(maxNewTokens: Int, seed: UInt64, stopTokens: Set<Int>?) -> GenerationParameters {
        GenerationParameters(maxNewTokens: maxNewTokens, temperature: temperature, topK: topK == 0 ? nil : topK,
                             topP: topP >= 1 ? nil : topP, seed: seed, stopTokens: stopTokens)
    }
}
