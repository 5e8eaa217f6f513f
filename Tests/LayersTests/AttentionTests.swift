import Foundation
import Testing
import TensorCore
@testable import Layers

/// Rotary embedding and the attention core against their textbook definitions.
@Suite struct AttentionTests {
    @Test func rotaryMatchesDirectRotationOfHalfPairs() throws {
        let d = 16, theta = 10_000.0
        let rope = try RotaryEmbedding(headDimension: d, theta: theta, maxPositions: 300)
        var g = SeededGenerator(seed: 2)
        for position in [0, 1, 7, 299] {
            let x = g.floats(count: 2 * d)
            var y = x
            y.withUnsafeMutableBufferPointer { rope.apply($0.baseAddress!, heads: 2, position: position) }
            for h in 0..<2 {
                for i in 0..<(d / 2) {
                    // Hugging Face: q·cos + rotate_half(q)·sin, cos/sin = cat(freqs, freqs).
                    let angle = Double(position) / pow(theta, Double(2 * i) / Double(d))
                    let a = Double(x[h * d + i]), b = Double(x[h * d + i + d / 2])
                    let e1 = a * cos(angle) - b * sin(angle), e2 = b * cos(angle) + a * sin(angle)
                    #expect(abs(Double(y[h * d + i]) - e1) < 1e-5 && abs(Double(y[h * d + i + d / 2]) - e2) < 1e-5,
                            "position \(position) head \(h) pair \(i)")
                }
            }
        }
        #expect(throws: TernaryKitError.self) { try RotaryEmbedding(headDimension: 7, theta: 1e4, maxPositions: 4) }
    }

    @Test func attentionMatchesNaiveSoftmaxWithCausalMask() throws {
        let heads = 4, kvHeads = 2, d = 16, stride = 12
        var g = SeededGenerator(seed: 9)
        for (start, count) in [(0, 1), (0, 6), (3, 5), (9, 1)] {
            let total = start + count
            let q = g.floats(count: count * heads * d, magnitude: 2)
            var keys = [Float](repeating: .nan, count: kvHeads * stride * d)   // unused rows must not be read
            var values = keys
            for gi in 0..<kvHeads {
                for j in 0..<total {
                    for c in 0..<d {
                        keys[(gi * stride + j) * d + c] = g.nextSignedUnitFloat() * 2
                        values[(gi * stride + j) * d + c] = g.nextSignedUnitFloat()
                    }
                }
            }
            for threads in [1, 2] {
                var out = [Float](repeating: 0, count: count * heads * d)
                q.withUnsafeBufferPointer { qp in keys.withUnsafeBufferPointer { kp in values.withUnsafeBufferPointer { vp in
                    out.withUnsafeMutableBufferPointer { op in
                        GroupedQueryAttention.attend(
                            queries: qp.baseAddress!, count: count, heads: heads, kvHeads: kvHeads, headDimension: d,
                            keys: kp.baseAddress!, values: vp.baseAddress!, keyStride: stride, startPosition: start,
                            threads: threads, into: op.baseAddress!)
                    }
                }}}
                for t in 0..<count {
                    for h in 0..<heads {
                        let gi = h / (heads / kvHeads)
                        let visible = start + t + 1
                        var scores = (0..<visible).map { j -> Double in
                            var s = 0.0
                            for c in 0..<d { s += Double(q[(t * heads + h) * d + c]) * Double(keys[(gi * stride + j) * d + c]) }
                            return s / Double(d).squareRoot()
                        }
                        let m = scores.max()!
                        scores = scores.map { exp($0 - m) }
                        let z = scores.reduce(0, +)
                        for c in 0..<d {
                            var e = 0.0
                            for j in 0..<visible { e += scores[j] / z * Double(values[(gi * stride + j) * d + c]) }
                            #expect(abs(Double(out[(t * heads + h) * d + c]) - e) < 1e-5, "start \(start) t \(t) h \(h) c \(c)")
                        }
                    }
                }
            }
        }
    }
}
