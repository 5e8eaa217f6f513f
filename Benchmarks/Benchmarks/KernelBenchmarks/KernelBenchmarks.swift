// One benchmark per (backend, 2B4T layer shape, batch), Int8 path, one thread: the products the
// BitNet model spends its time in. Backends come from the registry, so new ones are covered.
//
// The "alloc ..." benchmarks count heap allocations (`.mallocCountTotal`, through the
// MallocInterposer trait) per product of every backend's pointer forms, both paths, batch 1 and
// 64, one and two threads, on the 2B4T 2560×6912 shape: 0 per iteration in steady state (the
// warm-up iterations grow the per-thread scratch). Run only those with
//   swift package --allow-writing-to-package-directory benchmark --filter 'alloc.*'
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
    allocationBenchmarks()
}

/// Heap allocations per product, steady state (see the header comment).
func allocationBenchmarks() {
    let (out, inn) = (2560, 6912)
    var rng = SeededGenerator(seed: 0xA110C)
    guard let w = try? TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &rng) else { return }
    let xi = rng.int8s(count: 64 * inn)
    let xf = rng.floats(count: 64 * inn)
    for backend in BackendRegistry.all {
        for threads in [1, 2] {
            guard let context = try? ComputeContext(threads: threads),
                  let kernel = try? backend.prepare(w, context: context) else { continue }
            for batch in [1, 64] {
                let configuration = Benchmark.Configuration(
                    metrics: [.mallocCountTotal, .wallClock],
                    warmupIterations: 3,
                    scalingFactor: .one,
                    maxDuration: .seconds(1),
                    maxIterations: backend.name == "naive" ? 5 : 200,
                    thresholds: [.mallocCountTotal: .strict])
                Benchmark("alloc \(backend.name) int8 batch \(batch) threads \(threads)",
                          configuration: configuration) { benchmark in
                    var y = [Int32](repeating: 0, count: batch * out)
                    xi.withUnsafeBufferPointer { xp in
                        let x = UnsafeBufferPointer(rebasing: xp[0..<(batch * inn)])
                        y.withUnsafeMutableBufferPointer { yp in
                            benchmark.startMeasurement()
                            for _ in benchmark.scaledIterations { kernel.apply(x, batch: batch, into: yp) }
                            benchmark.stopMeasurement()
                        }
                    }
                    blackHole(y)
                }
                Benchmark("alloc \(backend.name) float batch \(batch) threads \(threads)",
                          configuration: configuration) { benchmark in
                    var y = [Float](repeating: 0, count: batch * out)
                    xf.withUnsafeBufferPointer { xp in
                        let x = UnsafeBufferPointer(rebasing: xp[0..<(batch * inn)])
                        y.withUnsafeMutableBufferPointer { yp in
                            benchmark.startMeasurement()
                            for _ in benchmark.scaledIterations { kernel.apply(x, batch: batch, into: yp) }
                            benchmark.stopMeasurement()
                        }
                    }
                    blackHole(y)
                }
            }
        }
    }
}
