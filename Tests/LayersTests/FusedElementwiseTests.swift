import Testing
import Backends
import TensorCore
@testable import Layers

/// The fused row pipelines between products (`VectorKernelVariant.relu2GateNormQuantize`,
/// `rmsNormQuantize`) against the row kernels they chain, run one after the other, and the two
/// blocks that use them (`GatedFeedForward`, `GroupedQueryAttention`) against their pieces'
/// public calls: the same bits everywhere, non-finite rows included.
@Suite struct FusedElementwiseTests {
    /// Odd widths around the vector lengths (8, 16, 32 and 64 Floats) and the model's widths.
    static let widths = [1, 2, 3, 7, 8, 9, 15, 16, 17, 31, 33, 63, 65, 100, 257, 2560, 2561, 6912, 6913]

    /// Gate and up dequantization factors: distinct ones of both signs (a negative one turns a
    /// zero product into -0), and pairs that make a row NaN, infinite, all zero or subnormal.
    static let factors: [(Float, Float)] = [
        (0.013, 0.0071), (0.0071, -0.013), (-0.02, 0.5), (.nan, 0.01), (0.01, .nan), (.infinity, 0.01), (0.01, -.infinity),
        (1e30, 1e30), (0, 0.01), (-0.0, 0.01), (0.01, -0.0), (1e-30, 1e-30),
    ]

    /// Every bit of a Float row (a NaN's payload included, since both sides run the same code).
    static func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

    @Test(arguments: VectorKernelVariant.supported)
    func gateNormQuantizeIsBitIdenticalToTheThreeRowKernels(variant: VectorKernelVariant) {
        var g = SeededGenerator(seed: 31)
        for n in Self.widths {
            for (fi, (fg, fu)) in Self.factors.enumerated() {
                for kind in 0..<3 {
                    var accG = (0..<n).map { _ in Int32(truncatingIfNeeded: g.next() >> 40) - (1 << 23) }
                    var accU = (0..<n).map { _ in Int32(truncatingIfNeeded: g.next() >> 40) - (1 << 23) }
                    switch kind {
                    case 1:   // all-zero products: a zero (or -0) row
                        accG = [Int32](repeating: 0, count: n)
                    case 2:   // extremes, and zeros inside a row
                        accG[0] = .min; accU[n - 1] = .max
                        accG[n / 2] = 0
                    default: break
                    }
                    var gamma = (0..<n).map { _ in g.nextSignedUnitFloat() * 2 + 0.5 }
                    gamma[n - 1] = fi % 2 == 0 ? -0.0 : 0
                    let eps: Float = [1e-5, 1e-6, 0][kind]

                    var gated = [Float](repeating: .nan, count: n), normed = gated
                    variant.relu2GateDequantize(accG, accU, Int64(n), fg, fu, &gated)
                    variant.rmsNormRow(gated, gamma, Int64(n), eps, &normed)
                    var expected = [Int8](repeating: 99, count: n)
                    let expectedScale = variant.quantizeRow(normed, Int64(n), &expected)

                    var row = [Float](repeating: .nan, count: n), q = [Int8](repeating: -99, count: n)
                    let scale = variant.relu2GateNormQuantize(accG, accU, Int64(n), fg, fu, gamma, eps, &row, &q)
                    let what = "\(variant) n \(n) factors \(fg), \(fu) kind \(kind)"
                    #expect(q == expected, "\(what): values")
                    #expect(scale.bitPattern == expectedScale.bitPattern, "\(what): scale \(scale) vs \(expectedScale)")
                    #expect(Self.bits(row) == Self.bits(normed), "\(what): the scratch row holds the normalized row")
                }
            }
        }
    }

