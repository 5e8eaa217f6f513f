import Backends
import Testing
import TensorCore
@testable import Layers

/// BitLinear against a plain computation of BitNet's formula, on every registered backend.
@Suite struct BitLinearTests {
    static let names = BackendRegistry.names

    /// `y = (W_t · round(x · s)) · γ / s`, `s = 127 / max(max|x|, 1e-5)`, in Double from the definition.
    static func reference(_ w: TernaryMatrix, _ x: [Float], batch: Int) -> [Double] {
        let n = w.inFeatures, m = w.outFeatures
        var y = [Double](repeating: 0, count: batch * m)
        for b in 0..<batch {
            let row = x[(b * n)..<((b + 1) * n)]
            let amax = row.map { abs($0) }.max()!
            let s = 127 / max(amax, 1e-5)
            let q = row.map { Int(min(max(($0 * s).rounded(.toNearestOrEven), -128), 127)) }
            for o in 0..<m {
                var acc = 0
                for i in 0..<n { acc += Int(w[o, i]) * q[i] }
                y[b * m + o] = Double(acc) * Double(w.scale) / Double(s)
            }
        }
        return y
    }

    @Test(arguments: names)
    func matchesThePlainFormula(name: String) throws {
        let backend = try BackendRegistry.backend(named: name)
        var g = SeededGenerator(seed: 7)
        for (out, inn) in [(1, 1), (7, 5), (33, 64), (64, 130), (100, 257)] {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, scale: 0.37, using: &g)
            for threads in [1, 2] {
                let layer = try BitLinear(weight: w, backend: backend, context: ComputeContext(threads: threads))
                for batch in [1, 3, 8] {
                    let x = g.floats(count: batch * inn, magnitude: 3)
                    let y = try layer(x)
                    let r = BitLinearTests.reference(w, x, batch: batch)
                    for i in 0..<y.count {
                        #expect(abs(Double(y[i]) - r[i]) <= 1e-6 * max(1, abs(r[i])), "\(name) \(out)x\(inn) batch \(batch) #\(i)")
                    }
                }
            }
        }
    }

    @Test(arguments: names)
    func roundsTiesToEven(name: String) throws {
        // Identity weight, γ = 1, max|x| = 127 so s = 1: the output is the rounded input.
        let n = 6
        var values = [Int8](repeating: 0, count: n * n)
        for i in 0..<n { values[i * n + i] = 1 }
        let layer = try BitLinear(weight: TernaryMatrix(outFeatures: n, inFeatures: n, values: values),
                                  backend: BackendRegistry.backend(named: name))
        #expect(try layer([127, 0.5, 1.5, 2.5, -2.5, -0.5]) == [127, 0, 2, 2, -2, 0])
    }

    @Test func floatWeightsAreTernarizedByAbsmean() throws {
        var g = SeededGenerator(seed: 3)
        let wf = g.gaussians(count: 24 * 40, standardDeviation: 0.1)
        let layer = try BitLinear(floatWeights: wf, outFeatures: 24, inFeatures: 40)
        #expect(layer.weight == (try TernaryMatrix(absmean: wf, outFeatures: 24, inFeatures: 40)))
        #expect(throws: TernaryKitError.self) { try BitLinear(floatWeights: [1, 2, 3], outFeatures: 2, inFeatures: 2) }
    }

    @Test(arguments: names)
    func nonFiniteInputsGiveNonFiniteOutputs(name: String) throws {
        var g = SeededGenerator(seed: 11)
        let w = try TernaryMatrix.random(outFeatures: 9, inFeatures: 16, using: &g)
        let layer = try BitLinear(weight: w, backend: BackendRegistry.backend(named: name))
        for bad in [Float.nan, .infinity, -.infinity] {
            var x = g.floats(count: 3 * 16)
            x[16 + 5] = bad
            let y = try layer(x)
            #expect(y[0..<9].allSatisfy { $0.isFinite } && y[18..<27].allSatisfy { $0.isFinite })
            #expect(y[9..<18].allSatisfy { !$0.isFinite }, "\(name): \(bad) in row 1 gave \(Array(y[9..<18]))")
        }
    }

    @Test func swappingTheBackendReprepares() throws {
        var g = SeededGenerator(seed: 5)
        let layer = try BitLinear(weight: TernaryMatrix.random(outFeatures: 20, inFeatures: 30, using: &g))
        let x = g.floats(count: 60)
        let before = try layer(x)
        for name in BitLinearTests.names {
            try layer.prepare(backend: BackendRegistry.backend(named: name), context: ComputeContext(threads: 2))
            #expect(try layer.kernel().backendName == name && layer.context.threads == 2)
            #expect(try layer(x) == before)
        }
        #expect(throws: TernaryKitError.self) { try layer.setWeight(TernaryMatrix.random(outFeatures: 3, inFeatures: 30, using: &g)) }
    }
}
