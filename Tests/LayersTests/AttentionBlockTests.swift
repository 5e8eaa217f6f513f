import Testing
import TensorCore
@testable import Layers

/// `AttentionBlock`'s default batched call (row by row) against `GroupedQueryAttention`'s own
/// batched step, through a block of "your own" that only implements the single-sequence call.
@Suite struct AttentionBlockTests {
    /// An attention of one's own: delegates to a `GroupedQueryAttention`, keeps the protocol's
    /// default row-by-row batched call.
    final class Delegating: Module, AttentionBlock {
        let inner: GroupedQueryAttention
        init(_ inner: GroupedQueryAttention) { self.inner = inner }
        override var children: [(key: String, module: Module)] { [("inner", inner)] }
        var hiddenSize: Int { inner.hiddenSize }
        var threads: Int { get { inner.threads } set { inner.threads = newValue } }
        var workspace: Workspace { inner.workspace }
        func makeCache(capacity: Int) throws -> KVCache { try inner.makeCache(capacity: capacity) }
        func callAsFunction(_ x: UnsafeBufferPointer<Float>, rows: Int, cache: KVCache,
                            into y: UnsafeMutableBufferPointer<Float>) throws {
            try inner(x, rows: rows, cache: cache, into: y)
        }
    }

    @Test func defaultBatchedCallEqualsTheTrueBatchedStep() throws {
        let hidden = 32, rows = 3
        var g = SeededGenerator(seed: 11)
        let rotary = try RotaryEmbedding(headDimension: 8, theta: 10_000, maxPositions: 16)
        let attention = try GroupedQueryAttention(hiddenSize: hidden, heads: 4, kvHeads: 2, rotary: rotary, subNormEpsilon: 1e-5)
        for (key, spec) in attention.namedParameterSpecs() {
            if case .ternary(let o, let i) = spec {
                try attention.setParameter(key: key, .ternary(TernaryMatrix.random(outFeatures: o, inFeatures: i, using: &g)))
            }
        }
        let mine = Delegating(attention)
        // Two sets of caches with different histories per row, filled identically.
        func caches() throws -> [KVCache] {
            var h = SeededGenerator(seed: 5)
            return try (0..<rows).map { r in
                let c = try attention.makeCache(capacity: 16)
                let prompt = h.floats(count: (r + 1) * hidden)
                var out = [Float](repeating: 0, count: prompt.count)
                try prompt.withUnsafeBufferPointer { p in
                    try out.withUnsafeMutableBufferPointer { try attention(p, rows: r + 1, cache: c, into: $0) }
                }
                return c
            }
        }
        let x = g.floats(count: rows * hidden)
        var expected = [Float](repeating: 0, count: rows * hidden), actual = expected
        let a = try caches(), b = try caches()
        try x.withUnsafeBufferPointer { xp in
            try expected.withUnsafeMutableBufferPointer { try attention(xp, rows: rows, caches: a, into: $0) }
            try actual.withUnsafeMutableBufferPointer { try mine(xp, rows: rows, caches: b, into: $0) }
        }
        #expect(actual.map(\.bitPattern) == expected.map(\.bitPattern))
        #expect(a.map(\.length) == [2, 3, 4] && b.map(\.length) == [2, 3, 4])
        // A decoder block takes it like the library's attention.
        let block = try DecoderBlock(inputNorm: RMSNorm(dimensions: hidden, epsilon: 1e-5), attention: mine,
                                     postAttentionNorm: RMSNorm(dimensions: hidden, epsilon: 1e-5),
                                     feedForward: GatedFeedForward(hiddenSize: hidden, intermediateSize: 64, activation: .silu))
        #expect(block.namedModules().map(\.path).contains("self_attn.inner.q_proj"))
    }
}
