import Backends
import Foundation
import TensorCore


/// Which element path a benchmark times.
enum ProductPath: String, CaseIterable {
    case int8, float
}

/// One timed configuration and its result (a row of the table, a JSON line).
struct BenchMeasurement {
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

    /// One JSON object with the fields documented in docs/BENCHMARKS.md.
    var jsonLine: String { get throws { try JSONOutput.line(self) } }
}

extension BenchMeasurement: Encodable {
    enum CodingKeys: String, CodingKey {
        case backend, out, `in`, batch, threads, k, regime, path
        case medianMicros = "median_us", minMicros = "min_us", maxMicros = "max_us", runs
        case weightsPerSecond = "weights_per_s", bitsPerWeight = "storage_bits_per_weight", prepareMillis = "prepare_ms"
    }

    /// Every field always present: `k` is null without a block height, times are rounded to 6
    /// significant digits and non-finite ones are null.
    func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(backend, forKey: .backend)
        try c.encode(out, forKey: .out)
        try c.encode(self.in, forKey: .in)
        try c.encode(batch, forKey: .batch)
        try c.encode(threads, forKey: .threads)
        try c.encode(k, forKey: .k)
        try c.encode(regime, forKey: .regime)
        try c.encode(path.rawValue, forKey: .path)
        try c.encode(sixDigits(medianMicros), forKey: .medianMicros)
        try c.encode(sixDigits(minMicros), forKey: .minMicros)
        try c.encode(sixDigits(maxMicros), forKey: .maxMicros)
        try c.encode(runs, forKey: .runs)
        try c.encode(sixDigits(weightsPerSecond), forKey: .weightsPerSecond)
        try c.encode(sixDigits(bitsPerWeight), forKey: .bitsPerWeight)
        try c.encode(sixDigits(prepareMillis), forKey: .prepareMillis)
    }
}

/// A failure to report instead of a time (a backend that cannot prepare, or disagrees with naive).
struct BenchFailure: Error, CustomStringConvertible {
    let backend: String
    let reason: String
    var description: String { "\(backend): \(reason)" }
}


/// Where the weights live while they are timed.
enum MemoryRegime: String, CaseIterable {
    /// One prepared matrix, called again and again: it stays in cache when it fits.
    case cache
    /// A rotation over enough distinct prepared matrices (> 1 GiB of the backend's storage, beyond any L3 seen on these hosts) that
    /// every call streams its weights from DRAM.
    case dram

    /// Bytes the rotation must exceed.
    static let dramRotationBytes = 1 << 30
}

/// A backend as the benchmark runs it: possibly a k-variant of a tunable one.
struct BenchBackend {
    init(backend: any LinearBackend, k: Int? = nil) { self.backend = backend; self.k = k }
    var backend: any LinearBackend
    /// The requested block height, for k sweeps (nil: the backend's default).
    var k: Int?
}

/// One configuration to measure.
struct BenchConfiguration {
    var shape: MatrixShape
    var batch: Int
    var threads: Int
    var regime: MemoryRegime
    var binary = false
}

/// Runs the side-by-side measurements of `ternary bench` for one configuration.
struct BenchmarkRunner {
    var repeatCount: Int
    var warmup: Int
    var budgetSeconds: Double
    var path: ProductPath
    var seed: UInt64

