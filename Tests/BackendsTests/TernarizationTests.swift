import Backends
import Foundation
import Testing
import TensorCore

/// One matrix of `Tests/Fixtures/ternarize/fixture.json` (written by `make_ternarize_fixture.py`,
/// numpy only) and what ternarizing and correcting it must give.
struct TernarizeFixtureCase: Decodable, CustomStringConvertible {
    struct Correction: Decodable {
        let rank: Int
        let used_rank: Int
        let clamped: Bool
        let corrected_error: Double
    }
    let name: String
    let out: Int
    let `in`: Int
    let w_bits: [UInt32]
    let gamma_bits: UInt32
    let codes: [Int8]
    let relative_error: Double
    let singular_values: [Double]
    let corrections: [Correction]

    var weights: [Float] { w_bits.map(Float.init(bitPattern:)) }
    var gamma: Float { Float(bitPattern: gamma_bits) }
    var description: String { name }
}

enum TernarizeFixture {
    static let cases: [TernarizeFixtureCase] = {
        struct File: Decodable { let cases: [TernarizeFixtureCase] }
        let url = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .appendingPathComponent("Fixtures/ternarize/fixture.json")
        guard let data = try? Data(contentsOf: url), let file = try? JSONDecoder().decode(File.self, from: data) else { return [] }
        return file.cases
    }()
}

/// The LAPACK drivers checked against Eckart–Young; the randomized method is checked separately.
let exactSVDMethods: [SVDMethod] = [.gesdd, .gesvd, .gesvdx]

/// |actual − expected| within `relative` of expected plus a Float-precision absolute floor
/// (the errors are already relative to ‖W‖).
func close(_ actual: Double, _ expected: Double, relative: Double = 1e-4, absolute: Double = 2e-6) -> Bool {
    abs(actual - expected) <= relative * abs(expected) + absolute
}

@Suite struct TernarizationTests {
    @Test func fixtureLoads() throws {
        #expect(TernarizeFixture.cases.count >= 9)
        #expect(TernarizeFixture.cases.contains { $0.name == "ties_4x4" })
    }

    @Test(arguments: TernarizeFixture.cases)
    func codesGammaAndErrorMatchNumpy(_ c: TernarizeFixtureCase) throws {
        let r = try Ternarization.ternarize(c.weights, outFeatures: c.out, inFeatures: c.in, name: c.name)
        #expect(r.matrix.values == c.codes)
        #expect(abs(r.gamma - c.gamma) <= 1e-6 * c.gamma)
        #expect(r.gamma == c.gamma, "γ bit pattern differs (still within 1e-6)")
        #expect(r.matrix.outFeatures == c.out && r.matrix.inFeatures == c.in)
        #expect(close(r.relativeError, c.relative_error), "\(r.relativeError) vs \(c.relative_error)")
    }

    @Test func tiesRoundHalfToEven() throws {
        let c = try #require(TernarizeFixture.cases.first { $0.name == "ties_4x4" })
        let r = try Ternarization.ternarize(c.weights, outFeatures: 4, inFeatures: 4)
        #expect(r.gamma == 0.25)
        // W/γ = ±0.5 → 0 (half to even, not away from zero), ±1.5 → ±2 → ±1, 2.5 → 2 → 1.
        #expect(r.matrix.values == [0, 0, 1, -1, 0, 0, 1, -1, 1, -1, 0, 1, 1, 0, 0, 0])
    }

    @Test(arguments: TernarizeFixture.cases)
    func correctedErrorMatchesEckartYoung(_ c: TernarizeFixtureCase) throws {
        for method in exactSVDMethods {
            for e in c.corrections {
                let (t, k) = try Ternarization.ternarize(c.weights, outFeatures: c.out, inFeatures: c.in, rank: e.rank,
                                                         method: method, verify: true, name: c.name)
                #expect(k.rank == e.used_rank && k.clamped == e.clamped && k.requestedRank == e.rank, "\(c.name) \(method) r \(e.rank)")
                #expect(close(k.correctedRelativeError, e.corrected_error),
                        "\(c.name) \(method) r \(e.rank): \(k.correctedRelativeError) vs \(e.corrected_error)")
                // A·B formed with sgemm leaves the error the singular values say.
                let explicit = try #require(k.explicitRelativeError)
                #expect(close(explicit, e.corrected_error), "\(c.name) \(method) r \(e.rank) explicit: \(explicit) vs \(e.corrected_error)")
                #expect(k.correction.a.count == c.out * k.rank && k.correction.b.count == k.rank * c.in)
                #expect(abs(k.referenceNorm - t.weightNorm) <= 1e-12 * t.weightNorm)
                if e.rank == 0 { #expect(close(k.correctedRelativeError, t.relativeError, relative: 1e-12, absolute: 0)) }
            }
        }
    }

