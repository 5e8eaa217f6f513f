import Foundation
import Testing
import Backends
import TensorCore
@testable import Layers

/// The C row loops around the products (`VectorKernelVariant.dequantizeRow`, `rmsNormRow`,
/// `relu2Gate`): every supported variant against the Swift formulas they replace.
@Suite struct ElementwiseKernelTests {
    static let widths = [1, 2, 7, 8, 15, 16, 17, 31, 33, 100, 2560, 2561, 6912]

    @Test(arguments: VectorKernelVariant.supported)
    func dequantizeIsBitIdenticalToTheSwiftFormula(variant: VectorKernelVariant) {
        var g = SeededGenerator(seed: 11)
        for n in Self.widths {
            var acc = (0..<n).map { _ in Int32(truncatingIfNeeded: g.next()) }
            acc[0] = .min
            if n > 1 { acc[n - 1] = .max }
            let activationScale = 127 / (g.nextSignedUnitFloat().magnitude + 0.01), weightScale = Float(0.37)
            var expected = [Float](repeating: 0, count: n)
            acc.withUnsafeBufferPointer { a in
                [activationScale].withUnsafeBufferPointer { s in
                    expected.withUnsafeMutableBufferPointer { y in
                        ActivationQuantizer.dequantize(a, rows: 1, columns: n, activationScales: s, weightScale: weightScale, into: y)
                    }
                }
            }
            var y = [Float](repeating: .nan, count: n)
            variant.dequantizeRow(acc, Int64(n), weightScale / activationScale, &y)
            #expect(y.map(\.bitPattern) == expected.map(\.bitPattern), "\(variant) n \(n)")
        }
    }

    @Test(arguments: VectorKernelVariant.supported)
    func rmsNormMatchesADoubleReference(variant: VectorKernelVariant) {
        var g = SeededGenerator(seed: 12)
        for n in Self.widths {
            let x = (0..<n).map { _ in g.nextSignedUnitFloat() * 3 }
            let gamma = (0..<n).map { _ in g.nextSignedUnitFloat() + 1.5 }
            let eps: Float = 1e-5
            let ms = x.reduce(0.0) { $0 + Double($1) * Double($1) } / Double(n)
            let inv = 1 / (ms + Double(eps)).squareRoot()
            var y = [Float](repeating: .nan, count: n)
            variant.rmsNormRow(x, gamma, Int64(n), eps, &y)
            for i in 0..<n {
                let e = Double(x[i]) * inv * Double(gamma[i])
                #expect(abs(Double(y[i]) - e) <= 2e-6 * max(1, abs(e)), "\(variant) n \(n) i \(i): \(y[i]) vs \(e)")
            }
            // In place gives the same bits as out of place.
            var inPlace = x
            inPlace.withUnsafeMutableBufferPointer { p in variant.rmsNormRow(p.baseAddress, gamma, Int64(n), eps, p.baseAddress) }
            #expect(inPlace.map(\.bitPattern) == y.map(\.bitPattern), "\(variant) n \(n) in place")
        }
        // A non-finite value makes its row non-finite (it is not hidden).
        var bad = [Float](repeating: 1, count: 40)
        bad[17] = .nan
        var y = [Float](repeating: 0, count: 40)
        variant.rmsNormRow(bad, [Float](repeating: 1, count: 40), 40, 1e-5, &y)
        #expect(y.allSatisfy { $0.isNaN })
    }

    @Test(arguments: VectorKernelVariant.supported)
    func reluSquaredGateIsBitIdenticalToTheSwiftFormula(variant: VectorKernelVariant) {
        var g = SeededGenerator(seed: 13)
        let specials: [Float] = [0, -0.0, .nan, .infinity, -.infinity, .leastNonzeroMagnitude, -.leastNonzeroMagnitude, 1e20, -1e20]
        for n in Self.widths {
            var gate = (0..<n).map { _ in g.nextSignedUnitFloat() * 4 }
            let up = (0..<n).map { _ in g.nextSignedUnitFloat() * 4 }
            for (k, v) in specials.enumerated() where k < n { gate[(k * 7) % n] = v }
            let expected = zip(gate, up).map { gv, uv -> Float in
                let r = max(gv, 0)
                return r * r * uv
            }
            variant.relu2Gate(&gate, up, Int64(n))
            // Same bits, NaN for NaN (a NaN's payload is not part of the contract).
            #expect(zip(gate, expected).allSatisfy { $0.bitPattern == $1.bitPattern || ($0.isNaN && $1.isNaN) }, "\(variant) n \(n)")
        }
    }

