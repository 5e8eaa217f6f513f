import Backends
import Testing
import TensorCore
@testable import BitNet
import Layers

/// The tiny preset end to end: every backend, the KV cache, backend swaps, the layer tree.
@Suite struct ModelTests {
    static let names = BackendRegistry.names
    static let sequence = [1, 17, 200, 5, 99, 42, 3, 255, 0, 64, 128, 7]

    static func tiny(_ backend: String = "naive", threads: Int = 1, head: LMHeadFormat = .float32, seed: UInt64 = 42) throws -> BitNetModel {
        var c = BitNetConfig.tiny
        c.lmHeadFormat = head
        return try BitNetModel.random(config: c, seed: seed, backend: BackendRegistry.backend(named: backend),
                                      context: ComputeContext(threads: threads))
    }

    @Test(arguments: LMHeadFormat.allCases)
    func logitsAreBitIdenticalAcrossBackendsAndThreads(head: LMHeadFormat) throws {
        let reference = try ModelTests.tiny(head: head).forward(ModelTests.sequence, allLogits: true)
        #expect(reference.count == ModelTests.sequence.count * BitNetConfig.tiny.vocabSize)
        #expect(reference.allSatisfy { $0.isFinite })
        for name in ModelTests.names {
            for threads in [1, 2] {
                let logits = try ModelTests.tiny(name, threads: threads, head: head).forward(ModelTests.sequence, allLogits: true)
                #expect(logits == reference, "\(name), \(threads) threads, \(head) head")
            }
        }
    }

    @Test func int4HeadRuns() throws {
        let model = try ModelTests.tiny(head: .int4)
        #expect(try model.forward([1, 2]).allSatisfy { $0.isFinite })
    }

    @Test(arguments: names)
    func cachedDecodingEqualsAFullRerun(name: String) throws {
        for head in LMHeadFormat.allCases {
            let model = try ModelTests.tiny(name, threads: 2, head: head)
            let v = BitNetConfig.tiny.vocabSize
            let full = try model.forward(ModelTests.sequence, allLogits: true)
            model.resetCache()
            var stepwise = try model.forward(Array(ModelTests.sequence.prefix(5)), allLogits: true)
            for t in ModelTests.sequence.dropFirst(5) { stepwise += try model.forward([t]) }
            #expect(model.cacheLength == ModelTests.sequence.count)
            #expect(stepwise == full, "\(name) \(head)")
            // forward without allLogits returns the last row.
            model.resetCache()
            #expect(try model.forward(ModelTests.sequence) == Array(full.suffix(v)))
        }
    }

    @Test func swappingBackendsMidGenerationChangesNothing() throws {
        let model = try ModelTests.tiny()
        let p = GenerationParameters(maxNewTokens: 20, temperature: 0.8, topK: 40, topP: 0.95, seed: 3, stopTokens: [])
        let plain = try model.generate(prompt: [1, 2, 3, 4], parameters: p)
        #expect(plain.tokens.count == 20 && plain.decodeSteps == 19)
        var seen: [String] = []
        let swapped = try model.generate(prompt: [1, 2, 3, 4], parameters: p) { index, _ in
            let name = ModelTests.names[index % ModelTests.names.count]
            let n = try model.setBackend(BackendRegistry.backend(named: name), context: ComputeContext(threads: 1 + index % 2))
            #expect(n == 7 * BitNetConfig.tiny.numHiddenLayers)
            seen.append(try model.bitLinears()[0].layer.kernel().backendName)
            return true
        }
        #expect(swapped.tokens == plain.tokens)
        #expect(Set(seen) == Set(ModelTests.names))
    }

