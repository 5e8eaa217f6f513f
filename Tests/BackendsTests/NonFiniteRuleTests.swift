import Backends
import Testing
import TensorCore

/// The Float path's rule for non-finite and overflowing inputs (`NonFiniteRows`), on every
/// backend: a poisoned row gives all-NaN outputs, the other rows of the batch are unaffected.
@Suite struct NonFiniteRuleTests {
    static let names = BackendRegistry.names

    /// Bad values and where they go: one poisoned row among finite ones.
    static let badValues: [Float] = [.nan, .infinity, -.infinity, 3e38, -3e38]

    @Test(arguments: names)
    func poisonedRowsAreAllNaNAndOthersFinite(backend name: String) throws {
        var rng = SeededGenerator(seed: 11)
        for (out, n) in [(37, 300), (8, 16), (65, 63)] {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: n, scale: 0.75, using: &rng)
            let kernel = try BackendRegistry.backend(named: name).prepare(w, context: .singleThreaded)
            let reference = try NaiveBackend().prepare(w, context: .singleThreaded)
            for bad in NonFiniteRuleTests.badValues {
                for position in [0, n / 2, n - 1] {
                    let batch = 4
                    var x = rng.floats(count: batch * n)
                    let poisoned = 2
                    x[poisoned * n + position] = bad
                    let y = try kernel.apply(x)
                    let yRef = try reference.apply(x)
                    for b in 0..<batch {
                        let row = y[(b * out)..<((b + 1) * out)]
                        if b == poisoned {
                            #expect(row.allSatisfy { $0.isNaN }, "\(name) \(out)x\(n): \(bad) at \(position) gives \(Array(row.prefix(4)))")
                        } else {
                            #expect(row.allSatisfy { $0.isFinite }, "\(name): row \(b) of a batch with one poisoned row")
                            for o in 0..<out {
                                #expect(abs(y[b * out + o] - yRef[b * out + o]) <= 1e-3 * Float(n),
                                        "\(name) row \(b) output \(o)")
                            }
                        }
                    }
                }
            }
        }
    }

    @Test(arguments: names)
    func batchOfOneAndLargeFiniteValuesBelowTheBound(backend name: String) throws {
        var rng = SeededGenerator(seed: 12)
        let n = 64, out = 9
        let w = try TernaryMatrix.random(outFeatures: out, inFeatures: n, using: &rng)
        let kernel = try BackendRegistry.backend(named: name).prepare(w, context: .singleThreaded)
        // Large but safe: 4 · 64 · 1e35 ≈ 2.6e37 < Float.greatestFiniteMagnitude.
        var x = rng.floats(count: n)
        x[5] = 1e35
        #expect(try kernel.apply(x).allSatisfy { $0.isFinite }, "\(name)")
        x[5] = .nan
        #expect(try kernel.apply(x).allSatisfy { $0.isNaN }, "\(name)")
    }

    @Test func scanFindsEveryPosition() {
        for count in [1, 15, 16, 17, 33, 100] {
            for i in 0..<count {
                var row = [Float](repeating: 1, count: count)
                row[i] = .nan
                #expect(row.withUnsafeBufferPointer { NonFiniteRows.isPoisoned($0.baseAddress!, count: count, scale: 1) })
                row[i] = -.infinity
                #expect(row.withUnsafeBufferPointer { NonFiniteRows.isPoisoned($0.baseAddress!, count: count, scale: 1) })
                row[i] = -2
                #expect(!row.withUnsafeBufferPointer { NonFiniteRows.isPoisoned($0.baseAddress!, count: count, scale: 1) })
            }
        }
    }
}
