import ArgumentParser
import Backends
import Foundation
import BitNet
import Layers
import TensorCore

/// `ternary generate`: greedy or sampled generation with a random-weight BitNet b1.58 model,
/// reporting prefill and decode speeds separately.
struct GenerateCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "generate",
        abstract: "Generate tokens (or text, with --prompt and a tokenizer) with a BitNet b1.58 model and report prefill / decode tokens/s.",
        discussion: """
            The model has the preset's shapes and random weights from --seed (nothing is \
            downloaded). The prompt runs as one batch (prefill), then tokens are decoded one at a \
            time with the KV cache. Use a release build for timings. With --bandwidth, the \
            streaming read bandwidth is measured in the same run and the decode ceiling \
            (bandwidth ÷ weight bytes read per token) is printed next to the speed.
            """
    )

    @Option(help: "Model shapes: 2b4t (BitNet b1.58 2B4T; also bitnet-b1.58-2b-4t) or tiny.")
    var preset: PresetName = .tiny

    @Option(help: "A Hugging Face BitNet checkpoint directory to load instead of a random --preset.")
    var model: String?

    @Option(help: "Comma-separated prompt token ids, e.g. 1,2,3. Repeat it to generate several sequences together (batched decoding; sequence i samples with seed + i).")
    var tokens: [String] = []

    /// `--prompt TEXT`, `--chat`, `--tokenizer PATH` (TextGeneration.swift).
    @OptionGroup var text: TextPromptOptions

    @Option(help: "The most tokens to generate.")
    var maxNewTokens: Int = 16

    @Option(help: "Backend of every ternary layer (see 'ternary info').")
    var backend: String = "naive"

    @Option(help: ArgumentHelp(
        "Force the bitpacked kernel variant: amx, avx512vnni, avx2 or portable (needs --backend bitpacked; default: the best this CPU supports).",
        valueName: "name"))
    var variant: String?

    @Option(help: "Thread count.")
    var threads: Int = 1

    @Option(help: "Seed of the random weights and of sampling.")
    var seed: UInt64 = 42

    /// `--temperature`, `--top-k`, `--top-p`.
    @OptionGroup var sampling: SamplingOptions

    @Option(help: "LM head format: int8 (fast), int4 (fastest, least exact) or float32 (exact reference).")
    var lmHead: LMHeadFormat = .int8

    @Option(help: "Generate this many times with the same model and report the median speeds (min–max in the text).")
    var `repeat`: Int = 1

    @Flag(help: "Ignore EOS and generate exactly --max-new-tokens tokens.")
    var ignoreEos = false

    @Flag(help: "Measure the streaming read bandwidth and print the decode ceiling.")
    var bandwidth = false

    @Option(help: "Also compare the chosen LM head (int8 when float32 is chosen) with float32 on this many random tokens (0: skip).")
    var compareLmHead: Int = 0

    @Flag(help: "Also print the layer tree (backend, shape, bytes of every layer).")
    var describe = false

    @Flag(help: "Print one JSON object: {\"tokens\": [...], \"prefill_tokens_per_s\": x, \"decode_tokens_per_s\": y}; with several --tokens, {\"sequences\": [[...], ...], ...} with aggregate speeds.")
    var json = false

    /// Parses "1,2,3" into ids (whitespace allowed), rejecting anything else.
    static func parseTokens(_ text: String) throws -> [Int] {
        let parts = text.split(separator: ",", omittingEmptySubsequences: false).map { $0.trimmingCharacters(in: .whitespaces) }
        guard !parts.isEmpty, !text.trimmingCharacters(in: .whitespaces).isEmpty else {
            throw ValidationError("--tokens: empty token list")
        }
        return try parts.map { p in
            guard let v = Int(p), v >= 0 else { throw ValidationError("--tokens: '\(p)' is not a token id (a non-negative integer)") }
            return v
        }
    }

    func validate() throws {
        let config: BitNetConfig
        config = try validatedConfig()
        try text.validate(tokens: tokens.isEmpty ? nil : tokens.joined(separator: " "), model: model)
        if maxNewTokens < 1 { throw ValidationError("--max-new-tokens must be at least 1, got \(maxNewTokens)") }
        for list in tokens {
            let ids = try GenerateCommand.parseTokens(list)
            if let bad = ids.first(where: { $0 >= config.vocabSize }) {
                throw ValidationError("--tokens: id \(bad) is outside the vocabulary 0..<\(config.vocabSize)")
            }
            if try InputLimits.sum(ids.count, maxNewTokens, "prompt + --max-new-tokens") - 1 > config.cacheCapacity {
                throw ValidationError("prompt (\(ids.count)) + --max-new-tokens (\(maxNewTokens)) exceed the context \(config.cacheCapacity)")
            }
        }
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        do { _ = try BackendRegistry.backend(named: backend) } catch { throw ValidationError("--backend: \(error)") }
        _ = try bitPackedVariant()
        if compareLmHead < 0 || compareLmHead > config.cacheCapacity {
            throw ValidationError("--compare-lm-head must be in 0...\(config.cacheCapacity), got \(compareLmHead)")
        }
        try InputLimits.check("--repeat", `repeat`, 1...InputLimits.maximumGenerationRepeats)
        try InputLimits.checkThreads([threads])
        var sized = config
        let longest = try tokens.map { try GenerateCommand.parseTokens($0).count }.max() ?? 0
        sized.kvCacheCapacity = max(longest + maxNewTokens, compareLmHead)
        try InputLimits.checkModelFits(sized, "the model with its KV cache")
    }

    /// The `--variant` value, checked against this CPU and `--backend` (nil: not forced).
    func bitPackedVariant() throws -> BitPackedVariant? {
        guard let name = variant else { return nil }
        guard backend == BitPackedBackend().name else {
            throw ValidationError("--variant selects a bitpacked kernel variant; it needs --backend bitpacked (got '\(backend)')")
        }
        do { return try BitPackedVariant.named(name) } catch { throw ValidationError("--variant: \(error)") }
    }

    /// The `--backend`, with the `--variant` applied.
    func resolvedBackend() throws -> any LinearBackend {
        if let v = try bitPackedVariant() { return BitPackedBackend(variant: v) }
        return try BackendRegistry.backend(named: backend)
    }

    func run() throws {
        OpenBLASCore.reexecWithBestCoreIfNeeded()
        var config = try resolvedConfig()
        config.lmHeadFormat = lmHead
        let textSession = try text.session(model: model)
        let prompts = try textSession.map { [try promptIDs($0, config: config)] } ?? tokens.map(GenerateCommand.parseTokens)
        let prompt = prompts[0]
        // The cache only needs the positions this run uses.
        config.kvCacheCapacity = max(prompts.map(\.count).max()! + maxNewTokens, compareLmHead)
        let context = try ComputeContext(threads: threads)
        let t0 = MonotonicClock.seconds()
        let model = try buildModel(config: config, backend: resolvedBackend(), context: context)
        let buildSeconds = MonotonicClock.seconds() - t0
        // With --prompt the generated text goes to stdout and the report to stderr.
        let reportToStderr = textSession != nil && !json
        let report = { (line: String) in if reportToStderr { TextOutput.note(line) } else { print(line) } }
        if describe && !json { report(model.treeDescription()) }
        let parameters = sampling.parameters(
            maxNewTokens: maxNewTokens, seed: seed,
            stopTokens: ignoreEos ? [] : textSession?.stopTokens(model: model.stopTokens, vocabularySize: config.vocabSize))
        if prompts.count > 1 {
            try runBatch(model: model, prompts: prompts, parameters: parameters, buildSeconds: buildSeconds)
            return
        }
        // Bandwidth drifts on shared machines: measure it right before and right after the runs.
        let bandwidthBefore = bandwidth ? MemoryBandwidth.streamingRead(threads: threads) : nil
        var runs: [GenerationResult] = []
        for k in 0..<`repeat` {
            // The first run streams its text (stdout, not with --json); the others only time.
            var streamer = textSession.flatMap { k == 0 && !json ? TextStreamer(tokenizer: $0.tokenizer) : nil }
            runs.append(try model.generate(prompt: prompt, parameters: parameters) { _, token in
                streamer?.append(token)
                return true
            })
            if streamer != nil { streamer?.finish(); TextOutput.write("\n") }
        }
        let result = runs[0]
        let prefillSpeeds = runs.map(\.prefillTokensPerSecond).sorted()
        let decodeSpeeds = runs.map(\.decodeTokensPerSecond).filter { !$0.isNaN }.sorted()
        let prefillSpeed = median(of: prefillSpeeds), decodeSpeed = median(of: decodeSpeeds)
        let bandwidthAfter = bandwidth ? MemoryBandwidth.streamingRead(threads: threads) : nil
        let measured = bandwidthBefore.flatMap { b in bandwidthAfter.map { (b + $0) / 2 } }
        let bytes = model.weightBytesPerToken
        if json {
            try printJSON(JSONResult(tokens: result.tokens, prefillSpeed: prefillSpeed, decodeSpeed: decodeSpeed,
                                     bandwidth: measured, weightBytesPerToken: bytes,
                                     text: textSession.map { TextStreamer.fullText(result.tokens, tokenizer: $0.tokenizer) }))
        } else {
            report("tokens: \(result.tokens.map(String.init).joined(separator: ","))")
            let spread = { (v: [Double]) -> String in
                runs.count > 1 && !v.isEmpty ? String(format: " (median of %d runs, min %.2f, max %.2f)", v.count, v.first!, v.last!) : ""
            }
            report(String(format: "prefill: %d tokens, %.2f tokens/s", prompt.count, prefillSpeed) + spread(prefillSpeeds))
            report(String(format: "decode:  %d tokens, %.2f tokens/s", result.decodeSteps, decodeSpeed) + spread(decodeSpeeds)
                  + (result.stoppedAtStopToken ? " (stopped at EOS)" : ""))
            report(String(format: "model:   %@, backend %@, %d thread(s), LM head %@, %.2f GB of weights read per token, built in %.1f s",
                         sourceDescription, backend + (variant.map { " (variant \($0))" } ?? ""), threads, lmHead.rawValue,
                         Double(bytes) / 1e9, buildSeconds))
            if compareLmHead > 0 {
                var g = SeededGenerator(seed: seed ^ 0xC0FFEE)
                let ids = (0..<compareLmHead).map { _ in Int(g.next() % UInt64(config.vocabSize)) }
                let format = config.lmHeadFormat == .float32 ? LMHeadFormat.int8 : config.lmHeadFormat
                report("LM head \(try model.compareLMHeadFormats(tokens: ids, format: format))")
            }
            if let bw = measured {
                report(String(format: "bandwidth: %.1f GB/s streaming read (%d thread(s); %.1f before, %.1f after the runs) → decode ceiling %.1f tokens/s",
                             bw / 1e9, threads, bandwidthBefore! / 1e9, bandwidthAfter! / 1e9, bw / Double(bytes)))
            }
        }
    }
}

