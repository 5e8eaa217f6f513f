// One benchmark per (backend, 2B4T layer shape, batch), Int8 path, one thread: the products the
// BitNet model spends its time in. Backends come from the registry, so new ones are covered.
import Backends
import Benchmark
import TensorCore

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(
        metrics: [.wallClock, .throughput],
        warmupIterations: 3,
        scalingFactor: .one,
        maxDuration: .seconds(2),
        maxIterations: 2_000,
        thresholds: [.wallClock: .relaxed]
    )
    let shapes = [(2560, 2560), (6912, 2560), (2560, 6912)]
    for backend in BackendRegistry.all where backend.name != "naive" {
        for (out, inn) in shapes {
            for batch in [1, 64] {
                var rng = SeededGenerator(seed: UInt64(out &* 31 &+ inn))
                guard let w = try? TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &rng),
                      let kernel = try? backend.prepare(w, context: .singleThreaded) else { continue }
                let x = rng.int8s(count: batch * inn)
                Benchmark("\(backend.name) \(out)x\(inn) batch \(batch)") { benchmark in
                    var y = [Int32](repeating: 0, count: batch * out)
                    x.withUnsafeBufferPointer { xp in
                        y.withUnsafeMutableBufferPointer { yp in
                            for _ in benchmark.scaledIterations {
                                kernel.apply(xp, batch: batch, into: yp)
                            }
                        }
                    }
                    blackHole(y)
                }
            }
        }
    }
}
