// Custom model: a language model of your own, composed from the public Layers blocks, that the
// library runs like its own (backends by path, parameter keys, generation with a KV cache).
//
//   swift run CustomModel                                   # hidden 64, 2 blocks, a 12-token prompt
//   swift run -c release CustomModel --hidden 512 --blocks 4 --tokens 64 --max-new-tokens 16
//   swift run CustomModel --help                            # the options
//
// The model: a small Llama-style decoder with a SwiGLU feed-forward written here,
//   tokens → embedding → [RMSNorm → grouped-query attention (+ residual) → RMSNorm → SwiGLU (+ residual)] × blocks
//          → RMSNorm → BitLinear head → next-token logits
// with random weights (no training: this is about plumbing, not text). It uses the public API
// only, so the file also builds in a package of your own that depends on TernaryKit.
import ArgumentParser
import Backends
import Foundation
import Layers
import TensorCore

// MARK: - 1. A block of our own: SwiGLU

// Every layer is a `Module` subclass that lists its `children` by key. Keys joined with "." form
// the paths `setBackend(_:where:)` matches and the parameter keys (`...mlp.up_proj.weight`).
// Conforming to `FeedForwardBlock` lets the library's `DecoderBlock` hold it.

/// Llama's feed-forward: `down_proj(silu(gate_proj(x)) ⊙ up_proj(x))`, three ternary projections.
final class SwiGLU: Module, FeedForwardBlock {
    let gateProj, upProj, downProj: BitLinear
    let workspace: Workspace

    /// Projections of the right shapes, holding zeros until weights are set.
    init(hidden: Int, intermediate: Int, workspace: Workspace) throws {
        gateProj = try BitLinear(outFeatures: intermediate, inFeatures: hidden, workspace: workspace)
        upProj = try BitLinear(outFeatures: intermediate, inFeatures: hidden, workspace: workspace)
        downProj = try BitLinear(outFeatures: hidden, inFeatures: intermediate, workspace: workspace)
        self.workspace = workspace
    }

    override var children: [(key: String, module: Module)] {
        [("gate_proj", gateProj), ("up_proj", upProj), ("down_proj", downProj)]
    }
    override var summary: String { "SwiGLU \(gateProj.inFeatures)→\(gateProj.outFeatures)→\(downProj.outFeatures)" }

    /// `rows × hidden` → `rows × hidden`. The two intermediate buffers come from the model's shared
    /// workspace (the `.gate` and `.up` slots), so a decode step allocates nothing.
    func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, into y: UnsafeMutableBufferPointer<Float>) throws {
        let n = rows * gateProj.outFeatures
        let gate = workspace.floats(.gate, count: n), up = workspace.floats(.up, count: n)
        try gateProj(x, rows: rows, into: gate)
        try upProj(x, rows: rows, into: up)
        for i in 0..<n { gate[i] = gate[i] / (1 + expf(-gate[i])) * up[i] }   // silu(g) · u
        try downProj(UnsafeBufferPointer(gate), rows: rows, into: y)
    }
}

// MARK: - 2. The model: library blocks + ours, conforming to CausalLanguageModel

/// The root of the tree, with Hugging Face Llama keys (`model.layers.0.self_attn.q_proj`, ...).
/// `CausalLanguageModel` asks for two things, a cache and logits; generation comes with it.
final class TinyLlama: Module, CausalLanguageModel {
    let embedding: Embedding
    let blocks: [DecoderBlock]
    let norm: RMSNorm
    let head: BitLinear
    let workspace = Workspace()   // scratch shared by every layer (one forward pass at a time)
    let vocabularySize: Int, maximumSequenceLength: Int
    var stopTokens: Set<Int> { [] }   // random weights: no end-of-sequence token

