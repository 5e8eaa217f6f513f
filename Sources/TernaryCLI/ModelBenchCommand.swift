import ArgumentParser
import Backends
import Foundation
import BitNet
import Layers
import TensorCore

/// `ternary bench model`: end-to-end prefill and decode tokens/s of a random-weight BitNet
/// b1.58 model on each backend, next to the memory-bandwidth ceiling of the formats used.
struct ModelBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "model",
        abstract: "Prefill and decode tokens/s of a random-weight BitNet model per backend and thread count.",
        discussion: """
            One model is built with the preset's shapes and random weights (nothing is \
            downloaded); for each backend every ternary layer is re-prepared (setBackend), then \
            for each thread count a prompt of --prompt-tokens random ids is prefilled as one batch \
            and --new-tokens tokens are decoded with the KV cache (EOS ignored). The machine's \
            streaming read bandwidth is measured in the same run; the ceiling is that bandwidth \
            divided by the bytes of weights read per decoded token (ternary layers in the \
            backend's format plus the LM head).
            """
    )

    @Option(help: "Model shapes: 2b4t (BitNet b1.58 2B4T; also bitnet-b1.58-2b-4t) or tiny.")
    var preset: PresetName = .tiny

    @Option(help: "Comma-separated backend names (default: all registered).")
    var backends: String?

    @Option(name: .customLong("threads"), help: "Thread count (repeatable; default 1).")
    var threadCounts: [Int] = []

    @Option(help: ArgumentHelp(
        "Force the bitpacked kernel variant: amx, avx512vnni, avx2 or portable (default: the best this CPU supports; other backends unaffected).",
        valueName: "name"))
    var variant: String?

    @Option(name: .customLong("sequences"),
            help: "Sequences decoded together, each with its own random prompt (repeatable; adds a \"sequences\" field and column; decode tokens/s is then the aggregate).")
    var sequenceCounts: [Int] = []

    @Option(help: "Prompt length (prefill batch).")
    var promptTokens: Int = 128

    @Option(help: "Tokens decoded after the prompt.")
    var newTokens: Int = 32

    @Option(help: "Runs per (backend, threads); the median speeds are reported.")
    var `repeat`: Int = 1

    @Option(help: "LM head format: int8 (fast) or float32 (exact reference).")
    var lmHead: LMHeadChoice = .int8

    @Option(help: "Seed of the random weights and prompt.")
    var seed: UInt64 = 42

    @Flag(help: "Print one JSON object per (backend, threads).")
    var json = false

    @Option(help: "Write an SVG chart of tokens/s per backend into this directory.")
    var plot: String?

    @Flag(help: "No progress line on stderr.")
    var quiet = false

    func validate() throws {
        let config: BitNetConfig
        do { config = try BitNetConfig.preset(named: preset.rawValue) } catch { throw ValidationError("--preset: \(error)") }
        if let t = threadCounts.first(where: { $0 < 1 }) { throw ValidationError("--threads must be at least 1, got \(t)") }
        if promptTokens < 1 { throw ValidationError("--prompt-tokens must be at least 1, got \(promptTokens)") }
        if newTokens < 1 { throw ValidationError("--new-tokens must be at least 1, got \(newTokens)") }
        let total = try InputLimits.sum(promptTokens, newTokens, "--prompt-tokens + --new-tokens")
        if total > config.cacheCapacity {
            throw ValidationError("--prompt-tokens + --new-tokens (\(total)) exceed the context \(config.cacheCapacity)")
        }
        try InputLimits.check("--repeat", `repeat`, 1...InputLimits.maximumGenerationRepeats)
        try InputLimits.checkThreads(threadCounts)
        if let n = sequenceCounts.first(where: { $0 < 1 || $0 > 1024 }) {
            throw ValidationError("--sequences must be in 1...1024, got \(n)")
        }
        if let list = backends {
            do { _ = try BackendRegistry.backends(list: list) } catch { throw ValidationError("--backends: \(error)") }
        }
        _ = try bitPackedVariant()
    }

    /// The `--variant` value, checked against this CPU (nil: not forced).
    func bitPackedVariant() throws -> BitPackedVariant? {
        do { return try variant.map(BitPackedVariant.named) } catch { throw ValidationError("--variant: \(error)") }
    }

    /// `--lm-head`: the formats this benchmark offers (not int4).
    enum LMHeadChoice: String, CaseIterable, ExpressibleByArgument {
        case int8, float32
        var format: LMHeadFormat { self == .int8 ? .int8 : .float32 }
    }

    struct Row: Encodable {
        var backend: String
        var threads: Int
        /// Sequences decoded together (only with `--sequences`).
        var sequences: Int? = nil
        var prefill: Double
        var decode: Double
        var bandwidth: Double
        var bytesPerToken: Int
        /// The bitpacked kernel variant the model ran (nil for other backends).
        var variant: String? = nil
        var ceiling: Double { bandwidth / Double(bytesPerToken) }

        var jsonLine: String { get throws { try JSONOutput.line(self) } }

        enum CodingKeys: String, CodingKey {
            case backend, threads, sequences, prefill = "prefill_tokens_per_s", decode = "decode_tokens_per_s"
            case ceiling = "ceiling_tokens_per_s", bandwidth = "bandwidth_gb_per_s", bytesPerToken = "weight_bytes_per_token"
            case variant
        }

        /// Speeds rounded to 6 significant digits (null when not finite), the bandwidth in GB/s.
        func encode(to encoder: any Encoder) throws {
            var c = encoder.container(keyedBy: CodingKeys.self)
            try c.encode(backend, forKey: .backend)
            try c.encode(threads, forKey: .threads)
            try c.encodeIfPresent(sequences, forKey: .sequences)
            try c.encode(sixDigits(prefill), forKey: .prefill)
            try c.encode(sixDigits(decode), forKey: .decode)
            try c.encode(sixDigits(ceiling), forKey: .ceiling)
            try c.encode(sixDigits(bandwidth / 1e9), forKey: .bandwidth)
            try c.encode(bytesPerToken, forKey: .bytesPerToken)
            try c.encode(variant, forKey: .variant)
        }
    }

    func run() throws {
        OpenBLASCore.reexecWithBestCoreIfNeeded()
        let forced = try bitPackedVariant()
        let backendList = (try backends.map(BackendRegistry.backends(list:)) ?? BackendRegistry.all).map { b -> any LinearBackend in
            b is BitPackedBackend && forced != nil ? BitPackedBackend(variant: forced) : b
        }
        let threadList = threadCounts.isEmpty ? [1] : threadCounts
        var config = try BitNetConfig.preset(named: preset.rawValue)
        config.lmHeadFormat = lmHead.format
        config.kvCacheCapacity = promptTokens + newTokens

        let sequenceList: [Int?] = sequenceCounts.isEmpty ? [nil] : sequenceCounts
        var progress = Progress(total: backendList.count * threadList.count * sequenceList.count + 1, quiet: quiet)
        progress.step("building the \(preset.rawValue) model and measuring bandwidth")
        let model = try BitNetModel.random(config: config, seed: seed, backend: backendList[0], context: .singleThreaded)
        var bandwidth: [Int: Double] = [:]
        for t in threadList { bandwidth[t] = MemoryBandwidth.streamingRead(threads: t) }
        var rng = SeededGenerator(seed: seed &+ 1)
        let prompt = (0..<promptTokens).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
        // Further sequences get prompts of their own (the first one is `prompt`).
        let morePrompts = (1..<max(1, sequenceCounts.max() ?? 1)).map { _ in
            (0..<promptTokens).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
        }
        let parameters = GenerationParameters(maxNewTokens: newTokens + 1, seed: seed, stopTokens: [])

        var rows: [Row] = []
        for backend in backendList {
            try model.setBackend(backend)
            for threads in threadList {
                try model.setContext(ComputeContext(threads: threads))
                for sequences in sequenceList {
                    progress.step("\(backend.name), \(threads) thread(s)" + (sequences.map { ", \($0) sequence(s)" } ?? ""))
                    var prefill: [Double] = [], decode: [Double] = []
                    for _ in 0..<`repeat` {
                        if let n = sequences, n > 1 {
                            // All sequences decoded together; aggregate speeds.
                            let batch = BatchGenerator(model: model)
                            for p in [prompt] + morePrompts.prefix(n - 1) { try batch.add(prompt: p, parameters: parameters) }
                            try batch.run()
                            prefill.append(batch.prefillTokensPerSecond)
                            decode.append(batch.decodeTokensPerSecond)
                        } else {
                            let r = try model.generate(prompt: prompt, parameters: parameters)
                            prefill.append(r.prefillTokensPerSecond)
                            decode.append(r.decodeTokensPerSecond)
                        }
                    }
                    let row = Row(backend: backend.name, threads: threads, sequences: sequences, prefill: median(of: prefill),
                                  decode: median(of: decode), bandwidth: bandwidth[threads]!, bytesPerToken: model.weightBytesPerToken,
                                  variant: (backend as? BitPackedBackend).map { ($0.variant ?? .best).rawValue })
                    rows.append(row)
                    if json {
                        progress.finish()
                        try printJSON(row)
                        fflush(nil)
                    }
                }
            }
        }
        progress.finish()
        if !json { print(render(rows, config: config)) }
        if let dir = plot {
            let series = threadList.map { t in
                ("\(t) thread(s) decode", backendList.map { b in rows.first { $0.backend == b.name && $0.threads == t }?.decode ?? .nan })
            } + threadList.map { t in
                ("\(t) thread(s) prefill", backendList.map { b in rows.first { $0.backend == b.name && $0.threads == t }?.prefill ?? .nan })
            }
            let chart = SVGChart.Bars(title: "BitNet \(preset.rawValue): tokens per second", yLabel: "tokens per second",
                                      categories: backendList.map(\.name), series: series)
            try BenchPlots.writeFiles([("model-\(preset.rawValue)-tokens-per-s.svg", SVGChart.render(chart))], to: dir)
        }
    }


    func render(_ rows: [Row], config: BitNetConfig) -> String {
        var lines = [
            "BitNet \(preset.rawValue) (random weights), prompt \(promptTokens) tokens, \(newTokens) decoded, LM head \(lmHead.rawValue)"
                + (rows.compactMap(\.variant).first.map { ", bitpacked variant \($0)" } ?? ""),
            "backend    thr" + (sequenceCounts.isEmpty ? "" : "  seqs")
                + "  prefill tok/s  decode tok/s  MB/token  bandwidth GB/s  ceiling tok/s  decode/ceiling",
        ]
        for r in rows {
            let seqs = r.sequences.map { String(format: "  %4d", $0) } ?? ""
            lines.append(String(format: "%@ %3d%@  %13.2f  %12.2f  %8.1f  %14.1f  %13.2f  %13.0f%%",
                                r.backend.padding(toLength: 10, withPad: " ", startingAt: 0), r.threads, seqs, r.prefill, r.decode,
                                Double(r.bytesPerToken) / 1e6, r.bandwidth / 1e9, r.ceiling, 100 * r.decode / r.ceiling))
        }
        if !sequenceCounts.isEmpty {
            lines.append("With several sequences, decode tok/s is the aggregate of all of them; MB/token and the ceiling are per step (one sequence).")
        }
        lines.append("OpenBLAS core: \(OpenBLASInfo.coreName)")
        return lines.joined(separator: "\n")
    }
}
