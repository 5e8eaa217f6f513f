// Backend A/B test: one BitLinear layer, every registered backend, the same input.
//
//   swift run BackendABTest                                     # 512x1024, batch 1, 1 thread
//   swift run -c release BackendABTest --shape 2560x6912 --batch 8 --threads 2 --repeat 50
//   swift run BackendABTest --help                              # the options
//
// What it shows:
// - a `BitLinear` keeps its `TernaryMatrix`, so `prepare(backend:context:)` swaps the product
//   implementation at run time without touching the weights;
// - BitNet's BitLinear quantizes activations to Int8 and multiplies exactly in integers, so every
//   backend gives *bit-identical* Float outputs (only the speed and the memory differ);
// - how fast each backend is on your shape, and how many bits per weight it keeps.
// Timings of a debug build (`swift run` without `-c release`) say little: use release for numbers.
import ArgumentParser
import Backends
import Foundation
import Layers
import TensorCore

/// The command line.
struct BackendABTest: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "BackendABTest", abstract: "One BitLinear layer on every backend: speed, memory, identical outputs.")

    /// `OUTxIN`, e.g. `512x1024`, each from 1 to 2^20.
    struct Shape: ExpressibleByArgument {
        var out: Int, inn: Int
        init(out: Int, inn: Int) { (self.out, self.inn) = (out, inn) }
        init?(argument: String) {
            let sizes = argument.split(separator: "x", omittingEmptySubsequences: false).map { Int($0) ?? 0 }
            guard sizes.count == 2, sizes.allSatisfy({ (1...1 << 20).contains($0) }) else { return nil }
            (out, inn) = (sizes[0], sizes[1])
        }
        var defaultValueDescription: String { "\(out)x\(inn)" }
    }

    @Option(help: ArgumentHelp("The weight's shape, OUTxIN.", valueName: "OUTxIN")) var shape = Shape(out: 512, inn: 1024)
    @Option(help: "Rows of activations.") var batch = 1
    @Option(help: "Threads of the product.") var threads = 1
    @Option(name: .customLong("repeat"), help: ArgumentHelp("Timed calls per backend.", valueName: "repeat")) var repeats = 20

    func validate() throws {
        for (name, value) in [("batch", batch), ("threads", threads), ("repeat", repeats)] where !(1...1 << 20).contains(value) {
            throw ValidationError("--\(name) \(value) is not an integer from 1 to \(1 << 20)")
        }
    }

    /// `--help` prints the usage (exit 0); a bad argument, or an error thrown by `run()`, ends in
    /// one `error: ...` line on stderr and exit status 1.
    static func main() {
        do { var command = try parseAsRoot(); try command.run() } catch {
            if exitCode(for: error) == .success { print(fullMessage(for: error)); Foundation.exit(0) }
            FileHandle.standardError.write(Data("error: \(message(for: error))\n".utf8)); Foundation.exit(1)
        }
    }

    func run() throws {
        let (out, inn) = (shape.out, shape.inn)
        let context = try ComputeContext(threads: threads)

        // MARK: The layer and the input

        var rng = SeededGenerator(seed: 2026)
        // A BitNet-like weight: about a third each of -1, 0, +1, with the absmean scale γ.
        let weight = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, scale: 0.02, using: &rng)
        let layer = try BitLinear(weight: weight, backend: NaiveBackend(), context: context)
        let x = rng.gaussians(count: batch * inn)          // Float activations, batch × in, row-major

        // The reference: the naive backend's outputs.
        let reference = try layer(x)

        // MARK: Every backend

        /// Median, min and max seconds of `repeats` calls of the layer's pointer form (no allocation).
        func time(_ layer: BitLinear) throws -> (median: Double, min: Double, max: Double) {
            var y = [Float](repeating: 0, count: batch * out)
            var seconds: [Double] = []
            let clock = ContinuousClock()
            try x.withUnsafeBufferPointer { xp in
                try y.withUnsafeMutableBufferPointer { yp in
                    try layer(xp, rows: batch, into: yp)                     // warm-up (caches, page faults)
                    for _ in 0..<max(1, repeats) {
                        let d = try clock.measure { try layer(xp, rows: batch, into: yp) }
                        seconds.append(Double(d.components.attoseconds) * 1e-18 + Double(d.components.seconds))
                    }
                }
            }
            seconds.sort()
            return (seconds[seconds.count / 2], seconds.first!, seconds.last!)
        }

        print("BitLinear \(out)x\(inn), batch \(batch), \(context.threads) thread(s), median of \(repeats) runs")
        print("backend    k    bits/w  median µs   min µs   max µs   Gw/s  vs naive  output vs naive")
        print(String(repeating: "-", count: 88))
        var naiveMedian = Double.nan
        var allIdentical = true
        for backend in BackendRegistry.all {
            try layer.prepare(backend: backend, context: context)        // re-prepares the same weight
            let y = try layer(x)
            // Bit-for-bit comparison (NaN-safe): the whole point of an exact integer product.
            let identical = y.count == reference.count && zip(y, reference).allSatisfy { $0.bitPattern == $1.bitPattern }
            allIdentical = allIdentical && identical
            let t = try time(layer)
            if backend.name == "naive" { naiveMedian = t.median }
            let k = try layer.kernel().k.map(String.init) ?? "-"
            let weightsPerSecond = Double(out * inn * batch) / t.median / 1e9
            print(backend.name.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + k.padding(toLength: 4, withPad: " ", startingAt: 0)
                  + String(format: "%7.2f %10.1f %8.1f %8.1f %6.2f %8.2fx  ",
                           try layer.kernel().storageBitsPerWeight, t.median * 1e6, t.min * 1e6, t.max * 1e6,
                           weightsPerSecond, naiveMedian / t.median)
                  + (identical ? "identical" : "DIFFERS"))
        }
        print(String(repeating: "-", count: 88))
        print("Times: the whole layer (quantize x, integer product, rescale). Gw/s: 10⁹ weights × batch rows / s.")
        print("bits/w: bytes the kernel keeps × 8 / (out·in); naive keeps Int8, blas Float32.")
        if getenv("OPENBLAS_CORETYPE") == nil {
            // OpenBLAS 0.3.21 falls back to SSE3 kernels on CPUs it does not know (`ternary bench` sets this itself).
            print("blas: if OpenBLAS does not know this CPU, set OPENBLAS_CORETYPE=SkylakeX (AVX-512) or Haswell (AVX2)")
        }
        #if DEBUG
        print("(debug build: run with `swift run -c release BackendABTest ...` for meaningful times)")
        #endif
        guard allIdentical else {
            print("FAILED: some backend's output differs from naive")
            Foundation.exit(1)
        }
        print("All \(BackendRegistry.all.count) backends give bit-identical outputs.")
    }
}

BackendABTest.main()
