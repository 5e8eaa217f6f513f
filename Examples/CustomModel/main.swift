// Custom model: build your own network from the Layers building blocks, give different layers
// different backends by path, and check that the backend choice never changes the outputs.
//
//   swift run CustomModel                                  # hidden 64, 2 blocks, 12 tokens
//   swift run -c release CustomModel --hidden 512 --blocks 4 --tokens 64
//   swift run CustomModel --help                           # the options
//
// The network: a tiny sequence classifier, a 2-block pre-norm transformer
//   tokens → embedding → [RMSNorm → self-attention (+ residual) → RMSNorm → relu² MLP (+ residual)] × blocks
//          → RMSNorm → mean over tokens → BitLinear head → class logits
// with random weights (no training: this is about plumbing, not accuracy).
import Backends
import Foundation
import Layers
import TensorCore

// MARK: - 1. Layers of our own, composed from BitLinear, RMSNorm and the attention core

// Every layer is a `Module` subclass that lists its `children` by key. The keys joined with "."
// form the paths `setBackend(_:where:)` matches and `treeDescription()` prints.

/// Causal multi-head self-attention: ternary Q/K/V/O projections (`BitLinear`), rotary positions
/// (`RotaryEmbedding`) and the library's attention core (`GroupedQueryAttention.attend`).
final class SelfAttention: Module {
    let qProj, kProj, vProj, oProj: BitLinear
    let heads: Int, headDimension: Int
    let rotary: RotaryEmbedding

    init(hidden: Int, heads: Int, maxTokens: Int, rng: inout SeededGenerator) throws {
        func projection() throws -> BitLinear {
            // Float weights, ternarized by BitNet's absmean rule inside BitLinear.
            try BitLinear(floatWeights: rng.gaussians(count: hidden * hidden), outFeatures: hidden, inFeatures: hidden)
        }
        qProj = try projection(); kProj = try projection(); vProj = try projection(); oProj = try projection()
        self.heads = heads
        headDimension = hidden / heads
        rotary = try RotaryEmbedding(headDimension: headDimension, theta: 10_000, maxPositions: maxTokens)
    }

    override var children: [(key: String, module: Module)] {
        [("q_proj", qProj), ("k_proj", kProj), ("v_proj", vProj), ("o_proj", oProj)]
    }
    override var summary: String { "SelfAttention heads=\(heads) headDim=\(headDimension)" }

    /// `x`: `tokens × hidden` → `tokens × hidden`.
    func callAsFunction(_ x: [Float], tokens: Int) throws -> [Float] {
        var q = try qProj(x), k = try kProj(x)
        let v = try vProj(x)
        let d = headDimension, hidden = heads * d
        // Rotate queries and keys by their position.
        for t in 0..<tokens {
            q.withUnsafeMutableBufferPointer { rotary.apply($0.baseAddress! + t * hidden, heads: heads, position: t) }
            k.withUnsafeMutableBufferPointer { rotary.apply($0.baseAddress! + t * hidden, heads: heads, position: t) }
        }
        // The attention core reads keys and values head-major: [head][token][d].
        var keys = [Float](repeating: 0, count: tokens * hidden), values = keys
        for t in 0..<tokens {
            for h in 0..<heads {
                for i in 0..<d {
                    keys[(h * tokens + t) * d + i] = k[t * hidden + h * d + i]
                    values[(h * tokens + t) * d + i] = v[t * hidden + h * d + i]
                }
            }
        }
        var mixed = [Float](repeating: 0, count: tokens * hidden)
        mixed.withUnsafeMutableBufferPointer { out in
            GroupedQueryAttention.attend(queries: q, count: tokens, heads: heads, kvHeads: heads, headDimension: d,
                                         keys: keys, values: values, keyStride: tokens, startPosition: 0,
                                         threads: 1, into: out.baseAddress!)
        }
        return try oProj(mixed)
    }
}

/// A relu² MLP: `down(relu(up(x))²)`, BitNet's activation without the gate.
final class MLP: Module {
    let upProj, downProj: BitLinear

    init(hidden: Int, inner: Int, rng: inout SeededGenerator) throws {
        upProj = try BitLinear(floatWeights: rng.gaussians(count: inner * hidden), outFeatures: inner, inFeatures: hidden)
        downProj = try BitLinear(floatWeights: rng.gaussians(count: hidden * inner), outFeatures: hidden, inFeatures: inner)
    }
    override var children: [(key: String, module: Module)] { [("up_proj", upProj), ("down_proj", downProj)] }
    override var summary: String { "MLP relu² \(upProj.inFeatures)→\(upProj.outFeatures)→\(downProj.outFeatures)" }

    func callAsFunction(_ x: [Float]) throws -> [Float] {
        try downProj(try upProj(x).map { max($0, 0) * max($0, 0) })
    }
}

/// One pre-norm transformer block with residual connections.
final class Block: Module {
    let attentionNorm, mlpNorm: RMSNorm
    let attention: SelfAttention
    let mlp: MLP

    init(hidden: Int, heads: Int, maxTokens: Int, rng: inout SeededGenerator) throws {
        attentionNorm = try RMSNorm(dimensions: hidden, epsilon: 1e-5)
        attention = try SelfAttention(hidden: hidden, heads: heads, maxTokens: maxTokens, rng: &rng)
        mlpNorm = try RMSNorm(dimensions: hidden, epsilon: 1e-5)
        mlp = try MLP(hidden: hidden, inner: 4 * hidden, rng: &rng)
    }
    override var children: [(key: String, module: Module)] {
        [("attn_norm", attentionNorm), ("attn", attention), ("mlp_norm", mlpNorm), ("mlp", mlp)]
    }