    init(vocabulary: Int, hidden: Int, blocks count: Int, heads: Int, kvHeads: Int, maxPositions: Int) throws {
        vocabularySize = vocabulary
        maximumSequenceLength = maxPositions
        // One rotary table, shared by every attention layer.
        let rotary = try RotaryEmbedding(headDimension: hidden / heads, theta: 10_000, maxPositions: maxPositions)
        embedding = try Embedding(vocabularySize: vocabulary, dimensions: hidden)
        let ws = workspace
        blocks = try (0..<count).map { _ in
            try DecoderBlock(
                inputNorm: RMSNorm(dimensions: hidden, epsilon: 1e-5),
                // The library's attention (Q/K/V/O BitLinears, rotary, KV cache); no sub-norm, as in Llama.
                attention: GroupedQueryAttention(hiddenSize: hidden, heads: heads, kvHeads: kvHeads, rotary: rotary, workspace: ws),
                postAttentionNorm: RMSNorm(dimensions: hidden, epsilon: 1e-5),
                feedForward: SwiGLU(hidden: hidden, intermediate: 4 * hidden, workspace: ws),
                workspace: ws)
        }
        norm = try RMSNorm(dimensions: hidden, epsilon: 1e-5)
        head = try BitLinear(outFeatures: vocabulary, inFeatures: hidden, workspace: ws)
    }

    override var children: [(key: String, module: Module)] {
        [("model.embed_tokens", embedding)] + blocks.enumerated().map { ("model.layers.\($0.offset)", $0.element) }
            + [("model.norm", norm), ("lm_head", head)]
    }
    override var summary: String { "TinyLlama vocab=\(vocabularySize) blocks=\(blocks.count)" }

    /// One KV cache per attention layer, shaped by the layer itself.
    func makeCache(capacity: Int) throws -> ModelCache {
        guard (1...maximumSequenceLength).contains(capacity) else {
            throw TernaryKitError.invalidArgument("cache capacity \(capacity) outside 1...\(maximumSequenceLength)")
        }
        return ModelCache(layers: try blocks.map { try $0.attention.makeCache(capacity: capacity) })
    }

    /// embedding → blocks (each appends to its cache) → norm → head, for the last token or all.
    func logits(for tokens: [Int], cache: ModelCache, allPositions: Bool) throws -> [Float] {
        try cache.validate(tokens, vocabularySize: vocabularySize)
        let n = tokens.count, h = norm.dimensions
        let x = workspace.floats(.residual, count: n * h)
        embedding.lookup(tokens, into: x)
        for (block, layerCache) in zip(blocks, cache.layers) { try block(x, rows: n, cache: layerCache) }
        norm(UnsafeBufferPointer(x), rows: n, into: x)
        let first = allPositions ? 0 : n - 1
        var logits = [Float](repeating: 0, count: (n - first) * vocabularySize)
        try logits.withUnsafeMutableBufferPointer {
            try head(UnsafeBufferPointer(rebasing: x[(first * h)...]), rows: n - first, into: $0)
        }
        return logits
    }
}

// MARK: - 3. The command: build, fill, mix backends, check, generate