    @Test(arguments: VectorKernelVariant.supported)
    func normQuantizeIsBitIdenticalToTheTwoRowKernels(variant: VectorKernelVariant) {
        var g = SeededGenerator(seed: 32)
        // Values placed into an otherwise random row; nil keeps it random.
        let specials: [(String, [Float]?, Bool)] = [
            ("random", nil, false), ("NaN", [.nan], false), ("+inf", [.infinity], false), ("-inf", [-.infinity], false),
            ("inf and -inf", [.infinity, -.infinity], false), ("huge", [3e38, -3e38], false),
            ("subnormal", [.leastNonzeroMagnitude, -.leastNonzeroMagnitude], false),
            ("all zero", [0], true), ("all ±0", [0, -0.0], true), ("all -0", [-0.0], true),
        ]
        for n in Self.widths {
            for (name, values, fill) in specials {
                for eps: Float in [1e-5, 0] {
                    var x = (0..<n).map { _ in g.nextSignedUnitFloat() * 3 }
                    if let values {
                        if fill {
                            for i in 0..<n { x[i] = values[i % values.count] }
                        } else {
                            for (k, v) in values.enumerated() { x[(k * 7 + n / 3) % n] = v }
                        }
                    }
                    let gamma = (0..<n).map { _ in g.nextSignedUnitFloat() + 1 }
                    var normed = [Float](repeating: .nan, count: n)
                    variant.rmsNormRow(x, gamma, Int64(n), eps, &normed)
                    var expected = [Int8](repeating: 99, count: n)
                    let expectedScale = variant.quantizeRow(normed, Int64(n), &expected)
                    let what = "\(variant) n \(n) \(name) eps \(eps)"

                    var row = [Float](repeating: .nan, count: n), q = [Int8](repeating: -99, count: n)
                    let scale = variant.rmsNormQuantize(x, gamma, Int64(n), eps, &row, &q)
                    #expect(q == expected && scale.bitPattern == expectedScale.bitPattern && Self.bits(row) == Self.bits(normed),
                            "\(what): out of place")

                    // In place (the row buffer is the input), as the attention block calls it.
                    var inPlace = x, q2 = [Int8](repeating: -99, count: n)
                    let scale2 = inPlace.withUnsafeMutableBufferPointer { p in
                        variant.rmsNormQuantize(p.baseAddress, gamma, Int64(n), eps, p.baseAddress, &q2)
                    }
                    #expect(q2 == expected && scale2.bitPattern == expectedScale.bitPattern
                            && Self.bits(inPlace) == Self.bits(normed), "\(what): in place")
                }
            }
        }
    }

    /// Rows of the layer tests: one, a few, and around the point where two threads split the rows.
    static let rowCounts = [1, 2, 3, 5, 17, 64, 127, 128, 129, 130]

    /// `rows × width` inputs with a NaN row, an infinite row and a zero row among random ones
    /// (when there are enough rows), so non-finite rows meet the fused kernels.
    static func input(rows: Int, width: Int, using g: inout SeededGenerator) -> [Float] {
        var x = g.floats(count: rows * width)
        if rows >= 5 {
            x[1 * width + width / 2] = .nan
            x[2 * width] = -.infinity
            for i in 0..<width { x[3 * width + i] = 0 }
        }
        return x
    }

    /// A weight with the given scale (distinct per projection, so a mixed-up factor shows).
    static func setRandomWeight(_ p: BitLinear, scale: Float, using g: inout SeededGenerator) throws {
        let w = try TernaryMatrix.random(outFeatures: p.outFeatures, inFeatures: p.inFeatures, using: &g)
        try p.setWeight(TernaryMatrix(outFeatures: w.outFeatures, inFeatures: w.inFeatures, values: w.values, scale: scale))
    }

    static func randomCorrection(for p: BitLinear, using g: inout SeededGenerator) throws -> LowRankCorrection {
        try LowRankCorrection(outFeatures: p.outFeatures, inFeatures: p.inFeatures, rank: 2,
                              a: g.floats(count: p.outFeatures * 2, magnitude: 0.1),
                              b: g.floats(count: 2 * p.inFeatures, magnitude: 0.1))
    }

    /// The feed-forward block (ReLU², odd widths) with and without a sub-norm, with a correction
    /// nowhere, on the gate (no fused gate) or on `down_proj` (gate fused, norm and quantization
    /// not), 1 and 2 threads: its output has the bits of its pieces' public calls one after the other.
    @Test(arguments: [1, 2])
    func gatedFeedForwardEqualsItsPieces(threads: Int) throws {
        var g = SeededGenerator(seed: 33)
        // 130 rows × 517 reach the two-thread split of the fused row loop (2^16 elements).
        let hidden = 67, inter = 517
        for subNorm in [true, false] {
            for corrected in ["none", "gate", "down"] {
                let ffn = try GatedFeedForward(hiddenSize: hidden, intermediateSize: inter, activation: .reluSquared,
                                               subNormEpsilon: subNorm ? 1e-5 : nil, context: ComputeContext(threads: threads))
                for (i, p) in [ffn.gateProj, ffn.upProj, ffn.downProj].enumerated() {
                    try Self.setRandomWeight(p, scale: 0.02 * Float(i + 1) + 0.003, using: &g)
                }
                if subNorm { try ffn.subNorm!.setParameter("weight", .floats(g.floats(count: inter, magnitude: 0.5).map { $0 + 1 })) }
                if corrected == "gate" { try ffn.gateProj.setCorrection(Self.randomCorrection(for: ffn.gateProj, using: &g)) }
                if corrected == "down" { try ffn.downProj.setCorrection(Self.randomCorrection(for: ffn.downProj, using: &g)) }
                for rows in Self.rowCounts {
                    let x = Self.input(rows: rows, width: hidden, using: &g)
                    var y = [Float](repeating: 0, count: rows * hidden)
                    try x.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { try ffn(xp, rows: rows, into: $0) } }
                    let expected = try ffn.reluSquaredReference(x)
                    #expect(Self.bits(y) == Self.bits(expected),
                            "threads \(threads) subNorm \(subNorm) correction \(corrected) rows \(rows)")
                }
            }
        }
    }

    /// The attention block (odd widths) with and without a sub-norm, with and without a
    /// correction on `o_proj` (which keeps the separate norm and quantization), 1 and 2 threads,
    /// prefill and one decoded token: the bits of its pieces' public calls one after the other.
    @Test(arguments: [1, 2])
    func attentionEqualsItsPieces(threads: Int) throws {
        var g = SeededGenerator(seed: 34)
        // 5 heads of 54: 270 wide, so 130 rows reach the two-thread split of the row loop (2^15).
        let hidden = 61, heads = 5, kvHeads = 1, d = 54
        let rotary = try RotaryEmbedding(headDimension: d, theta: 10_000, maxPositions: 256)
        for subNorm in [true, false] {
            for corrected in [false, true] {
                let attention = try GroupedQueryAttention(hiddenSize: hidden, heads: heads, kvHeads: kvHeads, headDimension: d,
                                                          rotary: rotary, subNormEpsilon: subNorm ? 1e-6 : nil,
                                                          context: ComputeContext(threads: threads))
                for (i, p) in [attention.qProj, attention.kProj, attention.vProj, attention.oProj].enumerated() {
                    try Self.setRandomWeight(p, scale: 0.05 * Float(i + 1) + 0.01, using: &g)
                }
                if subNorm {
                    try attention.subNorm!.setParameter("weight", .floats(g.floats(count: heads * d, magnitude: 0.5).map { $0 + 1 }))
                }
                if corrected { try attention.oProj.setCorrection(Self.randomCorrection(for: attention.oProj, using: &g)) }
                for rows in Self.rowCounts {
                    // Prefill of `rows` tokens, then one more token decoded from the cache.
                    let x = Self.input(rows: rows + 1, width: hidden, using: &g)
                    let cache = try attention.makeCache(capacity: rows + 1)
                    var y = [Float](repeating: 0, count: (rows + 1) * hidden)
                    try x.withUnsafeBufferPointer { xp in
                        try y.withUnsafeMutableBufferPointer { yp in
                            try attention(UnsafeBufferPointer(rebasing: xp[0..<(rows * hidden)]), rows: rows, cache: cache,
                                          into: UnsafeMutableBufferPointer(rebasing: yp[0..<(rows * hidden)]))
                            try attention(UnsafeBufferPointer(rebasing: xp[(rows * hidden)...]), rows: 1, cache: cache,
                                          into: UnsafeMutableBufferPointer(rebasing: yp[(rows * hidden)...]))
                        }
                    }
                    let expected = try Self.pieces(of: attention, x, rows: rows + 1)
                    #expect(Self.bits(y) == Self.bits(expected),
                            "threads \(threads) subNorm \(subNorm) corrected \(corrected) rows \(rows)")
                }
            }
        }
    }

    /// `o_proj(subNorm?(attend(rope(q_proj(x)), rope(k_proj(x)), v_proj(x))))` through public calls.
    static func pieces(of attention: GroupedQueryAttention, _ x: [Float], rows: Int) throws -> [Float] {
        let heads = attention.heads, kvHeads = attention.kvHeads, d = attention.headDimension
        var q = try attention.qProj(x), k = try attention.kProj(x)
        let v = try attention.vProj(x)
        for t in 0..<rows {
            q.withUnsafeMutableBufferPointer { attention.rotary.apply($0.baseAddress! + t * heads * d, heads: heads, position: t) }
            k.withUnsafeMutableBufferPointer { attention.rotary.apply($0.baseAddress! + t * kvHeads * d, heads: kvHeads, position: t) }
        }
        let cache = try attention.makeCache(capacity: rows)
        cache.append(keys: k, values: v, count: rows)
        var a = [Float](repeating: 0, count: rows * heads * d)
        q.withUnsafeBufferPointer { qp in
            a.withUnsafeMutableBufferPointer { ap in
                GroupedQueryAttention.attend(queries: qp.baseAddress!, count: rows, heads: heads, kvHeads: kvHeads, headDimension: d,
                                             keys: cache.keys.baseAddress!, values: cache.values.baseAddress!,
                                             keyStride: cache.capacity, startPosition: 0, threads: 1, into: ap.baseAddress!)
            }
        }
        return try attention.oProj(attention.subNorm.map { $0(a) } ?? a)
    }
}
