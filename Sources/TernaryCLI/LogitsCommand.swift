import ArgumentParser
import Backends
import Foundation
import BitNet
import Layers
import TensorCore

/// `ternary logits`: the logits a Hugging Face BitNet checkpoint gives for a token sequence, for
/// comparing TernaryKit with another implementation position by position.
struct LogitsCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logits",
        abstract: "Print the logits of a BitNet checkpoint for a token sequence (one row per position).",
        discussion: """
            --model is a Hugging Face BitNet b1.58 checkpoint directory (config.json and \
            model.safetensors, or a sharded model.safetensors.index.json). The tokens run as one \
            causal batch from position 0. With --json the output is {"tokens": [...], "logits": \
            [[...], ...]} with vocab_size Float32 values per input position (shortest \
            round-trip decimal; null for a non-finite value); without it, the top 5 per position.
            """
    )

    @Option(help: "Checkpoint directory (config.json + model.safetensors).")
    var model: String

    @Option(help: "Comma-separated token ids, e.g. 1,2,3.")
    var tokens: String

    @Option(help: "Backend of every ternary layer (see 'ternary info').")
    var backend: String = "naive"

    @Option(help: "Thread count.")
    var threads: Int = 1

    @Option(help: "LM head format: float32 (exact reference), int8 or int4.")
    var lmHead: LMHeadFormat = .float32

    @Option(help: "Without --json: how many of the largest logits to show per position.")
    var top: Int = 5

    @Flag(help: "Print one JSON object {\"tokens\": [...], \"logits\": [[...], ...]}.")
    var json = false

    func validate() throws {
        _ = try GenerateCommand.parseTokens(tokens)
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if top < 1 { throw ValidationError("--top must be at least 1, got \(top)") }
        try InputLimits.checkThreads([threads])
        do { _ = try BackendRegistry.backend(named: backend) } catch { throw ValidationError("--backend: \(error)") }
    }

    func run() throws {
        OpenBLASCore.reexecWithBestCoreIfNeeded()
        let ids = try GenerateCommand.parseTokens(tokens)
        var loadSeconds = 0.0
        let t0 = MonotonicClock.seconds()
        let logits = try LogitsCommand.compute(model: model, tokens: ids, backend: backend, threads: threads,
                                               lmHead: lmHead, loadSeconds: &loadSeconds)
        let total = MonotonicClock.seconds() - t0
        if json {
            try printJSON(JSONResult(tokens: ids, logits: logits))
        } else {
            print(LogitsCommand.summary(tokens: ids, logits: logits, top: top), terminator: "")
            print(String(format: "model: %@, backend %@, %d thread(s), LM head %@; loaded in %.2f s, forward pass %.2f s",
                         model, backend, threads, lmHead.rawValue, loadSeconds, total - loadSeconds))
        }
    }

    /// Loads the checkpoint and returns one row of logits per token.
    /// - Throws: the loader's errors; `.invalidArgument` for ids outside the vocabulary.
    static func compute(model directory: String, tokens: [Int], backend: String, threads: Int,
                        lmHead: LMHeadFormat = .float32) throws -> [[Float]] {
        var seconds = 0.0
        return try compute(model: directory, tokens: tokens, backend: backend, threads: threads, lmHead: lmHead, loadSeconds: &seconds)
    }

    /// `compute`, also reporting the seconds spent loading the checkpoint (config, validation,
    /// unpacking, kernel preparation).
    static func compute(model directory: String, tokens: [Int], backend: String, threads: Int,
                        lmHead: LMHeadFormat, loadSeconds: inout Double) throws -> [[Float]] {
        let config = try BitNetConfig.read(directory: directory)
        if let bad = tokens.first(where: { $0 >= config.vocabSize }) {
            throw TernaryKitError.invalidArgument("--tokens: id \(bad) is outside the vocabulary 0..<\(config.vocabSize) of \(directory)")
        }
        if tokens.count > config.maxPositionEmbeddings {
            throw TernaryKitError.invalidArgument("\(tokens.count) tokens exceed max_position_embeddings \(config.maxPositionEmbeddings)")
        }
        let start = MonotonicClock.seconds()
        let model = try BitNetModel.load(checkpoint: directory, backend: BackendRegistry.backend(named: backend),
                                         context: ComputeContext(threads: threads), lmHeadFormat: lmHead,
                                         kvCacheCapacity: tokens.count)
        loadSeconds = MonotonicClock.seconds() - start
        let flat = try model.forward(tokens, allLogits: true)
        let v = config.vocabSize
        return (0..<tokens.count).map { Array(flat[($0 * v)..<(($0 + 1) * v)]) }
    }

    /// The `--json` object, `{"tokens":[...],"logits":[[...],...]}` on one line: the input ids and
    /// one row of logits per position, each Float in its shortest round-trip text (null when not finite).
    struct JSONResult: Encodable {
        var tokens: [Int]
        var logits: [[Float]]
    }

    /// One line per position: the token, the `top` largest logits with their ids, and the range.
    static func summary(tokens: [Int], logits: [[Float]], top: Int) -> String {
        var out = ""
        for (t, row) in logits.enumerated() {
            let best = row.indices.sorted { row[$0] > row[$1] || (row[$0] == row[$1] && $0 < $1) }.prefix(top)
            let shown = best.map { String(format: "%d (%.4f)", $0, row[$0]) }.joined(separator: ", ")
            let finite = row.filter(\.isFinite)
            out += String(format: "position %d, token %d: top %d: %@; range [%.4f, %.4f]%@\n", t, tokens[t], best.count, shown,
                          finite.min() ?? .nan, finite.max() ?? .nan,
                          finite.count < row.count ? " (\(row.count - finite.count) non-finite)" : "")
        }
        return out
    }
}
