// Generation: a BitNet b1.58 model producing tokens, greedy and sampled, with prefill and decode
// speeds.
//
//   swift run Generation                                          # the tiny preset, random weights
//   swift run Generation --model Tests/Fixtures/tiny-bitnet       # a Hugging Face checkpoint directory
//   swift run Generation --temperature 0.8 --top-k 40 --top-p 0.95 --seed 3 --max-new-tokens 32
//   swift run -c release Generation --2b4t --backend bitpacked --threads 2   # 2B4T shapes: ~4 GB, tens of seconds to build
//   swift run Generation --help                                   # the options
//
// Other options: --tokens 1,2,3 (prompt ids; there is no tokenizer here), --backend NAME,
// --threads N, --lm-head int8|float32.
// Random-weight presets have the real shapes but produce meaningless ids; they stand in for the
// model when you measure speed. A checkpoint gives the model's own tokens.
import Backends
import Foundation
import BitNet
import Layers
import TensorCore

do {
    // MARK: Arguments (checked by Options.swift; any error below ends in one line on stderr)

    let options = try Options(usage: """
        usage: Generation [--2b4t | --model DIR] [--max-new-tokens N] [--temperature T] [--top-k K] [--top-p P]
                          [--seed N] [--tokens ID,ID,...] [--backend NAME] [--threads N] [--lm-head float32|int8|int4]
          defaults: tiny preset, 12 new tokens, temperature 0.8, top-k 40 (0: off), top-p 0.95, seed 42, 1 thread
        """, values: ["model", "max-new-tokens", "temperature", "top-k", "top-p", "seed", "tokens", "backend", "threads", "lm-head"],
        flags: ["2b4t"])
    let use2B4T = options.flag("2b4t")
    let modelDirectory = options.string("model")
    if use2B4T && modelDirectory != nil { throw Options.Invalid(description: "--2b4t and --model exclude each other") }
    let maxNewTokens = try options.count("max-new-tokens", 12)
    let temperature = try options.value("temperature", 0.8, expected: "a number") { Float($0) }
    let topK = try options.value("top-k", 40, expected: "an integer") { Int($0) }
    let topP = try options.value("top-p", 0.95, expected: "a number") { Float($0) }
    let seed = try options.value("seed", 42, expected: "an unsigned integer") { UInt64($0) }
    _ = try Sampler(temperature: temperature, topK: topK, topP: topP, seed: seed)   // checks their ranges now, not after loading
    let promptIDs: [Int] = try options.value("tokens", [], expected: "token ids like 1,2,3") { text in
        let ids = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) ?? -1 }
        return ids.allSatisfy { $0 >= 0 } ? ids : nil
    }
    let backend = try BackendRegistry.backend(named: options.string("backend") ?? (use2B4T ? "bitpacked" : "naive"))
    let context = try ComputeContext(threads: options.count("threads", 1))
    // The LM head of 2B4T reads 128256 × 2560 weights per token: Int8 rows read a quarter of the
    // bytes of Float32 ones (a small, measured change in the logits; see LMHeadFormat).
    let lmHead = try options.value("lm-head", use2B4T ? .int8 : .float32, expected: "float32, int8 or int4") { LMHeadFormat(rawValue: $0) }

    // MARK: The model: a checkpoint, or a preset with random weights

    let clock = ContinuousClock()
    func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

    // The KV cache is preallocated: room for a prompt of up to 256 tokens and the new ones (the
    // model's max_position_embeddings caps it).
    let cachePositions = 256 + maxNewTokens
    let start = clock.now
    let model: BitNetModel
    if let directory = modelDirectory {
        // config.json + model.safetensors (or sharded), validated, unpacked, prepared for `backend`.
        model = try BitNetModel.load(checkpoint: directory, backend: backend, context: context,
                                     lmHeadFormat: lmHead, kvCacheCapacity: cachePositions)
    } else {
        var config = use2B4T ? BitNetConfig.bitnet2B4T : BitNetConfig.tiny
        config.lmHeadFormat = lmHead
        config.kvCacheCapacity = cachePositions
        model = try BitNetModel.random(config: config, seed: seed, backend: backend, context: context)
    }
    let buildTime = clock.now - start
    let config = model.config
    let source = modelDirectory ?? (use2B4T ? "preset 2b4t (random weights)" : "preset tiny (random weights)")
    print("model:   \(source): \(config.numHiddenLayers) layers, hidden \(config.hiddenSize), vocab \(config.vocabSize)")
    print(String(format: "         backend %@, %d thread(s), LM head %@, %.1f MB of weights per token, built in %.2f s",
                 backend.name, context.threads, lmHead.rawValue, Double(model.weightBytesPerToken) / 1e6, seconds(buildTime)))

    // The prompt: token ids (a real application would run a tokenizer first).
    let prompt = promptIDs.isEmpty ? [config.bosTokenId, 10, 20, 30, 40, 50, 60, 70] : promptIDs
    print("prompt:  \(prompt)")

    // MARK: Generate

    // A random-weight model would stop whenever it happens to produce the EOS id: ignore it there.
    let stopTokens: Set<Int>? = modelDirectory == nil ? [] : nil       // nil: the config's EOS ids

    /// Generates with `parameters`, printing each token as it arrives, then the speeds.
    func run(_ title: String, _ parameters: GenerationParameters, model: BitNetModel, prompt: [Int]) throws -> [Int] {
        print("\n\(title)")
        var line = "  tokens:"
        let result = try model.generate(prompt: prompt, parameters: parameters) { _, token in
            line += " \(token)"           // onToken: called after every new token (return false to stop)
            return true
        }
        print(line + (result.stoppedAtStopToken ? "  (EOS)" : ""))
        print(String(format: "  prefill: %3d tokens  %9.1f tokens/s", result.promptLength, result.prefillTokensPerSecond))
        print(String(format: "  decode:  %3d tokens  %9.1f tokens/s", result.decodeSteps, result.decodeTokensPerSecond))
        return result.tokens
    }

    // Greedy: temperature 0 always takes the most likely token.
    _ = try run("greedy (temperature 0)",
                GenerationParameters(maxNewTokens: maxNewTokens, temperature: 0, stopTokens: stopTokens), model: model, prompt: prompt)

    // Sampling: softmax(logits / temperature), restricted to the top-k tokens, then to the smallest
    // set reaching probability top-p; the seed makes it reproducible.
    let sampling = GenerationParameters(maxNewTokens: maxNewTokens, temperature: temperature, topK: topK == 0 ? nil : topK,
                                        topP: topP >= 1 ? nil : topP, seed: seed, stopTokens: stopTokens)
    let title = String(format: "sampled (temperature %.2f, top-k %d, top-p %.2f, seed %llu)", temperature, topK, topP, seed)
    let first = try run(title, sampling, model: model, prompt: prompt)
    let again = try run("sampled again with the same seed", sampling, model: model, prompt: prompt)
    print("\nsame seed, same tokens: \(first == again ? "yes" : "NO")")
    if first != again { exit(1) }
    #if DEBUG
    print("(debug build: run with `swift run -c release Generation ...` for meaningful speeds)")
    #endif
} catch {
    exit(with: error)
}