    @Test func treePathsAndParameterKeysAreHuggingFaceKeys() throws {
        let model = try ModelTests.tiny()
        let paths = model.namedModules().map(\.path)
        for p in ["model.embed_tokens", "model.layers.1.mlp.gate_proj", "model.layers.0.self_attn.attn_sub_norm",
                  "model.layers.1.mlp.ffn_sub_norm", "model.norm", "lm_head"] {
            #expect(paths.contains(p), "missing \(p)")
        }
        let keys = Set(model.parameterKeys())
        #expect(keys.contains("model.layers.0.self_attn.q_proj.weight") && keys.contains("model.norm.weight")
                && keys.contains("model.embed_tokens.weight") && keys.contains("model.layers.1.post_attention_layernorm.weight"))
        #expect(!keys.contains("lm_head.weight"))   // tied
        #expect(keys.count == 1 + 2 * (7 + 4) + 1)
        // setBackend with a predicate on the path.
        let n = try model.setBackend(BLASBackend()) { path, _ in path.hasSuffix("down_proj") }
        #expect(n == 2)
        for (path, layer) in model.bitLinears() {
            #expect(try layer.kernel().backendName == (path.hasSuffix("down_proj") ? "blas" : "naive"))
        }
        let text = model.treeDescription()
        #expect(text.contains("down_proj: BitLinear 64x160 [blas]") && text.contains("total parameter bytes"))
    }

    @Test func untiedHeadHasItsOwnWeight() throws {
        var c = BitNetConfig.tiny
        c.tieWordEmbeddings = false
        let model = try BitNetModel.random(config: c, seed: 1)
        #expect(model.parameterKeys().contains("lm_head.weight"))
        let h = try model.hiddenStates([3])
        model.resetCache()
        let w = [Float](repeating: 0.5, count: 256 * 64)
        try model.setParameter(key: "lm_head.weight", .floats(w))
        let logits = try model.forward([3])
        let expected = h.reduce(0, +) * 0.5
        #expect(logits.allSatisfy { abs($0 - expected) < 1e-4 })
        // The embedding no longer drives the head.
        try model.setParameter(key: "model.embed_tokens.weight", .floats(model.embedding.weight.map { -$0 }))
        #expect(model.lmHead.weight == w)
    }

    @Test func parametersAreSetByKey() throws {
        let model = try ModelTests.tiny()
        let before = try model.forward([5, 6])
        model.resetCache()
        var g = SeededGenerator(seed: 1)
        let q = try TernaryMatrix.random(outFeatures: 64, inFeatures: 64, using: &g)
        try model.setParameter(key: "model.layers.0.self_attn.q_proj.weight", .ternary(q))
        #expect((model.layers[0].attention as? GroupedQueryAttention)?.qProj.weight == q)
        try model.setParameter(key: "model.norm.weight", .floats([Float](repeating: 2, count: 64)))
        #expect(model.norm.weight.allSatisfy { $0 == 2 })
        // The tied LM head follows the embedding.
        let table = g.floats(count: 256 * 64)
        try model.setParameter(key: "model.embed_tokens.weight", .floats(table))
        let h = try model.hiddenStates([5, 6])
        model.resetCache()
        let logits = try model.forward([5, 6])
        for o in [0, 100, 255] {
            var e: Float = 0
            for i in 0..<64 { e += table[o * 64 + i] * h[64 + i] }
            #expect(abs(logits[o] - e) < 1e-4)
        }
        #expect(logits != before)
        for bad in ["model.layers.9.mlp.up_proj.weight", "model.norm.bias", "nonsense"] {
            #expect(throws: TernaryKitError.self) { try model.setParameter(key: bad, .floats([1])) }
        }
        #expect(throws: TernaryKitError.self) { try model.setParameter(key: "model.norm.weight", .floats([1, 2])) }
        #expect(throws: TernaryKitError.self) { try model.setParameter(key: "model.layers.0.mlp.up_proj.weight", .floats([1])) }
    }

    @Test func badInputsThrow() throws {
        let model = try ModelTests.tiny()
        #expect(throws: TernaryKitError.self) { try model.forward([]) }
        #expect(throws: TernaryKitError.self) { try model.forward([256]) }
        #expect(throws: TernaryKitError.self) { try model.forward([-1]) }
        #expect(throws: TernaryKitError.self) { try model.forward([Int](repeating: 1, count: 129)) }
        #expect(throws: TernaryKitError.self) { try model.generate(prompt: [1], parameters: GenerationParameters(maxNewTokens: 0)) }
        #expect(throws: TernaryKitError.self) { try model.generate(prompt: [1], parameters: GenerationParameters(maxNewTokens: 2, topP: 0)) }
    }

    @Test func nonFiniteEmbeddingGivesNonFiniteLogits() throws {
        let model = try ModelTests.tiny()
        var table = model.embedding.weight
        table[7 * 64 + 3] = .nan
        try model.setParameter(key: "model.embed_tokens.weight", .floats(table))
        try model.lmHead.setFormat(.float32)
        let logits = try model.forward([1, 7, 2], allLogits: true)
        let v = 256
        // Before the bad token only the tied head's row 7 (which holds the NaN) is non-finite.
        #expect(logits[0..<v].enumerated().allSatisfy { $0.offset == 7 ? !$0.element.isFinite : $0.element.isFinite })
        #expect(logits[v...].allSatisfy { !$0.isFinite })  // the bad token and everything attending to it
    }

    @Test func generationStopsAtEOSAndAtTheBudget() throws {
        let model = try ModelTests.tiny()
        let free = try model.generate(prompt: [1, 2], parameters: GenerationParameters(maxNewTokens: 6, stopTokens: []))
        #expect(free.tokens.count == 6 && !free.stoppedAtStopToken)
        let stop = free.tokens[2]
        let r = try model.generate(prompt: [1, 2], parameters: GenerationParameters(maxNewTokens: 6, stopTokens: [stop]))
        #expect(r.tokens == Array(free.tokens.prefix(r.tokens.count)) && r.tokens.last == stop && r.stoppedAtStopToken)
        #expect(r.prefillTokensPerSecond > 0)
        let one = try model.generate(prompt: [1, 2], parameters: GenerationParameters(maxNewTokens: 1))
        #expect(one.tokens.count == 1 && one.decodeSteps == 0 && one.decodeTokensPerSecond.isNaN)
    }
}