    @Test(arguments: VectorKernelVariant.supported)
    func fusedGateDequantizationIsBitIdenticalToTheTwoSteps(variant: VectorKernelVariant) {
        var g = SeededGenerator(seed: 15)
        for n in Self.widths {
            var accG = (0..<n).map { _ in Int32(truncatingIfNeeded: g.next() >> 40) - (1 << 23) }
            let accU = (0..<n).map { _ in Int32(truncatingIfNeeded: g.next() >> 40) - (1 << 23) }
            accG[0] = .min
            let fg = Float(0.013), fu = Float(0.0071)
            var gate = [Float](repeating: 0, count: n), up = [Float](repeating: 0, count: n)
            variant.dequantizeRow(accG, Int64(n), fg, &gate)
            variant.dequantizeRow(accU, Int64(n), fu, &up)
            variant.relu2Gate(&gate, up, Int64(n))
            var fused = [Float](repeating: .nan, count: n)
            variant.relu2GateDequantize(accG, accU, Int64(n), fg, fu, &fused)
            #expect(fused.map(\.bitPattern) == gate.map(\.bitPattern), "\(variant) n \(n)")
            // A non-finite factor (a row that held NaN) gives NaN, as the two steps do.
            variant.relu2GateDequantize(accG, accU, Int64(n), .nan, fu, &fused)
            #expect(fused.allSatisfy { $0.isNaN }, "\(variant) n \(n) NaN factor")
        }
    }

    /// The feed-forward block's fused path (ReLU², no corrections) gives the bits of its pieces run
    /// one after the other through their public calls, on every backend, 1 and 2 threads; with a
    /// low-rank correction on the gate (the unfused path) too.
    @Test(arguments: BackendRegistry.names)
    func gatedFeedForwardEqualsItsPieces(backend: String) throws {
        var g = SeededGenerator(seed: 16)
        let hidden = 64, inter = 160, rows = 5
        for threads in [1, 2] {
            for corrected in [false, true] {
                let ffn = try GatedFeedForward(hiddenSize: hidden, intermediateSize: inter, activation: .reluSquared,
                                               subNormEpsilon: 1e-5, backend: BackendRegistry.backend(named: backend),
                                               context: ComputeContext(threads: threads))
                for (i, p) in [ffn.gateProj, ffn.upProj, ffn.downProj].enumerated() {
                    let w = try TernaryMatrix.random(outFeatures: p.outFeatures, inFeatures: p.inFeatures, using: &g)
                    // Distinct weight scales, so a mixed-up factor shows.
                    try p.setWeight(TernaryMatrix(outFeatures: w.outFeatures, inFeatures: w.inFeatures, values: w.values,
                                                  scale: 0.02 * Float(i + 1) + 0.003))
                }
                if corrected {
                    try ffn.gateProj.setCorrection(LowRankCorrection(
                        outFeatures: inter, inFeatures: hidden, rank: 3,
                        a: (0..<(inter * 3)).map { _ in g.nextSignedUnitFloat() * 0.1 },
                        b: (0..<(3 * hidden)).map { _ in g.nextSignedUnitFloat() * 0.1 }))
                }
                let x = (0..<(rows * hidden)).map { _ in g.nextSignedUnitFloat() }
                var y = [Float](repeating: 0, count: rows * hidden)
                try x.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { try ffn(xp, rows: rows, into: $0) } }
                let expected = try ffn.reluSquaredReference(x)
                #expect(y == expected, "\(backend) threads \(threads) corrected \(corrected)")
            }
        }
    }

    /// Through the layer: a row normalized alone, inside a batch, or on two threads gives the same bits.
    @Test func rmsNormRowsDoNotDependOnTheBatch() throws {
        var g = SeededGenerator(seed: 14)
        let n = 2560, rows = 9
        let norm = try RMSNorm(dimensions: n, epsilon: 1e-6)
        try norm.setParameter("weight", .floats((0..<n).map { _ in g.nextSignedUnitFloat() + 1 }))
        let x = (0..<(rows * n)).map { _ in g.nextSignedUnitFloat() }
        let all = norm(x)
        var two = [Float](repeating: 0, count: rows * n)
        x.withUnsafeBufferPointer { xp in two.withUnsafeMutableBufferPointer { norm(xp, rows: rows, into: $0, threads: 2) } }
        #expect(two == all)
        for r in 0..<rows {
            #expect(norm(Array(x[(r * n)..<((r + 1) * n)])) == Array(all[(r * n)..<((r + 1) * n)]), "row \(r)")
        }
    }
}
