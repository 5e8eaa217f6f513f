import Backends
import Foundation
import TensorCore

#if canImport(Glibc)
import Glibc
#endif

/// Which element path a benchmark times.
enum ProductPath: String, CaseIterable {
    case int8, float
}

/// Where the weights live while a product is timed (shared/BENCHMARKS.md).
enum Regime: String, CaseIterable {
    /// One prepared matrix, called again and again: it stays in cache when it fits.
    case cache
    /// A rotation over enough distinct prepared matrices to exceed `dramBytes` of the backend's
    /// own storage, one per call, so every call streams its weights from memory.
    case dram

    /// The storage a DRAM rotation exceeds (256 MiB: well past this machine's caches).
    static let dramBytes = 256 << 20
    /// At most this many matrices in a rotation (tiny shapes would otherwise need millions;
    /// their rotation then stays below `dramBytes`).
    static let maxMatrices = 1024
}

/// One timed configuration and its result (a row of the table, a JSON line).
struct Measurement {
    var backend: String
    var out: Int
    var `in`: Int
    var batch: Int
    var threads: Int
    var k: Int?
    var regime: String
    var path: ProductPath
    var medianMicros: Double
    var minMicros: Double
    var maxMicros: Double
    var runs: Int
    var bitsPerWeight: Double
    var prepareMillis: Double

    /// Weights (× batch rows) processed per second at the median time.
    var weightsPerSecond: Double { Double(out) * Double(self.in) * Double(batch) / (medianMicros * 1e-6) }

    /// One JSON object, the fields of shared/BENCHMARKS.md plus `path` and `runs`.
    var jsonLine: String {
        func num(_ x: Double) -> String { x.isFinite ? String(format: "%.6g", x) : "null" }
        let kText = k.map(String.init) ?? "null"
        return "{\"backend\":\"\(backend)\",\"out\":\(out),\"in\":\(self.in),\"batch\":\(batch),\"threads\":\(threads),"
            + "\"k\":\(kText),\"regime\":\"\(regime)\",\"path\":\"\(path.rawValue)\",\"median_us\":\(num(medianMicros)),"
            + "\"min_us\":\(num(minMicros)),\"max_us\":\(num(maxMicros)),\"runs\":\(runs),"
            + "\"weights_per_s\":\(num(weightsPerSecond)),\"storage_bits_per_weight\":\(num(bitsPerWeight)),"
            + "\"prepare_ms\":\(num(prepareMillis))}"
    }
}

/// A failure to report instead of a time (a backend that cannot prepare, or disagrees with naive).
struct BenchFailure: Error, CustomStringConvertible {
    let backend: String
    let reason: String
    var description: String { "\(backend): \(reason)" }
}

/// Monotonic time in seconds.
@inline(__always) func monotonicSeconds() -> Double {
    var ts = timespec()
    clock_gettime(CLOCK_MONOTONIC, &ts)
    return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
}

/// Runs the side-by-side measurements of `ternary bench` for one shape, batch and thread count.
struct BenchmarkRunner {
    var repeatCount: Int
    var warmup: Int
    var budgetSeconds: Double
    var path: ProductPath
    var seed: UInt64
    var regime: Regime = .cache