    @Test(arguments: TernarizeFixture.cases.filter { $0.out * $0.in >= 100 })
    func singularValuesMatchNumpy(_ c: TernarizeFixtureCase) throws {
        let t = try Ternarization.ternarize(c.weights, outFeatures: c.out, inFeatures: c.in, name: c.name)
        let r = try Ternarization.residual(c.weights, of: t.matrix, name: c.name)
        let k = try Ternarization.lowRankCorrection(of: r, outFeatures: c.out, inFeatures: c.in, rank: 1, method: .gesdd)
        #expect(k.singularValues.count == c.singular_values.count)
        let top = c.singular_values[0]
        for (s, e) in zip(k.singularValues, c.singular_values) {
            #expect(abs(Double(s) - e) <= 1e-5 * top, "\(c.name): σ \(s) vs \(e)")
        }
    }

    /// Randomized SVD on a matrix with a decaying spectrum: within a little of Eckart–Young,
    /// never below it, its reported error equal to the explicit one, and exact at full rank.
    @Test func randomizedIsCloseToOptimal() throws {
        var rng = SeededGenerator(seed: 11)
        let m = 60, n = 90, k = 20
        // W = G1 · diag(decay) · G2 + noise: a spectrum that decays, like trained weights.
        let g1 = rng.gaussians(count: m * k), g2 = rng.gaussians(count: k * n), noise = rng.gaussians(count: m * n, standardDeviation: 0.05)
        var w = noise
        for o in 0..<m { for i in 0..<n { for j in 0..<k { w[o * n + i] += g1[o * k + j] * g2[j * n + i] / Float(j + 1) } } }
        let exact = try Ternarization.ternarize(w, outFeatures: m, inFeatures: n, rank: 8, method: .gesdd)
        let rand = try Ternarization.ternarize(w, outFeatures: m, inFeatures: n, rank: 8, method: .randomized(), verify: true)
        #expect(rand.correction.method == .randomized())
        #expect(rand.correction.correctedRelativeError >= exact.correction.correctedRelativeError - 1e-5)
        #expect(rand.correction.correctedRelativeError <= exact.correction.correctedRelativeError * 1.02)
        #expect(close(try #require(rand.correction.explicitRelativeError), rand.correction.correctedRelativeError))
        // r + oversampling ≥ min(out, in): falls back to gesdd.
        let fallback = try Ternarization.ternarize(w, outFeatures: m, inFeatures: n, rank: 55, method: .randomized())
        #expect(fallback.correction.method == .gesdd)
    }

    @Test func clampsRankAboveMinDimension() throws {
        let c = try #require(TernarizeFixture.cases.first { $0.name == "gauss_7x5" })
        let (_, k) = try Ternarization.ternarize(c.weights, outFeatures: 7, inFeatures: 5, rank: 6, verify: true)
        #expect(k.clamped && k.rank == 5 && k.requestedRank == 6)
        #expect(k.correctedRelativeError == 0)
        #expect(try #require(k.explicitRelativeError) < 1e-6)
        let (_, same) = try Ternarization.ternarize(c.weights, outFeatures: 7, inFeatures: 5, rank: 5)
        #expect(!same.clamped && same.rank == 5)
        #expect(throws: TernaryKitError.self) { try Ternarization.ternarize(c.weights, outFeatures: 7, inFeatures: 5, rank: -1) }
    }

    @Test(arguments: [Float.nan, .infinity, -.infinity])
    func nonFiniteValuesNameTheTensor(_ bad: Float) throws {
        var w = [Float](repeating: 0.5, count: 12)
        w[7] = bad
        for attempt in 0..<3 {
            do {
                switch attempt {
                case 0: _ = try Ternarization.ternarize(w, outFeatures: 3, inFeatures: 4, name: "model.layers.3.mlp.up_proj.weight")
                case 1: _ = try Ternarization.ternarize(w, outFeatures: 3, inFeatures: 4, rank: 1, name: "model.layers.3.mlp.up_proj.weight")
                default: _ = try Ternarization.lowRankCorrection(of: w, outFeatures: 3, inFeatures: 4, rank: 1, name: "model.layers.3.mlp.up_proj.weight")
                }
                Issue.record("no error for \(bad)")
            } catch let error as TernaryKitError {
                guard case .invalidValue(let message) = error else { Issue.record("wrong error \(error)"); continue }
                #expect(message.contains("model.layers.3.mlp.up_proj.weight"), "\(message)")
                #expect(message.contains("row 1, column 3"), "\(message)")
            }
        }
    }

