import Backends
import Testing
import TensorCore
@testable import BitNet
import Layers

/// Batched decoding (`logits(forNextTokens:caches:)`, `BatchGenerator`): every sequence gets
/// exactly the logits and tokens it gets alone, on every backend.
@Suite struct BatchGenerationTests {
    static let prompts = [[1, 17, 200, 5, 99], [42], [3, 255, 0, 64, 128, 7, 9, 11, 13, 250, 77], [8, 8, 8]]

    static func tiny(_ backend: String, threads: Int = 2, head: LMHeadFormat = .int8) throws -> BitNetModel {
        var c = BitNetConfig.tiny
        c.lmHeadFormat = head
        return try BitNetModel.random(config: c, seed: 7, backend: BackendRegistry.backend(named: backend),
                                      context: ComputeContext(threads: threads))
    }

    /// Every cache advanced by its own prompt, alone.
    static func prefilled(_ model: BitNetModel) throws -> (caches: [ModelCache], logits: [[Float]]) {
        var caches: [ModelCache] = [], logits: [[Float]] = []
        for p in prompts {
            let c = try model.makeCache(capacity: 40)
            logits.append(try model.logits(for: p, cache: c, allPositions: false))
            caches.append(c)
        }
        return (caches, logits)
    }

    @Test(arguments: BackendRegistry.names)
    func batchedLogitsEqualEachSequenceAlone(name: String) throws {
        for head in LMHeadFormat.allCases {
            let model = try BatchGenerationTests.tiny(name, head: head)
            let v = model.vocabularySize
            let (batched, _) = try BatchGenerationTests.prefilled(model)
            let (alone, _) = try BatchGenerationTests.prefilled(model)
            var next = [5, 6, 7, 8]
            for step in 0..<6 {
                // Sequences drop out and come back: batch sizes 4, 3, 2, ...
                let rows = Array(0..<(4 - step % 3))
                let out = try model.logits(forNextTokens: rows.map { next[$0] }, caches: rows.map { batched[$0] })
                #expect(out.count == rows.count * v)
                for (i, r) in rows.enumerated() {
                    let single = try model.logits(for: [next[r]], cache: alone[r], allPositions: false)
                    #expect(Array(out[(i * v)..<((i + 1) * v)]) == single, "\(name) \(head) step \(step) row \(r)")
                    #expect(batched[r].length == alone[r].length)
                    next[r] = Sampler.argmax(single.withUnsafeBufferPointer { $0 })
                }
            }
        }
    }

    /// Low-rank corrections (`BitLinear.setCorrection`) read the Float input: the batched step must
    /// hand every projection the same input as a sequence run alone, and the correction kernel is
    /// batch-invariant, so the logits are the same bits.
    @Test func batchedLogitsWithLowRankCorrectionsEqualEachSequenceAlone() throws {
        let model = try BatchGenerationTests.tiny("bitpacked")
        var g = SeededGenerator(seed: 3)
        for (_, layer) in model.bitLinears() {
            let r = 2
            try layer.setCorrection(LowRankCorrection(outFeatures: layer.outFeatures, inFeatures: layer.inFeatures, rank: r,
                                                      a: g.floats(count: layer.outFeatures * r, magnitude: 0.05),
                                                      b: g.floats(count: r * layer.inFeatures, magnitude: 0.05)))
        }
        let v = model.vocabularySize
        let (batched, _) = try BatchGenerationTests.prefilled(model)
        let (alone, _) = try BatchGenerationTests.prefilled(model)
        let next = [5, 6, 7, 8]
        let out = try model.logits(forNextTokens: next, caches: batched)
        for r in 0..<next.count {
            let single = try model.logits(for: [next[r]], cache: alone[r], allPositions: false)
            #expect(Array(out[(r * v)..<((r + 1) * v)]) == single, "row \(r)")
        }
    }

    @Test(arguments: BackendRegistry.names)
    func batchGeneratorMatchesGenerateAlone(name: String) throws {
        let model = try BatchGenerationTests.tiny(name)
        let parameters = [
            GenerationParameters(maxNewTokens: 9, stopTokens: []),
            GenerationParameters(maxNewTokens: 4, stopTokens: []),
            GenerationParameters(maxNewTokens: 12, temperature: 0.9, topK: 20, topP: 0.9, seed: 5, stopTokens: []),
            GenerationParameters(maxNewTokens: 7, temperature: 0.5, seed: 11, stopTokens: []),
        ]
        let alone = try zip(BatchGenerationTests.prompts, parameters).map { try model.generate(prompt: $0, parameters: $1).tokens }
        let batch = BatchGenerator(model: model)
        // Three start together, the fourth joins after two steps (continuous batching).
        var ids = try (0..<3).map { try batch.add(prompt: BatchGenerationTests.prompts[$0], parameters: parameters[$0]) }
        var streamed: [BatchGenerator.SequenceID: [Int]] = [:]
        for _ in 0..<2 { for t in try batch.step() { streamed[t.id, default: []].append(t.token) } }
        ids.append(try batch.add(prompt: BatchGenerationTests.prompts[3], parameters: parameters[3]))
        while batch.hasActiveSequences {
            for t in try batch.step() {
                streamed[t.id, default: []].append(t.token)
                #expect(t.finished == batch.isFinished(t.id))
            }
        }
        for (i, id) in ids.enumerated() {
            let r = try #require(batch.result(for: id))
            #expect(r.tokens == alone[i], "\(name) sequence \(i)")
            #expect(streamed[id] == alone[i])
            #expect(r.promptLength == BatchGenerationTests.prompts[i].count && r.decodeSteps == alone[i].count - 1)
        }
        #expect(batch.decodedTokens == alone.reduce(0) { $0 + $1.count - 1 })
        #expect(batch.prefillTokens == BatchGenerationTests.prompts.reduce(0) { $0 + $1.count })
    }