extension GenerateCommand {
    /// Several `--tokens`: every prompt prefilled alone, then decoded together by a
    /// `BatchGenerator` (one batched step per token for all unfinished sequences); speeds are
    /// aggregates (all prompt tokens ÷ all prefill time, all decoded tokens ÷ all decode time).
    func runBatch(model: BitNetModel, prompts: [[Int]], parameters: GenerationParameters, buildSeconds: Double) throws {
        let bandwidthBefore = bandwidth ? MemoryBandwidth.streamingRead(threads: threads) : nil
        var sequences: [[Int]] = []
        var prefillSpeeds: [Double] = [], decodeSpeeds: [Double] = [], steps = 0
        for _ in 0..<`repeat` {
            let batch = BatchGenerator(model: model)
            let ids = try prompts.enumerated().map { i, p in
                var q = parameters
                q.seed = parameters.seed &+ UInt64(i)
                return try batch.add(prompt: p, parameters: q)
            }
            let results = try batch.run()
            sequences = ids.map { results[$0]!.tokens }
            prefillSpeeds.append(batch.prefillTokensPerSecond)
            if batch.decodeSteps > 0 { decodeSpeeds.append(batch.decodeTokensPerSecond) }
            steps = batch.decodedTokens
        }
        prefillSpeeds.sort()
        decodeSpeeds.sort()
        let prefillSpeed = median(of: prefillSpeeds), decodeSpeed = median(of: decodeSpeeds)
        let bandwidthAfter = bandwidth ? MemoryBandwidth.streamingRead(threads: threads) : nil
        let measured = bandwidthBefore.flatMap { b in bandwidthAfter.map { (b + $0) / 2 } }
        let bytes = model.weightBytesPerToken
        if json {
            try printJSON(JSONResult(sequences: sequences, prefillSpeed: prefillSpeed, decodeSpeed: decodeSpeed,
                                          bandwidth: measured, weightBytesPerToken: bytes))
            return
        }
        for (i, s) in sequences.enumerated() { print("sequence \(i): \(s.map(String.init).joined(separator: ","))") }
        let spread = { (v: [Double]) -> String in
            v.count > 1 ? String(format: " (median of %d runs, min %.2f, max %.2f)", v.count, v.first!, v.last!) : ""
        }
        print(String(format: "prefill: %d sequences, %d tokens, %.2f tokens/s", prompts.count, prompts.reduce(0) { $0 + $1.count },
                     prefillSpeed) + spread(prefillSpeeds))
        print(String(format: "decode:  %d tokens in batches of up to %d, %.2f tokens/s aggregate", steps, prompts.count, decodeSpeed)
              + spread(decodeSpeeds))
        print(String(format: "model:   %@, backend %@, %d thread(s), LM head %@, %.2f GB of weights read per step, built in %.1f s",
                     sourceDescription, backend, threads, lmHead.rawValue, Double(bytes) / 1e9, buildSeconds))
        if let bw = measured {
            print(String(format: "bandwidth: %.1f GB/s streaming read (%d thread(s); %.1f before, %.1f after the runs) → one-sequence decode ceiling %.1f tokens/s",
                         bw / 1e9, threads, bandwidthBefore! / 1e9, bandwidthAfter! / 1e9, bw / Double(bytes)))
        }
    }

