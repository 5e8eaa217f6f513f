import Foundation
import Testing
import TensorCore
@testable import Layers

@Suite struct SamplerTests {
    @Test func greedyAndTopKOneAreArgmax() throws {
        var g = SeededGenerator(seed: 1)
        for _ in 0..<20 {
            let logits = g.floats(count: 500, magnitude: 5)
            let best = logits.indices.max { logits[$0] < logits[$1] }!
            var greedy = try Sampler()
            var k1 = try Sampler(temperature: 1, topK: 1, seed: 4)
            #expect(greedy.next(logits) == best && k1.next(logits) == best)
        }
        let ties: [Float] = [1, 3, 3, 2]
        #expect(ties.withUnsafeBufferPointer { Sampler.argmax($0) } == 1)
    }

    @Test func samplingIsSeededAndStaysInsideTopKAndTopP() throws {
        var g = SeededGenerator(seed: 2)
        let logits = g.floats(count: 1000, magnitude: 4)
        let order = logits.indices.sorted { logits[$0] > logits[$1] }
        var a = try Sampler(temperature: 1.2, topK: 10, seed: 9), b = try Sampler(temperature: 1.2, topK: 10, seed: 9)
        let sa = (0..<200).map { _ in a.next(logits) }
        #expect(sa == (0..<200).map { _ in b.next(logits) })
        #expect(Set(sa).isSubset(of: Set(order.prefix(10))) && Set(sa).count > 3)
        // A tiny nucleus holds only the most likely token.
        var p = try Sampler(temperature: 1, topP: 1e-6, seed: 1)
        #expect((0..<50).allSatisfy { _ in p.next(logits) == order[0] })
        // The nucleus for mass 0.5 is the shortest prefix of the sorted probabilities reaching 0.5.
        let m = logits.max()!
        let probs = logits.map { Double(exp($0 - m)) }
        let z = probs.reduce(0, +)
        var acc = 0.0, size = 0
        while acc < 0.5 { acc += probs[order[size]] / z; size += 1 }
        var s = try Sampler(temperature: 1, topP: 0.5, seed: 5)
        let picks = Set((0..<400).map { _ in s.next(logits) })
        #expect(picks.isSubset(of: Set(order.prefix(size))))
        #expect(throws: TernaryKitError.self) { try Sampler(temperature: -1) }
        #expect(throws: TernaryKitError.self) { try Sampler(topP: 1.5) }
        #expect(throws: TernaryKitError.self) { try Sampler(topK: -2) }
    }
}