    /// Measures every backend on one configuration. Each backend's output is first compared
    /// with the naive backend's; a backend that disagrees is reported as a failure, not timed.
    func run(shape: MatrixShape, batch: Int, threads: Int, backends: [any LinearBackend])
        throws -> (measurements: [Measurement], failures: [BenchFailure])
    {
        var rng = SeededGenerator(seed: seed ^ UInt64(shape.out &* 31 &+ shape.in))
        let weights = try TernaryMatrix.random(outFeatures: shape.out, inFeatures: shape.in, using: &rng)
        let context = try ComputeContext(threads: threads)
        let xInt = rng.int8s(count: batch * shape.in)
        let xFloat = rng.floats(count: batch * shape.in)

        // The reference output, from the naive backend.
        let reference = try NaiveBackend().prepare(weights, context: context)
        let refInt = try reference.apply(xInt)
        let refFloat = path == .float ? try reference.apply(xFloat) : []
        let tolerances = path == .float ? KernelCheck.floatTolerances(weights: weights, x: xFloat, batch: batch) : []

        var results: [Measurement] = []
        var failures: [BenchFailure] = []
        for backend in backends {
            let t0 = monotonicSeconds()
            let kernel: any LinearKernel
            do {
                kernel = try backend.prepare(weights, context: context)
            } catch {
                failures.append(BenchFailure(backend: backend.name, reason: "cannot prepare \(shape): \(error)"))
                continue
            }
            let prepareMillis = (monotonicSeconds() - t0) * 1e3

            // Check before timing.
            if let m = KernelCheck.firstMismatch(try kernel.apply(xInt), refInt, outFeatures: shape.out) {
                failures.append(BenchFailure(backend: backend.name, reason: "Int8 path differs from naive at \(m)"))
                continue
            }
            if path == .float, let m = KernelCheck.firstMismatch(
                try kernel.apply(xFloat), refFloat, tolerances: tolerances, outFeatures: shape.out)
            {
                failures.append(BenchFailure(backend: backend.name, reason: "Float path differs from naive at \(m)"))
                continue
            }

            // DRAM regime: more distinct matrices of the same shape (not checked again: same code path).
            var kernels = [kernel]
            if regime == .dram {
                let per = max(1, kernel.storageBytes)
                let count = min(Regime.maxMatrices, Regime.dramBytes / per + 1)
                var extraRNG = SeededGenerator(seed: seed &+ 0xD7A3)
                while kernels.count < count {
                    let w = try TernaryMatrix.random(outFeatures: shape.out, inFeatures: shape.in, using: &extraRNG)
                    kernels.append(try backend.prepare(w, context: context))
                }
            }

            let times = time(kernels: kernels, batch: batch, xInt: xInt, xFloat: xFloat)
            let sorted = times.sorted()
            results.append(Measurement(
                backend: backend.name, out: shape.out, in: shape.in, batch: batch, threads: threads,
                k: kernel.k, regime: regime.rawValue, path: path,
                medianMicros: median(sorted) * 1e6, minMicros: sorted.first! * 1e6, maxMicros: sorted.last! * 1e6,
                runs: sorted.count, bitsPerWeight: kernel.storageBitsPerWeight, prepareMillis: prepareMillis))
        }
        return (results, failures)
    }

    /// Times `repeatCount` calls (fewer, but at least 3, when they would exceed the budget),
    /// each on the next kernel of `kernels` in turn.
    private func time(kernels: [any LinearKernel], batch: Int, xInt: [Int8], xFloat: [Float]) -> [Double] {
        let kernel = kernels[0]
        let yInt = UnsafeMutableBufferPointer<Int32>.allocate(capacity: batch * kernel.outFeatures)
        let yFloat = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * kernel.outFeatures)
        let xi = UnsafeMutableBufferPointer<Int8>.allocate(capacity: xInt.count)
        let xf = UnsafeMutableBufferPointer<Float>.allocate(capacity: xFloat.count)
        defer { yInt.deallocate(); yFloat.deallocate(); xi.deallocate(); xf.deallocate() }
        _ = xi.initialize(from: xInt)
        _ = xf.initialize(from: xFloat)
        let path = self.path
        var next = 0
        func call() {
            let k = kernels[next]
            next = next + 1 == kernels.count ? 0 : next + 1
            switch path {
            case .int8: k.apply(UnsafeBufferPointer(xi), batch: batch, into: yInt)
            case .float: k.apply(UnsafeBufferPointer(xf), batch: batch, into: yFloat)
            }
        }
        var times: [Double] = []
        let start = monotonicSeconds()
        for _ in 0..<warmup {
            call()
            if monotonicSeconds() - start > budgetSeconds / 4 { break }
        }
        let begin = monotonicSeconds()
        for i in 0..<repeatCount {
            let t0 = monotonicSeconds()
            call()
            let t1 = monotonicSeconds()
            times.append(t1 - t0)
            if i >= 2 && t1 - begin > budgetSeconds { break }
        }
        return times
    }

    private func median(_ sorted: [Double]) -> Double {
        let n = sorted.count
        return n % 2 == 1 ? sorted[n / 2] : (sorted[n / 2 - 1] + sorted[n / 2]) / 2
    }
}