    func callAsFunction(_ x: [Float], tokens: Int) throws -> [Float] {
        let h = zip(x, try attention(attentionNorm(x), tokens: tokens)).map(+)
        return zip(h, try mlp(mlpNorm(h))).map(+)
    }
}

/// The classifier: the root of the tree.
final class SequenceClassifier: Module {
    let embedding: Embedding
    let blocks: [Block]
    let norm: RMSNorm
    let head: BitLinear
    let hidden: Int

    init(vocabulary: Int, hidden: Int, heads: Int, blocks count: Int, classes: Int, maxTokens: Int, seed: UInt64) throws {
        var rng = SeededGenerator(seed: seed)
        self.hidden = hidden
        embedding = try Embedding(weight: rng.floats(count: vocabulary * hidden), vocabularySize: vocabulary, dimensions: hidden)
        var b: [Block] = []
        for _ in 0..<count { b.append(try Block(hidden: hidden, heads: heads, maxTokens: maxTokens, rng: &rng)) }
        blocks = b
        norm = try RMSNorm(dimensions: hidden, epsilon: 1e-5)
        head = try BitLinear(floatWeights: rng.gaussians(count: classes * hidden), outFeatures: classes, inFeatures: hidden)
    }
    override var children: [(key: String, module: Module)] {
        [("embed", embedding)] + blocks.enumerated().map { ("blocks.\($0.offset)", $0.element) } + [("norm", norm), ("head", head)]
    }
    override var summary: String { "SequenceClassifier hidden=\(hidden) blocks=\(blocks.count)" }

    /// Class logits for one sequence of token ids.
    func callAsFunction(_ tokens: [Int]) throws -> [Float] {
        var x = [Float](repeating: 0, count: tokens.count * hidden)
        x.withUnsafeMutableBufferPointer { embedding.lookup(tokens, into: $0) }
        for block in blocks { x = try block(x, tokens: tokens.count) }
        x = norm(x)
        // Mean over the tokens, then the head.
        var pooled = [Float](repeating: 0, count: hidden)
        for t in 0..<tokens.count { for i in 0..<hidden { pooled[i] += x[t * hidden + i] / Float(tokens.count) } }
        return try head(pooled)
    }
}

// MARK: - 2. Build it, give layers different backends, print the tree

do {
    // The arguments (checked by Options.swift; any error below ends in one line on stderr).
    let options = try Options(usage: """
        usage: CustomModel [--hidden N] [--blocks N] [--tokens N]
          defaults: --hidden 64 (a multiple of 8) --blocks 2 --tokens 12
        """, values: ["hidden", "blocks", "tokens"])
    let hidden = try options.count("hidden", 64), blockCount = try options.count("blocks", 2)
    let tokenCount = try options.count("tokens", 12)
    guard hidden % 8 == 0 else { throw Options.Invalid(description: "--hidden \(hidden) is not a multiple of 8 (4 heads of an even size)") }
    let model = try SequenceClassifier(vocabulary: 100, hidden: hidden, heads: 4, blocks: blockCount, classes: 5,
                                       maxTokens: tokenCount, seed: 7)
    var rng = SeededGenerator(seed: 99)
    let tokens = (0..<tokenCount).map { _ in Int(rng.next() % 100) }

    // Every BitLinear starts on `naive`. The reference output:
    let reference = try model(tokens)

    // Mix backends by path: the predicate sees each BitLinear's full path and the layer itself.
    try model.setBackend(RSRBackend.rsrPlusPlus, where: { path, _ in path.hasSuffix("mlp.up_proj") })
    try model.setBackend(BitPackedBackend(), where: { path, _ in path.hasSuffix("mlp.down_proj") })
    try model.setBackend(BLASBackend(), where: { path, _ in path.contains(".attn.") && !path.hasSuffix("o_proj") })
    try model.setBackend(RSRBackend(variant: .rsr, k: .fixed(3), form: .twoPart), where: { path, _ in path.hasSuffix("o_proj") })
    // The head is tiny (5 outputs): whatever is left stays naive.
    print(model.treeDescription())

    let mixed = try model(tokens)

    // MARK: - 3. Same outputs whatever the backends

    /// True when two outputs are equal bit for bit.
    func identical(_ a: [Float], _ b: [Float]) -> Bool { a.count == b.count && zip(a, b).allSatisfy { $0.bitPattern == $1.bitPattern } }

    print("\ntokens: \(tokens)")
    print("logits, all naive:    " + reference.map { String(format: "%8.4f", $0) }.joined(separator: " "))
    print("logits, mixed above:  " + mixed.map { String(format: "%8.4f", $0) }.joined(separator: " "))
    var results: [(String, Bool)] = [("mixed (tree above)", identical(mixed, reference))]
    // And every backend for every layer, one at a time.
    for backend in BackendRegistry.all {
        try model.setBackend(backend)
        results.append(("all \(backend.name)", identical(try model(tokens), reference)))
    }
    // A random backend per layer, through the list of every BitLinear and its path.
    var pick = SeededGenerator(seed: 5)
    for (_, layer) in model.bitLinears() {
        let backend = BackendRegistry.all[Int(pick.next() % UInt64(BackendRegistry.all.count))]
        try layer.prepare(backend: backend, context: .singleThreaded)
    }
    results.append(("random per layer", identical(try model(tokens), reference)))

    print("\nbackends                  logits vs all-naive")
    for (name, same) in results {
        print("  " + name.padding(toLength: 24, withPad: " ", startingAt: 0) + (same ? "bit-identical" : "DIFFERENT"))
    }
    guard results.allSatisfy(\.1) else { print("FAILED"); exit(1) }
    print("\nThe backend changes speed and memory, never the numbers: every product is an exact integer product.")
} catch {
    exit(with: error)
}
