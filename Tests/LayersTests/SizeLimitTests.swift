import Layers
import Testing
import TensorCore

/// Sizes from configs are checked before anything is allocated: overflow and sizes beyond
/// physical memory throw instead of trapping or aborting in the allocator.
@Suite struct SizeLimitTests {
    @Test func kvCacheSizes() {
        #expect(throws: TernaryKitError.self) { try KVCache(kvHeads: 1 << 40, headDimension: 1 << 40, capacity: 1 << 40) }
        #expect(throws: TernaryKitError.self) { try KVCache(kvHeads: 1 << 20, headDimension: 1 << 10, capacity: 1 << 20) }
        #expect(throws: Never.self) { try KVCache(kvHeads: 2, headDimension: 8, capacity: 4) }
    }

    @Test func embeddingAndHeadSizes() {
        #expect(throws: TernaryKitError.self) { try Embedding(vocabularySize: 1 << 62, dimensions: 64) }
        #expect(throws: TernaryKitError.self) { try Embedding(vocabularySize: 1 << 40, dimensions: 4096) }
        #expect(throws: TernaryKitError.self) { try Embedding(weight: [0], vocabularySize: .max, dimensions: 2) }
        #expect(throws: TernaryKitError.self) { try LMHead(weight: [0], vocabularySize: 1 << 62, dimensions: 8) }
        #expect(throws: TernaryKitError.self) { try RotaryEmbedding(headDimension: 1 << 40, theta: 10_000, maxPositions: 1 << 40) }
    }

    @Test func bitLinearShapes() {
        #expect(throws: TernaryKitError.self) { try BitLinear(outFeatures: .max, inFeatures: 2) }
        #expect(throws: TernaryKitError.self) { try BitLinear(outFeatures: 4, inFeatures: .max) }
    }
}
