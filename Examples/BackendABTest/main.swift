// Backend A/B test: the same ternary weight on every registered backend, outputs compared
// with the naive reference, times printed. (Grows with the examples issue.)
import Backends
import Foundation
import TensorCore

var rng = SeededGenerator(seed: 2026)
let out = 512, inn = 1024
let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &rng)
let x = rng.int8s(count: inn)
let reference = try NaiveBackend().prepare(w, context: .singleThreaded).apply(x)

for backend in BackendRegistry.all {
    let kernel = try backend.prepare(w, context: .singleThreaded)
    let start = Date()
    var y: [Int32] = []
    for _ in 0..<10 { y = try kernel.apply(x) }
    let micros = Date().timeIntervalSince(start) / 10 * 1e6
    let same = y == reference ? "identical to naive" : "DIFFERS from naive"
    print("\(backend.name.padding(toLength: 10, withPad: " ", startingAt: 0)) \(String(format: "%8.1f", micros)) µs  \(same)")
}