    /// The `--json` object: `tokens` for one prompt, `sequences` for several `--tokens`; the
    /// bandwidth fields only with `--bandwidth`.
    struct JSONResult: Encodable {
        var tokens: [Int]? = nil
        var sequences: [[Int]]? = nil
        var prefillSpeed: Double
        var decodeSpeed: Double
        /// Bytes per second, when measured.
        var bandwidth: Double?
        var weightBytesPerToken: Int
        /// The generated text, with --prompt (after every other field).
        var text: String? = nil

        enum CodingKeys: String, CodingKey {
            case tokens, sequences, prefillSpeed = "prefill_tokens_per_s", decodeSpeed = "decode_tokens_per_s"
            case bandwidth = "bandwidth_gb_per_s", weightBytesPerToken = "weight_bytes_per_token"
            case ceiling = "decode_ceiling_tokens_per_s"
            case text
        }

        /// Speeds rounded to 6 significant digits (null when not finite).
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encodeIfPresent(tokens, forKey: .tokens)
            try c.encodeIfPresent(sequences, forKey: .sequences)
            try c.encode(sixDigits(prefillSpeed), forKey: .prefillSpeed)
            try c.encode(sixDigits(decodeSpeed), forKey: .decodeSpeed)
            if let bw = bandwidth {
                try c.encode(sixDigits(bw / 1e9), forKey: .bandwidth)
                try c.encode(weightBytesPerToken, forKey: .weightBytesPerToken)
                try c.encode(sixDigits(bw / Double(weightBytesPerToken)), forKey: .ceiling)
            }
            try c.encodeIfPresent(text, forKey: .text)
        }
    }
}

/// `--lm-head` of `generate` and `logits`: every LM head format. (No `@retroactive`: the type
/// comes from this package, which Swift does not count as retroactive.)
extension LMHeadFormat: ExpressibleByArgument {}
