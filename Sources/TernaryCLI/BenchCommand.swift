import ArgumentParser
import Backends
import Foundation
import TensorCore

/// `ternary bench`: side-by-side timings of the registered backends.
struct BenchCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "bench",
        abstract: "Time the backends side by side on random ternary weights (release builds only).",
        discussion: """
            Every backend is prepared from the same random ternary matrix (about a third each of \
            -1, 0, +1) and its output is compared with the naive backend's before it is timed \
            (exactly on the Int8 path). Reported: median/min/max µs per product, billions of \
            weights (× batch rows) per second, bits per weight the backend keeps, preparation \
            time, and speed relative to the first backend listed. \
            With no --shape, the BitNet b1.58 2B4T layer shapes are used.
            """
    )

    @Option(name: .customLong("shape"), help: "A weight shape OUTxIN, e.g. 4096x4096 (repeatable).")
    var shapes: [String] = []

    @Option(help: "Comma-separated backend names (default: all registered).")
    var backends: String?

    @Option(name: .customLong("batch"), help: "Activation rows per product (repeatable).")
    var batches: [Int] = []

    @Option(name: .customLong("threads"), help: "Thread count (repeatable).")
    var threadCounts: [Int] = []

    @Option(name: .customLong("repeat"), help: "Timed runs per measurement (fewer, at least 3, when --budget runs out).")
    var repeatCount: Int = 20

    @Option(help: "Untimed warm-up runs per measurement.")
    var warmup: Int = 2

    @Option(help: "Seconds of timed runs per measurement, at most (after the first 3 runs).")
    var budget: Double = 2.0

    @Option(help: "Which product to time: int8 (Int8 activations, exact Int32 results; the BitNet path) or float.")
    var path: String = "int8"

    @Option(help: "Seed of the random weights and activations.")
    var seed: UInt64 = 42

    @Option(name: .customLong("k"), help: "Block heights for rsr / rsr++ (repeatable): one row per k; without it, their default k.")
    var kValues: [Int] = []

    @Option(name: .customLong("rsr-form"), help: "Ternary index form of rsr / rsr++: fused (one base-3 index, the default) or two-part (B⁺ and B⁻, the paper's).")
    var rsrForm: String = "fused"

    @Flag(help: "Print one JSON object per measurement instead of the table.")
    var json = false

    static let defaultShapes = ["2560x2560", "640x2560", "6912x2560", "2560x6912"]

    func validate() throws {
        for s in shapes {
            do { _ = try MatrixShape.parse(s) } catch { throw ValidationError("--shape: \(error)") }
        }
        if let b = batches.first(where: { $0 < 1 }) { throw ValidationError("--batch must be at least 1, got \(b)") }
        if let t = threadCounts.first(where: { $0 < 1 }) { throw ValidationError("--threads must be at least 1, got \(t)") }
        if repeatCount < 1 { throw ValidationError("--repeat must be at least 1, got \(repeatCount)") }
        if warmup < 0 { throw ValidationError("--warmup must not be negative, got \(warmup)") }
        if !(budget > 0) { throw ValidationError("--budget must be positive, got \(budget)") }
        if ProductPath(rawValue: path) == nil { throw ValidationError("--path must be int8 or float, got '\(path)'") }
        if let k = kValues.first(where: { $0 < 1 || $0 > RSRIndex.maxK }) {
            throw ValidationError("--k must be in 1…\(RSRIndex.maxK), got \(k)")
        }
        if rsrForm != "fused" && rsrForm != "two-part" { throw ValidationError("--rsr-form must be fused or two-part, got '\(rsrForm)'") }
        if let list = backends {
            do { _ = try BackendRegistry.backends(list: list) } catch { throw ValidationError("--backends: \(error)") }
        }
    }

    func run() throws {
        OpenBLASCore.reexecWithBestCoreIfNeeded()
        let shapeList = try (shapes.isEmpty ? BenchCommand.defaultShapes : shapes).map(MatrixShape.parse)
        let backendList = RSRBackend.sweep(try backends.map(BackendRegistry.backends(list:)) ?? BackendRegistry.all,
                                           k: kValues, form: rsrForm == "two-part" ? .twoPart : .fused)
        let runner = BenchmarkRunner(repeatCount: repeatCount, warmup: warmup, budgetSeconds: budget,
                                     path: ProductPath(rawValue: path)!, seed: seed)
        var failures: [BenchFailure] = []
        var table = ResultTable()
        for shape in shapeList {
            for batch in batches.isEmpty ? [1] : batches {
                for threads in threadCounts.isEmpty ? [1] : threadCounts {
                    let (rows, failed) = try runner.run(shape: shape, batch: batch, threads: threads, backends: backendList)
                    failures += failed
                    if json {
                        rows.forEach { print($0.jsonLine) }
                    } else {
                        table.add(group: rows)
                    }
                    for f in failed { FileHandle.standardError.write(Data("error: \(f)\n".utf8)) }
                }
            }
        }
        if !json {
            print(table.render(path: runner.path))
            print("OpenBLAS core: \(OpenBLASInfo.coreName)")
        }
        if !failures.isEmpty { throw ExitCode(1) }
    }
}

/// The human-readable table: one group of rows per (shape, batch, threads), speed relative to
/// the group's first backend.
struct ResultTable {
    private var lines: [[String]] = []

    mutating func add(group: [Measurement]) {
        guard let first = group.first else { return }
        for m in group {
            lines.append([
                m.backend, "\(m.out)x\(m.in)", "\(m.batch)", "\(m.threads)", m.k.map(String.init) ?? "-",
                String(format: "%.1f", m.medianMicros), String(format: "%.1f", m.minMicros),
                String(format: "%.1f", m.maxMicros), String(format: "%.2f", m.weightsPerSecond / 1e9),
                String(format: "%.2f", m.bitsPerWeight), String(format: "%.1f", m.prepareMillis),
                String(format: "%.2fx", first.medianMicros / m.medianMicros),
            ])
        }
        lines.append([])
    }

    func render(path: ProductPath) -> String {
        let header = ["backend", "shape", "batch", "thr", "k", "median µs", "min µs", "max µs", "Gw/s", "bits/w", "prep ms", "vs first"]
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