struct CustomModel: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "CustomModel", abstract: "A Llama-style model of our own from the public blocks: backends by path, generation.")

    @Option(help: "The model width (a multiple of 8: 4 heads of an even width).") var hidden = 64
    @Option(help: "Decoder blocks.") var blocks = 2
    @Option(help: "Prompt length (1 to 256).") var tokens = 12
    @Option(help: "Tokens to generate per call (1 to 64).") var maxNewTokens = 8

    func validate() throws {
        for (name, value, max) in [("hidden", hidden, 1 << 20), ("blocks", blocks, 1 << 20), ("tokens", tokens, 256),
                                   ("max-new-tokens", maxNewTokens, 64)] where !(1...max).contains(value) {
            throw ValidationError("--\(name) \(value) is not an integer from 1 to \(max)")
        }
        guard hidden % 8 == 0 else { throw ValidationError("--hidden \(hidden) is not a multiple of 8 (4 heads of an even width)") }
    }

    /// `--help` prints the usage (exit 0); a bad argument, or an error thrown by `run()`, ends in
    /// one `error: ...` line on stderr and exit status 1.
    static func main() {
        do { var command = try parseAsRoot(); try command.run() } catch {
            if exitCode(for: error) == .success { print(fullMessage(for: error)); Foundation.exit(0) }
            FileHandle.standardError.write(Data("error: \(message(for: error))\n".utf8)); Foundation.exit(1)
        }
    }

    func run() throws {
        let model = try TinyLlama(vocabulary: 100, hidden: hidden, blocks: blocks, heads: 4, kvHeads: 2, maxPositions: 512)

        // Random weights through the key walk: `namedParameterSpecs()` lists every tensor the tree
        // declares (the same keys a checkpoint loader reads), `setParameter(key:_:)` sets it.
        var rng = SeededGenerator(seed: 7)
        let specs = model.namedParameterSpecs()
        for (key, spec) in specs {
            switch spec {
            case .ternary(let out, let inn):   // BitLinear: Gaussian floats, ternarized by BitNet's absmean rule
                try model.setParameter(key: key, .ternary(TernaryMatrix(absmean: rng.gaussians(count: out * inn), outFeatures: out, inFeatures: inn)))
            case .floats(let shape) where shape.count == 1:   // norm gains near 1
                try model.setParameter(key: key, .floats(rng.floats(count: shape[0], magnitude: 0.1).map { 1 + $0 }))
            case .floats(let shape):   // the embedding table
                try model.setParameter(key: key, .floats(rng.gaussians(count: shape.reduce(1, *))))
            }
        }
        print("\(specs.count) parameters, e.g.")
        for (key, spec) in specs where !key.hasPrefix("model.layers.") || key.hasPrefix("model.layers.0.") {
            print("  " + key.padding(toLength: 48, withPad: " ", startingAt: 0) + "\(spec)")
        }
        if blocks > 1 { print("  … and the same for model.layers.\(blocks == 2 ? "1" : "1 … \(blocks - 1)")") }

        // The reference: every BitLinear on the naive backend (plain Int8 loops).
        let prompt = (0..<tokens).map { _ in Int(rng.next() % 100) }
        func allLogits() throws -> [Float] {
            try model.logits(for: prompt, cache: model.makeCache(capacity: prompt.count), allPositions: true)
        }
        try model.setBackend(NaiveBackend())
        let reference = try allLogits()

        // Backends by path: the predicate sees each BitLinear's full path (and the layer).
        try model.setBackend(BitPackedBackend(), where: { path, _ in path.contains(".self_attn.") })
        try model.setBackend(RSRBackend.rsrPlusPlus, where: { path, _ in path.hasSuffix("mlp.down_proj") })
        try model.setBackend(RSRBackend.rsr, where: { path, _ in path.hasSuffix("mlp.gate_proj") || path.hasSuffix("mlp.up_proj") })
        try model.setBackend(BLASBackend(), where: { path, _ in path == "lm_head" })
        print("\n" + model.treeDescription())

        // Same logits whatever the backends: every product is an exact integer product, and the
        // Float work around it does not depend on the backend.
        func identical(_ a: [Float], _ b: [Float]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern } }
        var results = [("mixed (tree above)", identical(try allLogits(), reference))]
        for backend in BackendRegistry.all {
            try model.setBackend(backend)
            results.append(("all \(backend.name)", identical(try allLogits(), reference)))
        }
        print("\nlogits of \(prompt.count) tokens × \(model.vocabularySize) vs all-naive")
        for (name, same) in results { print("  " + name.padding(toLength: 22, withPad: " ", startingAt: 0) + (same ? "bit-identical" : "DIFFERENT")) }
        guard results.allSatisfy(\.1) else { print("FAILED: a backend changed the logits"); Foundation.exit(1) }

        // Generation comes with CausalLanguageModel: prefill the prompt as one batch, then decode
        // one token at a time with the KV cache. Greedy (temperature 0) is deterministic.
        let greedy = GenerationParameters(maxNewTokens: maxNewTokens, temperature: 0)
        print("\nprompt:  \(prompt)")
        print("greedy:  \(try model.generate(prompt: prompt, parameters: greedy).tokens)")

        // A session keeps the cache between calls: turn 2 runs only its own tokens, and continues
        // exactly where a re-run of the whole conversation would.
        let session = try GenerationSession(model: model, capacity: 2 * maxNewTokens + prompt.count + 3)
        try session.append(prompt)
        let turn1 = try session.generate(parameters: greedy).tokens
        let user = [1, 2, 3]
        try session.append(user)
        let turn2 = try session.generate(parameters: greedy).tokens
        let rerun = try model.generate(prompt: prompt + turn1 + user, parameters: greedy).tokens
        print("session: turn 1 \(turn1)")
        print("         turn 2 after \(user): \(turn2) (cache holds \(session.length) positions)")
        print("         turn 2 re-run from scratch: \(rerun == turn2 ? "the same tokens" : "DIFFERENT: \(rerun)")")
        guard rerun == turn2 else { Foundation.exit(1) }
    }
}

CustomModel.main()
