import Backends
import Testing
import TensorCore
@testable import Layers

/// BitLinear with a low-rank Float correction: `y = γ·T·x + A·(B·x)` on every backend, the
/// parameters it adds, and the unchanged path without one.
@Suite struct BitLinearCorrectionTests {
    static let out = 24, inn = 40, rank = 3

    static func setup(seed: UInt64) throws -> (TernaryMatrix, LowRankCorrection) {
        var g = SeededGenerator(seed: seed)
        let w = try TernaryMatrix(absmean: g.gaussians(count: out * inn), outFeatures: out, inFeatures: inn)
        let c = try LowRankCorrection(outFeatures: out, inFeatures: inn, rank: rank,
                                      a: g.gaussians(count: out * rank, standardDeviation: 0.1),
                                      b: g.gaussians(count: rank * inn, standardDeviation: 0.1))
        return (w, c)
    }

    /// `A · (B · x)` per row in Double.
    static func lowRank(_ c: LowRankCorrection, _ x: [Float], batch: Int) -> [Double] {
        var y = [Double](repeating: 0, count: batch * c.outFeatures)
        for b in 0..<batch {
            let t = (0..<c.rank).map { k in (0..<c.inFeatures).reduce(0.0) { $0 + Double(c.b[k * c.inFeatures + $1]) * Double(x[b * c.inFeatures + $1]) } }
            for o in 0..<c.outFeatures {
                y[b * c.outFeatures + o] = (0..<c.rank).reduce(0.0) { $0 + Double(c.a[o * c.rank + $1]) * t[$1] }
            }
        }
        return y
    }

    @Test(arguments: BackendRegistry.names, [1, 5])
    func correctedProductMatchesThePlainComputation(name: String, batch: Int) throws {
        let (w, c) = try Self.setup(seed: 11)
        var g = SeededGenerator(seed: 5)
        let x = g.gaussians(count: batch * Self.inn)
        let backend = try BackendRegistry.backend(named: name)
        let plain = try BitLinear(weight: w, backend: backend)
        let layer = try BitLinear(weight: w, backend: backend)
        try layer.setCorrection(c)
        let ternary = try plain(x)
        // The ternary part is exact on every backend: the naive backend's output is the reference.
        #expect(ternary == (try BitLinear(weight: w, backend: BackendRegistry.backend(named: "naive"))(x)))
        let y = try layer(x)
        let expected = zip(ternary, Self.lowRank(c, x, batch: batch)).map { Double($0) + $1 }
        for (a, b) in zip(y, expected) { #expect(abs(Double(a) - b) <= 1e-4 * max(1, abs(b)), "\(name) batch \(batch)") }
        // Twice in a row (workspace reuse) gives the same bits.
        #expect(try layer(x) == y)
        // applyQuantized without the Float input corrects on the dequantized activations q / s.
        let (q, s) = try ActivationQuantizer.quantize(x, rows: batch, columns: Self.inn)
        let xd = (0..<(batch * Self.inn)).map { Float(q[$0]) / s[$0 / Self.inn] }
        var yq = [Float](repeating: 0, count: batch * Self.out)
        try q.withUnsafeBufferPointer { pq in
            try s.withUnsafeBufferPointer { ps in
                try yq.withUnsafeMutableBufferPointer { try layer.applyQuantized(pq, scales: ps, rows: batch, into: $0) }
            }
        }
        let expectedQ = zip(ternary, Self.lowRank(c, xd, batch: batch)).map { Double($0) + $1 }
        for (a, b) in zip(yq, expectedQ) { #expect(abs(Double(a) - b) <= 1e-4 * max(1, abs(b)), "\(name) batch \(batch) quantized") }
    }

    @Test func noCorrectionLeavesTheLayerAsItWas() throws {
        let (w, c) = try Self.setup(seed: 3)
        var g = SeededGenerator(seed: 9)
        let x = g.gaussians(count: 5 * Self.inn)
        let plain = try BitLinear(weight: w)
        let layer = try BitLinear(weight: w)
        #expect(layer.correction == nil && layer.parameterNames == ["weight"])
        try layer.setCorrection(c)
        #expect(layer.parameterNames == ["weight", "weight_lowrank_a", "weight_lowrank_b"])
        #expect(layer.parameterSpecs.map(\.spec) == [.ternary(outFeatures: Self.out, inFeatures: Self.inn),
                                                    .floats(shape: [Self.out, Self.rank]), .floats(shape: [Self.rank, Self.inn])])
        #expect(layer.parameterBytes == plain.parameterBytes + c.storageBytes)
        #expect(layer.summary.contains("lowrank r=3"))
        #expect(try layer(x) != plain(x))
        try layer.setCorrection(nil)
        #expect(layer.correction == nil && layer.parameterNames == ["weight"])
        #expect(try layer(x) == plain(x))
        // A rank-0 correction is no correction.
        try layer.setCorrection(LowRankCorrection(outFeatures: Self.out, inFeatures: Self.inn, rank: 0, a: [], b: []))
        #expect(layer.correction == nil)
        #expect(try layer(x) == plain(x))
    }

    @Test func parametersSetTheFactorsAndRefuseBadOnes() throws {
        let (w, c) = try Self.setup(seed: 4)
        let layer = try BitLinear(weight: w)
        // Without a correction the factors are not parameters.
        #expect(throws: TernaryKitError.self) { try layer.setParameter("weight_lowrank_a", .floats(c.a)) }
        #expect(layer.parameter("weight_lowrank_a") == nil)
        // Another shape is refused, naming both.
        let wrong = try LowRankCorrection(outFeatures: Self.out + 4, inFeatures: Self.inn, rank: 1,
                                          a: .init(repeating: 0, count: Self.out + 4), b: .init(repeating: 0, count: Self.inn))
        do { try layer.setCorrection(wrong); Issue.record("accepted a 28×40 correction") } catch {
            #expect("\(error)".contains("28×40") && "\(error)".contains("24×40"), "\(error)")
        }
        try layer.setCorrection(LowRankCorrection(outFeatures: Self.out, inFeatures: Self.inn, rank: Self.rank,
                                                  a: .init(repeating: 0, count: Self.out * Self.rank),
                                                  b: .init(repeating: 0, count: Self.rank * Self.inn)))
        try layer.setParameter("weight_lowrank_a", .floats(c.a))
        try layer.setParameter("weight_lowrank_b", .floats(c.b))
        #expect(layer.correction == c)
        guard case .floats(let a) = layer.parameter("weight_lowrank_a"), case .floats(let b) = layer.parameter("weight_lowrank_b") else {
            Issue.record("factors are not Float parameters"); return
        }
        #expect(a == c.a && b == c.b)
        #expect(throws: TernaryKitError.self) { try layer.setParameter("weight_lowrank_b", .floats([1, 2, 3])) }
        #expect(throws: TernaryKitError.self) { try layer.setParameter("weight_lowrank_b", .floats(.init(repeating: .nan, count: Self.rank * Self.inn))) }
        #expect(throws: TernaryKitError.self) { try layer.setParameter("weight_lowrank_a", .ternary(w)) }
        #expect(layer.correction == c)
    }
}