    /// Measures every backend on one configuration. Each backend's output is first compared
    /// with the naive backend's; a backend that disagrees is reported as a failure, not timed.
    func run(_ config: BenchConfiguration, backends: [BenchBackend], progress: ((String) -> Void)? = nil)
        throws -> (measurements: [BenchMeasurement], failures: [BenchFailure])
    {
        let shape = config.shape, batch = config.batch
        var rng = SeededGenerator(seed: seed ^ UInt64(shape.out &* 31 &+ shape.in))
        let weights = try TernaryMatrix.random(outFeatures: shape.out, inFeatures: shape.in,
                                               zeroFraction: config.binary ? 0.5 : 1.0 / 3.0,
                                               binary: config.binary, using: &rng)
        let context = try ComputeContext(threads: config.threads)
        let xInt = rng.int8s(count: batch * shape.in)
        let xFloat = rng.floats(count: batch * shape.in)

        // The reference output, from the naive backend.
        let reference = try NaiveBackend().prepare(weights, context: context)
        let refInt = try reference.apply(xInt)
        let refFloat = path == .float ? try reference.apply(xFloat) : []
        let tolerances = path == .float ? KernelCheck.floatTolerances(weights: weights, x: xFloat, batch: batch) : []

        var results: [BenchMeasurement] = []
        var failures: [BenchFailure] = []
        for entry in backends {
            let backend = entry.backend
            let label = backend.name + (entry.k.map { " k=\($0)" } ?? "")
            progress?("\(label) \(shape) batch \(batch) threads \(config.threads) \(config.regime.rawValue)")
            let t0 = MonotonicClock.seconds()
            let kernel: any LinearKernel
            do {
                kernel = try backend.prepare(weights, context: context)
            } catch {
                failures.append(BenchFailure(backend: label, reason: "cannot prepare \(shape): \(error)"))
                continue
            }
            let prepareMillis = (MonotonicClock.seconds() - t0) * 1e3

            // Check before timing.
            if let m = KernelCheck.firstMismatch(try kernel.apply(xInt), refInt, outFeatures: shape.out) {
                failures.append(BenchFailure(backend: label, reason: "Int8 path differs from naive at \(m)"))
                continue
            }
            if path == .float, let m = KernelCheck.firstMismatch(
                try kernel.apply(xFloat), refFloat, tolerances: tolerances, outFeatures: shape.out)
            {
                failures.append(BenchFailure(backend: label, reason: "Float path differs from naive at \(m)"))
                continue
            }

            var kernels = [kernel]
            if config.regime == .dram {
                // Distinct matrices (rows rotated, so contents and storage differ) until the
                // rotation exceeds the DRAM threshold.
                let count = min(256, MemoryRegime.dramRotationBytes / max(1, kernel.storageBytes) + 2)
                for i in 1..<count {
                    let shift = (i * 7919 % shape.out) * shape.in
                    let values = Array(weights.values[shift...] + weights.values[..<shift])
                    let variant = try TernaryMatrix(outFeatures: shape.out, inFeatures: shape.in,
                                                    values: values, scale: weights.scale)
                    kernels.append(try backend.prepare(variant, context: context))
                }
            }

            let times = time(kernels: kernels, batch: batch, xInt: xInt, xFloat: xFloat)
            let sorted = times.sorted()
            results.append(BenchMeasurement(
                backend: backend.name, out: shape.out, in: shape.in, batch: batch, threads: config.threads,
                k: kernel.k, regime: config.regime.rawValue, path: path,
                medianMicros: median(of: sorted) * 1e6, minMicros: sorted.first! * 1e6, maxMicros: sorted.last! * 1e6,
                runs: sorted.count, bitsPerWeight: kernel.storageBitsPerWeight, prepareMillis: prepareMillis))
        }
        return (results, failures)
    }

    /// Times `repeatCount` calls (fewer, but at least 3, when they would exceed the budget),
    /// cycling through `kernels` (one kernel: the cache regime).
    private func time(kernels: [any LinearKernel], batch: Int, xInt: [Int8], xFloat: [Float]) -> [Double] {
        let out = kernels[0].outFeatures
        let yInt = UnsafeMutableBufferPointer<Int32>.allocate(capacity: batch * out)
        let yFloat = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * out)
        let xi = UnsafeMutableBufferPointer<Int8>.allocate(capacity: xInt.count)
        let xf = UnsafeMutableBufferPointer<Float>.allocate(capacity: xFloat.count)
        defer { yInt.deallocate(); yFloat.deallocate(); xi.deallocate(); xf.deallocate() }
        _ = xi.initialize(from: xInt)
        _ = xf.initialize(from: xFloat)
        let path = self.path
        var next = 0
        func call() {
            let kernel = kernels[next]
            next = next + 1 == kernels.count ? 0 : next + 1
            switch path {
            case .int8: kernel.apply(UnsafeBufferPointer(xi), batch: batch, into: yInt)
            case .float: kernel.apply(UnsafeBufferPointer(xf), batch: batch, into: yFloat)
            }
        }
        var times: [Double] = []
        let start = MonotonicClock.seconds()
        for _ in 0..<max(warmup, kernels.count > 1 ? kernels.count : 0) {
            call()
            if MonotonicClock.seconds() - start > budgetSeconds / 4 { break }
        }
        let begin = MonotonicClock.seconds()
        for i in 0..<repeatCount {
            let t0 = MonotonicClock.seconds()
            call()
            let t1 = MonotonicClock.seconds()
            times.append(t1 - t0)
            if i >= 2 && t1 - begin > budgetSeconds { break }
        }
        return times
    }

}

/// The median of the non-NaN values (NaN when there are none). Used by every timing command.
func median(of values: [Double]) -> Double {
    let s = values.filter { !$0.isNaN }.sorted()
    guard !s.isEmpty else { return .nan }
    return s.count % 2 == 1 ? s[s.count / 2] : (s[s.count / 2 - 1] + s[s.count / 2]) / 2
}