    @Test func badShapesThrow() throws {
        #expect(throws: TernaryKitError.self) { try Ternarization.ternarize([1, 2, 3], outFeatures: 2, inFeatures: 2) }
        #expect(throws: TernaryKitError.self) { try Ternarization.ternarize([], outFeatures: 0, inFeatures: 2) }
        #expect(throws: TernaryKitError.self) { try LowRankCorrection(outFeatures: 2, inFeatures: 2, rank: 1, a: [1], b: [1, 2]) }
        #expect(throws: TernaryKitError.self) { try LowRankCorrection(outFeatures: 2, inFeatures: 2, rank: 1, a: [1, .nan], b: [1, 2]) }
    }

    @Test func allZeroWeightTernarizesExactly() throws {
        let (t, k) = try Ternarization.ternarize([Float](repeating: 0, count: 6), outFeatures: 2, inFeatures: 3, rank: 1)
        #expect(t.gamma == 1e-5 && t.matrix.values.allSatisfy { $0 == 0 })
        #expect(t.relativeError == 0 && k.correctedRelativeError == 0)
    }

    /// `y += A·(B·x)` for `batch` rows with plain loops in Double.
    static func loopApply(_ c: LowRankCorrection, _ x: [Float], batch: Int, _ y: [Float]) -> [Double] {
        var out = y.map(Double.init)
        for s in 0..<batch {
            var t = [Double](repeating: 0, count: c.rank)
            for j in 0..<c.rank { for i in 0..<c.inFeatures { t[j] += Double(c.b[j * c.inFeatures + i]) * Double(x[s * c.inFeatures + i]) } }
            for o in 0..<c.outFeatures { for j in 0..<c.rank { out[s * c.outFeatures + o] += Double(c.a[o * c.rank + j]) * t[j] } }
        }
        return out
    }

    @Test(arguments: [1, 5])
    func applyMatchesPlainLoop(_ batch: Int) throws {
        let c = try #require(TernarizeFixture.cases.first { $0.name == "gauss_24x40" })
        let (_, k) = try Ternarization.ternarize(c.weights, outFeatures: 24, inFeatures: 40, rank: 4)
        let corr = k.correction
        var rng = SeededGenerator(seed: UInt64(batch))
        let x = rng.floats(count: batch * 40)
        let y0 = rng.floats(count: batch * 24)
        let expected = Self.loopApply(corr, x, batch: batch, y0)
        // The pointer form with a caller scratch, on two threads.
        var y = y0
        var scratch = [Float](repeating: .nan, count: corr.scratchCount(batch: batch))
        try x.withUnsafeBufferPointer { px in
            try y.withUnsafeMutableBufferPointer { py in
                try scratch.withUnsafeMutableBufferPointer { ps in
                    try corr.apply(px, batch: batch, into: py, scratch: ps, context: ComputeContext(threads: 2))
                }
            }
        }
        for (a, e) in zip(y, expected) { #expect(abs(Double(a) - e) <= 1e-5 * max(1, abs(e)), "\(a) vs \(e)") }
        // The array form agrees bit for bit with the pointer form.
        var y2 = y0
        try corr.apply(x, batch: batch, to: &y2)
        #expect(y2 == y)
        // Short buffers throw instead of crashing.
        var short = [Float](repeating: 0, count: batch * 24 - 1)
        #expect(throws: TernaryKitError.self) { try corr.apply(x, batch: batch, to: &short) }
        #expect(throws: TernaryKitError.self) { try corr.apply(Array(x.dropLast()), batch: batch, to: &y2) }
        var tinyScratch = [Float](repeating: 0, count: corr.scratchCount(batch: batch) - 1)
        #expect(throws: TernaryKitError.self) {
            try x.withUnsafeBufferPointer { px in
                try y2.withUnsafeMutableBufferPointer { py in
                    try tinyScratch.withUnsafeMutableBufferPointer { ps in try corr.apply(px, batch: batch, into: py, scratch: ps) }
                }
            }
        }
        #expect(throws: TernaryKitError.self) { try corr.apply(x, batch: 0, to: &y2) }
    }

    /// γT + A·B at full rank reproduces W, and applying it to x matches W·x.
    @Test func fullRankCorrectionReconstructsW() throws {
        let c = try #require(TernarizeFixture.cases.first { $0.name == "gauss_40x24" })
        let (t, k) = try Ternarization.ternarize(c.weights, outFeatures: 40, inFeatures: 24, rank: 24)
        let ab = k.correction.denseProduct()
        let w = c.weights
        for i in 0..<w.count {
            let rebuilt = t.gamma * Float(t.matrix.values[i]) + ab[i]
            #expect(abs(rebuilt - w[i]) <= 1e-5 * 4, "entry \(i): \(rebuilt) vs \(w[i])")
        }
        let rebuiltCorrection = try LowRankCorrection(outFeatures: 40, inFeatures: 24, rank: 24, a: k.correction.a, b: k.correction.b)
        #expect(rebuiltCorrection == k.correction)
    }
}