    @Test func stopTokensAndCancelRemoveSequencesFromTheBatch() throws {
        let model = try BatchGenerationTests.tiny("bitpacked")
        let free = try model.generate(prompt: [1, 2, 3], parameters: GenerationParameters(maxNewTokens: 10, stopTokens: [])).tokens
        let stop = free[3]
        let expected = Array(free.prefix(through: free.firstIndex(of: stop)!))
        let batch = BatchGenerator(model: model)
        let a = try batch.add(prompt: [1, 2, 3], parameters: GenerationParameters(maxNewTokens: 10, stopTokens: [stop]))
        let b = try batch.add(prompt: [4, 5], parameters: GenerationParameters(maxNewTokens: 10, stopTokens: []))
        try batch.step()
        #expect(batch.activeSequences == [a, b])
        #expect(batch.cancel(b))
        #expect(!batch.cancel(b))
        #expect(batch.isFinished(b) && batch.result(for: b)!.tokens.count == 1)
        let results = try batch.run()
        #expect(results[a]!.tokens == expected && results[a]!.stoppedAtStopToken)
        #expect(try batch.step().isEmpty)
    }

    @Test func badBatchesThrowBeforeAnyCacheChanges() throws {
        let model = try BatchGenerationTests.tiny("naive")
        let c1 = try model.makeCache(capacity: 3), c2 = try model.makeCache(capacity: 1)
        _ = try model.logits(for: [1], cache: c2, allPositions: false)  // c2 is now full
        #expect(throws: TernaryKitError.self) { try model.logits(forNextTokens: [1, 2], caches: [c1]) }
        #expect(throws: TernaryKitError.self) { try model.logits(forNextTokens: [1, 2], caches: [c1, c1]) }
        #expect(throws: TernaryKitError.self) { try model.logits(forNextTokens: [1, 2], caches: [c1, c2]) }
        #expect(throws: TernaryKitError.self) { try model.logits(forNextTokens: [1, 999], caches: [c1, try model.makeCache(capacity: 2)]) }
        #expect(throws: TernaryKitError.self) { try model.logits(forNextTokens: [], caches: []) }
        #expect(c1.length == 0 && c2.length == 1)
        let batch = BatchGenerator(model: model)
        #expect(throws: TernaryKitError.self) { try batch.add(prompt: [], parameters: GenerationParameters(maxNewTokens: 2)) }
        #expect(throws: TernaryKitError.self) { try batch.add(prompt: [1], parameters: GenerationParameters(maxNewTokens: 0)) }
        #expect(throws: TernaryKitError.self) { try batch.add(prompt: [1], parameters: GenerationParameters(maxNewTokens: 500)) }
        #expect(throws: TernaryKitError.self) { try batch.add(prompt: [1], parameters: GenerationParameters(maxNewTokens: 2, temperature: -1)) }
        #expect(!batch.hasActiveSequences)
    }

    /// A model that only implements the single-sequence requirement gets the looping default.
    final class Wrapped: CausalLanguageModel {
        let inner: BitNetModel
        init(_ inner: BitNetModel) { self.inner = inner }
        var vocabularySize: Int { inner.vocabularySize }
        var maximumSequenceLength: Int { inner.maximumSequenceLength }
        var stopTokens: Set<Int> { inner.stopTokens }
        func makeCache(capacity: Int) throws -> ModelCache { try inner.makeCache(capacity: capacity) }
        func logits(for tokens: [Int], cache: ModelCache, allPositions: Bool) throws -> [Float] {
            try inner.logits(for: tokens, cache: cache, allPositions: allPositions)
        }
    }

    @Test func theDefaultLoopEqualsTheBatchedStep() throws {
        let model = try BatchGenerationTests.tiny("bitpacked")
        let wrapped = Wrapped(model)
        let (a, _) = try BatchGenerationTests.prefilled(model)
        let (b, _) = try BatchGenerationTests.prefilled(model)
        let batched = try model.logits(forNextTokens: [9, 10, 11, 12], caches: a)
        let looped = try wrapped.logits(forNextTokens: [9, 10, 11, 12], caches: b)
        #expect(batched == looped)
        let p = GenerationParameters(maxNewTokens: 5, stopTokens: [])
        let g1 = BatchGenerator(model: wrapped), g2 = BatchGenerator(model: model)
        for prompt in BatchGenerationTests.prompts { try g1.add(prompt: prompt, parameters: p); try g2.add(prompt: prompt, parameters: p) }
        #expect(try g1.run().mapValues(\.tokens) == g2.run().mapValues(\.tokens))
    }
}
