import ArgumentParser
import Backends
import Foundation
import TensorCore

/// `ternary bench`: the benchmark tool. `kernels` (the default) times the backends' products;
/// `model` (with the layers) times whole-model prefill and decode.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Benchmark the backends side by side (build with -c release).",
        discussion: """
            'ternary bench' alone runs a short default: every backend on the BitNet b1.58 2B4T \
            layer shapes at batch 1 and 64, one thread. See 'ternary bench kernels --help' for \
            shapes, suites, batches, threads, memory regimes, k sweeps, JSON and plots, and \
            'ternary bench model --help' for end-to-end BitNet prefill and decode tokens/s.
            """,
        subcommands: [KernelBenchCommand.self, ModelBenchCommand.self],
        defaultSubcommand: KernelBenchCommand.self
    )
}

/// `ternary bench kernels`: side-by-side timings of the registered backends' products.
struct KernelBenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "kernels",
        abstract: "Time the backends' products side by side on random ternary (or binary) weights.",
        discussion: """
            Every backend is prepared from the same random matrix (about a third each of -1, 0, \
            +1; binary suites: half 0, half 1) and its output is compared with the naive \
            backend's before it is timed (exactly on the Int8 path). Reported: median/min/max µs \
            per product, billions of weights × batch rows per second (Gw/s), bits per weight the \
            backend keeps, preparation time, and speed relative to the first backend listed. \
            Regimes: 'cache' calls one prepared matrix again and again; 'dram' rotates over \
            distinct matrices totalling more than 1 GiB per backend (at most 256 matrices). \
            Without --shape or --suite: the bitnet-2b4t suite at batch 1 and 64.
            """
    )

    @Option(name: .customLong("shape"), help: "A weight shape OUTxIN, e.g. 4096x4096 (repeatable).")
    var shapes: [String] = []

    @Option(name: .customLong("suite"), help: ArgumentHelp("A named set of shapes (repeatable).", valueName: "name"))
    var suites: [BenchSuite] = []

    @Flag(help: "Use binary {0, 1} weights for --shape (the paper-binary suite always does).")
    var binary = false

    @Option(help: "Comma-separated backend names (default: all registered).")
    var backends: String?

    @Option(name: .customLong("batch"), help: "Activation rows per product (repeatable; default 1, or 1 and 64 without --shape/--suite).")
    var batches: [Int] = []

    @Option(name: .customLong("threads"), help: "Thread count (repeatable; default 1).")
    var threadCounts: [Int] = []

    @Option(name: .customLong("variant"), help: ArgumentHelp(
        "Force a bitpacked kernel variant: amx, avx512vnni, avx2 or portable (repeatable: one row per variant; other backends unaffected; default: the best this CPU supports).",
        valueName: "name"))
    var variants: [String] = []

    @Option(name: .customLong("regime"), help: "Memory regime, cache or dram (repeatable; default cache).")
    var regimes: [MemoryRegime] = []

    @Option(name: .customLong("k"), help: "Block height k for rsr/rsr++ (repeatable: one row per k, a k sweep; default: their own rule).")
    var ks: [Int] = []

    @Option(name: .customLong("rsr-form"), help: "Ternary index form of rsr/rsr++: fused (one base-3 index, the default) or two-part (B⁺ and B⁻, the paper's).")
    var rsrForm: RSRFormChoice = .fused

    @Option(name: .customLong("repeat"), help: "Timed runs per measurement (fewer, at least 3, when --budget runs out).")
    var repeatCount: Int = 20

    @Option(help: "Untimed warm-up runs per measurement.")
    var warmup: Int = 2

    @Option(help: "Seconds of timed runs per measurement, at most (after the first 3 runs).")
    var budget: Double = 1.0

    @Option(help: "Which product to time: int8 (Int8 activations, exact Int32 results; the BitNet path) or float.")
    var path: ProductPath = .int8

    @Option(help: "Seed of the random weights and activations.")
    var seed: UInt64 = 42

    @Flag(help: "Print one JSON object per measurement instead of the table.")
    var json = false

    @Option(help: "Write SVG charts of the results into this directory.")
    var plot: String?

    @Flag(help: "No progress line on stderr.")
    var quiet = false

    func validate() throws {
        for s in shapes {
            do { _ = try MatrixShape.parse(s) } catch { throw ValidationError("--shape: \(error)") }
        }
        if let b = batches.first(where: { $0 < 1 }) { throw ValidationError("--batch must be at least 1, got \(b)") }
        if let t = threadCounts.first(where: { $0 < 1 }) { throw ValidationError("--threads must be at least 1, got \(t)") }
        if let k = ks.first(where: { $0 < 1 || $0 > RSRIndex.maxK }) { throw ValidationError("--k must be in 1...\(RSRIndex.maxK), got \(k)") }
        if repeatCount < 1 { throw ValidationError("--repeat must be at least 1, got \(repeatCount)") }
        if warmup < 0 { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        if !(budget > 0) { throw ValidationError("--budget must be positive, got \(budget)") }
        if let list = backends {
            do { _ = try BackendRegistry.backends(list: list) } catch { throw ValidationError("--backends: \(error)") }
        }
        _ = try bitPackedVariants()
        try validateSizes()
    }

    /// The `--variant` values, checked against this CPU (empty: none forced).
    func bitPackedVariants() throws -> [BitPackedVariant] {
        do { return try variants.map(BitPackedVariant.named) } catch { throw ValidationError("--variant: \(error)") }
    }

    /// The (shape, binary) pairs to run, in order.
    func shapePlan() throws -> [(MatrixShape, Bool)] {
        var plan = try shapes.map { (try MatrixShape.parse($0), binary) }
        for s in suites { plan += s.shapes.map { ($0, s.binary) } }
        if plan.isEmpty { plan = BenchSuite.bitnet2b4t.shapes.map { ($0, false) } }
        return plan
    }

    /// Backends with the bitpacked variants, the rsr/rsr++ k sweep and index form applied.
    func backendPlan() throws -> [BenchBackend] {
        let forced = try bitPackedVariants()
        let list = (try backends.map(BackendRegistry.backends(list:)) ?? BackendRegistry.all).flatMap { b -> [any LinearBackend] in
            b is BitPackedBackend && !forced.isEmpty ? forced.map { BitPackedBackend(variant: $0) } : [b]
        }
        return RSRBackend.sweep(list, k: ks, form: rsrForm.form).map { b in
            if let rsr = b as? RSRBackend, case .fixed(let k) = rsr.kChoice { return BenchBackend(backend: b, k: k) }
            return BenchBackend(backend: b)
        }
    }

    func run() throws {
        OpenBLASCore.reexecWithBestCoreIfNeeded()
        let shapePlan = try shapePlan()
        let backendPlan = try backendPlan()
        let defaultRun = shapes.isEmpty && suites.isEmpty
        let batchList = batches.isEmpty ? (defaultRun ? [1, 64] : [1]) : batches
        let threadList = threadCounts.isEmpty ? [1] : threadCounts
        let regimeList = regimes.isEmpty ? [MemoryRegime.cache] : regimes
        let runner = BenchmarkRunner(repeatCount: repeatCount, warmup: warmup, budgetSeconds: budget,
                                     path: path, seed: seed)

        var progress = Progress(
            total: shapePlan.count * batchList.count * threadList.count * regimeList.count * backendPlan.count,
            quiet: quiet)
        var failures: [BenchFailure] = []
        var all: [BenchMeasurement] = []
        var table = ResultTable()
        for (shape, isBinary) in shapePlan {
            for batch in batchList {
                for threads in threadList {
                    for regime in regimeList {
                        let config = BenchConfiguration(shape: shape, batch: batch, threads: threads, regime: regime, binary: isBinary)
                        let (rows, failed) = try runner.run(config, backends: backendPlan) { progress.step($0) }
                        failures += failed
                        all += rows
                        if json {
                            progress.finish()
                            for row in rows { try printJSON(row) }
                            fflush(nil)
                        } else {
                            table.add(group: rows)
                        }
                        for f in failed {
                            progress.finish()
                            FileHandle.standardError.write(Data("error: \(f)\n".utf8))
                        }
                    }
                }
            }
        }
        progress.finish()
        if !json {
            print(table.render(path: runner.path))
            print("OpenBLAS core: \(OpenBLASInfo.coreName)")
        }
        if let dir = plot {
            fflush(nil)   // the table first, then the note on stderr
            let written = try BenchPlots.write(all, to: dir)
            FileHandle.standardError.write(Data("wrote \(written.count) charts to \(dir)\n".utf8))
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

/// `--rsr-form`: the ternary index form of rsr/rsr++.
enum RSRFormChoice: String, CaseIterable, ExpressibleByArgument {
    case fused
    case twoPart = "two-part"

    var form: RSRBackend.Form { self == .fused ? .fused : .twoPart }
}

extension BenchSuite: ExpressibleByArgument {}
extension MemoryRegime: ExpressibleByArgument {}
extension ProductPath: ExpressibleByArgument {}

/// The human-readable table: one group of rows per configuration, speed relative to the
/// group's first backend.
struct ResultTable {
    private var lines: [[String]] = []

    mutating func add(group: [BenchMeasurement]) {
        guard let first = group.first else { return }
        for m in group {
            lines.append([
                m.name, "\(m.out)x\(m.in)", "\(m.batch)", "\(m.threads)", m.regime, m.k.map(String.init) ?? "-",
                String(format: "%.1f", m.medianMicros), String(format: "%.1f", m.minMicros),
                String(format: "%.1f", m.maxMicros), String(format: "%.2f", m.weightsPerSecond / 1e9),
                String(format: "%.2f", m.bitsPerWeight), String(format: "%.1f", m.prepareMillis),
                String(format: "%.2fx", first.medianMicros / m.medianMicros),
            ])
        }
        lines.append([])
    }

    func render(path: ProductPath) -> String {
        let header = ["backend", "shape", "batch", "thr", "regime", "k", "median µs", "min µs", "max µs", "Gw/s", "bits/w", "prep ms", "vs first"]
        let all = [header] + lines.filter { !$0.isEmpty }
        var widths = header.map { $0.count }
        for row in all { for (i, c) in row.enumerated() { widths[i] = max(widths[i], c.count) } }
        func fmt(_ row: [String]) -> String {
            row.enumerated().map { i, c in i < 2 ? c.padding(toLength: widths[i], withPad: " ", startingAt: 0)
                : String(repeating: " ", count: widths[i] - c.count) + c }.joined(separator: "  ")
        }
        var out = ["path: \(path.rawValue) (Gw/s = 10⁹ weights × batch rows per second at the median)", fmt(header),
                   String(repeating: "-", count: widths.reduce(0, +) + 2 * (widths.count - 1))]
        for row in lines { out.append(row.isEmpty ? "" : fmt(row)) }
        while out.last == "" { out.removeLast() }
        return out.joined(separator: "\n")
    }
}
