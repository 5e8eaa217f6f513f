// Ternarize: a float layer turned into a ternary BitLinear, with and without a low-rank Float
// correction of what ternarization loses, and what the correction costs.
//
//   swift run -c release Ternarize                                     # 512x1024, ranks 0 4 16 64
//   swift run -c release Ternarize --shape 2560x6912 --batches 1,64 --ranks 0,16,64
//
// 1. W (Gaussian floats) → γ·T by BitNet's absmean rule; ‖W − γT‖/‖W‖ is about 0.52.
// 2. The best rank-r approximation A·B of the residual W − γT (truncated SVD through LAPACKE)
//    buys some of that back: W ≈ γ·T + A·B.
// 3. A BitLinear with `setCorrection` computes y = γ·T·x + A·(B·x): the ternary product on the
//    chosen backend, plus two thin BLAS products. We compare y with the float product W·x.
// 4. The cost: 4·r·(out + in) bytes next to the 2-bit weight's out·in/4, and the time of the
//    two thin products next to the ternary one.
import ArgumentParser
import Backends
import Foundation
import Layers
import TensorCore

struct Ternarize: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "Ternarize",
        abstract: "Ternarize a float layer: error and output difference against the rank of a low-rank correction, and its cost.")

    @Option(help: "The weight's shape OUTxIN.") var shape = "512x1024"
    @Option(help: "Comma-separated ranks of the correction (0: none).") var ranks = "0,4,16,64"
    @Option(help: "Comma-separated batch sizes to time.") var batches = "1,8"
    @Option(help: "Backend of the ternary product.") var backend = "bitpacked"
    @Option(help: "Thread count (products and SVD).") var threads = 1
    @Option(help: "Timed repetitions per batch size (the median is shown).") var `repeat` = 20
    @Option(help: "Seed of the random weights and inputs.") var seed: UInt64 = 1

    /// (out, in) from `--shape`.
    var dimensions: (out: Int, in: Int) {
        let parts = shape.lowercased().split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let o = Int(parts[0]), let i = Int(parts[1]) else { return (0, 0) }
        return (o, i)
    }

    static func list(_ text: String, _ flag: String, minimum: Int) throws -> [Int] {
        let values = text.split(separator: ",", omittingEmptySubsequences: false).map { Int($0.trimmingCharacters(in: .whitespaces)) }
        guard !values.isEmpty, values.allSatisfy({ $0 != nil && $0! >= minimum && $0! <= 1 << 16 }) else {
            throw ValidationError("--\(flag) \"\(text)\" is not a comma-separated list of integers from \(minimum) to 65536")
        }
        return values.map { $0! }
    }

    func validate() throws {
        let (o, i) = dimensions
        guard (1...65536).contains(o), (1...65536).contains(i) else {
            throw ValidationError("--shape \"\(shape)\" is not OUTxIN with sizes from 1 to 65536, e.g. 512x1024")
        }
        _ = try Self.list(ranks, "ranks", minimum: 0)
        _ = try Self.list(batches, "batches", minimum: 1)
        guard (1...1024).contains(threads) else { throw ValidationError("--threads \(threads) is not an integer from 1 to 1024") }
        guard (1...100_000).contains(`repeat`) else { throw ValidationError("--repeat \(`repeat`) is not an integer from 1 to 100000") }
        do { _ = try BackendRegistry.backend(named: backend) } catch { throw ValidationError("--backend: \(error)") }
    }

    /// `--help` prints the usage (exit 0); a bad argument, or an error thrown by `run()`, ends in
    /// one `error: ...` line on stderr and exit status 1.
    static func main() {
        do { var command = try parseAsRoot(); try command.run() } catch {
            if exitCode(for: error) == .success { print(fullMessage(for: error)); Foundation.exit(0) }
            FileHandle.standardError.write(Data("error: \(message(for: error))\n".utf8)); Foundation.exit(1)
        }
    }

    /// `y = W · x` for `rows` rows, in Double (the float layer we replace).
    static func floatProduct(_ w: [Float], _ x: [Float], out: Int, in n: Int, rows: Int) -> [Double] {
        var y = [Double](repeating: 0, count: rows * out)
        w.withUnsafeBufferPointer { pw in
            x.withUnsafeBufferPointer { px in
                for r in 0..<rows {
                    for o in 0..<out {
                        var s = 0.0
                        for i in 0..<n { s += Double(pw[o * n + i]) * Double(px[r * n + i]) }
                        y[r * out + o] = s
                    }
                }
            }
        }
        return y
    }

    /// Median seconds of `body` over `count` runs (after one warm-up run).
    static func median(_ count: Int, _ body: () throws -> Void) rethrows -> Double {
        try body()
        var times: [Double] = []
        for _ in 0..<count {
            let t0 = MonotonicClock.seconds()
            try body()
            times.append(MonotonicClock.seconds() - t0)
        }
        return times.sorted()[times.count / 2]
    }

    func run() throws {
        let (out, inn) = dimensions
        let rankList = try Self.list(ranks, "ranks", minimum: 0)
        let batchList = try Self.list(batches, "batches", minimum: 1)
        let context = try ComputeContext(threads: threads)
        let chosen = try BackendRegistry.backend(named: backend)
        var rng = SeededGenerator(seed: seed)
        let w = rng.gaussians(count: out * inn, standardDeviation: 0.02)
        let errorRows = min(4, batchList.max()!)
        let probe = rng.gaussians(count: errorRows * inn)
        let reference = Self.floatProduct(w, probe, out: out, in: inn, rows: errorRows)
        let referenceNorm = reference.reduce(0) { $0 + $1 * $1 }.squareRoot()
        print("W: \(out)x\(inn) Gaussian floats (\(Self.mb(4 * out * inn)) as float32); backend \(chosen.name), \(threads) thread(s)")
        print("y = γ·T·x + A·(B·x) against the float product W·x on \(errorRows) input row(s); times are medians of \(`repeat`)\n")

        var header = "rank  ‖W−γT−AB‖/‖W‖  ‖y−Wx‖/‖Wx‖  weight bytes   fit s"
        for b in batchList { header += "  " + String(repeating: " ", count: max(0, 13 - "batch \(b) µs".count)) + "batch \(b) µs" }
        print(header)
        var baseline: [Double] = []
        var failures: [String] = []
        var previous: (rank: Int, error: Double)?
        var workspace: Workspace? = Workspace()
        for r in rankList {
            let t0 = MonotonicClock.seconds()
            let (ternary, correction) = try Ternarization.ternarize(w, outFeatures: out, inFeatures: inn, rank: r, context: context)
            let svdSeconds = MonotonicClock.seconds() - t0
            if correction.clamped { print("(rank \(r) lowered to \(correction.rank) = min(out, in))") }
            let layer = try BitLinear(weight: ternary.matrix, backend: chosen, context: context, workspace: workspace)
            try layer.setCorrection(correction.correction)
            // The output difference on the probe rows.
            let y = try layer(probe)
            // Check: the layer is the plain ternary layer plus A·(B·x), and a higher rank never
            // leaves a larger weight error.
            var expected = try BitLinear(weight: ternary.matrix, backend: chosen, context: context)(probe)
            try correction.correction.apply(probe, batch: errorRows, to: &expected, context: context)
            if zip(y, expected).contains(where: { abs($0 - $1) > 1e-4 * max(1, abs($1)) }) {
                failures.append("rank \(r): the corrected layer differs from γ·T·x + A·(B·x)")
            }
            if let p = previous, correction.rank >= p.rank, correction.correctedRelativeError > p.error + 1e-6 {
                failures.append("rank \(correction.rank) leaves more error than rank \(p.rank)")
            }
            previous = (correction.rank, correction.correctedRelativeError)
            let diff = zip(y, reference).reduce(0.0) { $0 + (Double($1.0) - $1.1) * (Double($1.0) - $1.1) }.squareRoot()
            let bytes = Self.mb(layer.parameterBytes)
            var line = String(format: "%4d  %14.4f  %11.4f  ", correction.rank, correction.correctedRelativeError, diff / referenceNorm)
                + bytes + String(repeating: " ", count: max(0, 12 - bytes.count)) + String(format: "  %6.2f", svdSeconds)
            // Speed per batch size.
            for (k, b) in batchList.enumerated() {
                let x = rng.gaussians(count: b * inn)
                var yb = [Float](repeating: 0, count: b * out)
                let seconds = try x.withUnsafeBufferPointer { px in
                    try yb.withUnsafeMutableBufferPointer { py in
                        try Self.median(`repeat`) { try layer(px, rows: b, into: py) }
                    }
                }
                if r == rankList.first { baseline.append(seconds) }
                let slowdown = seconds / baseline[k]
                line += String(format: "  %7.1f", seconds * 1e6) + (r == rankList.first ? "      " : String(format: " %4.2fx", slowdown))
            }
            print(line)
            workspace = layer.workspace
        }
        print("""

            Bytes: the prepared ternary kernel (\(chosen.name)) plus 4·r·(out + in) for A and B; the slowdown is \
            against the first rank listed. The gain per rank depends on the spectrum of W − γT: for random \
            weights it is flat, so each rank buys little; the error after rank r is sqrt(Σ_{i>r} σᵢ²)/‖W‖.
            """)
        guard failures.isEmpty else {
            for f in failures { print("FAILED: \(f)") }
            Foundation.exit(1)
        }
        print("checks passed: each corrected layer equals γ·T·x + A·(B·x); the error does not grow with the rank")
    }

    static func mb(_ bytes: Int) -> String {
        bytes >= 1 << 20 ? String(format: "%.2f MiB", Double(bytes) / Double(1 << 20)) : String(format: "%.1f KiB", Double(bytes) / 1024)
    }
}

Ternarize.main()
