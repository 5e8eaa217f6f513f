import ArgumentParser
import BitNet
import Foundation
import TensorCore

/// The bounds of the CLI's numeric flags and the memory a command will need, checked in
/// `validate()` before anything is allocated: every product is overflow-checked and a command
/// whose estimate exceeds physical memory is refused with the number (`SizeLimits`).
enum InputLimits {
    /// `--repeat` of `generate` and `bench model` (whole generations).
    static let maximumGenerationRepeats = 10_000
    /// `--repeat` of `bench kernels` (timed runs; `--budget` usually stops earlier).
    static let maximumTimedRuns = 1_000_000
    /// `--warmup` of `bench kernels`.
    static let maximumWarmup = 10_000
    /// `--budget` of `bench kernels`, in seconds.
    static let maximumBudget = 3600.0

    /// Throws a `ValidationError` unless `value` is in `range`.
    static func check(_ flag: String, _ value: Int, _ range: ClosedRange<Int>) throws {
        guard range.contains(value) else {
            throw ValidationError("\(flag) must be in \(range.lowerBound)...\(range.upperBound), got \(value)")
        }
    }

    /// Checks `--threads` values: 1 ... `ComputeContext.maximumThreads`.
    static func checkThreads(_ values: [Int]) throws {
        for t in values { try check("--threads", t, 1...ComputeContext.maximumThreads) }
    }

    /// `a + b` for flags, or a `ValidationError` naming them when it overflows.
    static func sum(_ a: Int, _ b: Int, _ what: String) throws -> Int {
        let (s, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw ValidationError("\(what) (\(a) + \(b)) overflows a 64-bit integer") }
        return s
    }

    /// Runs `body`, turning a `TernaryKitError` into a `ValidationError` (one line, the same text).
    static func validating<R>(_ body: () throws -> R) throws -> R {
        do { return try body() } catch let error as TernaryKitError { throw ValidationError("\(error)") }
    }

    /// The bytes `bench kernels` needs at once for one shape and batch: the random matrix and the
    /// reference kernel (1 byte per weight each), the largest prepared form (BLAS: 4), the others
    /// (≤ 1 together), the activations and outputs of both paths for the backend and the
    /// reference, and in the dram regime the rotation of distinct matrices.
    static func kernelBenchBytes(out: Int, in n: Int, batch: Int, dram: Bool) throws -> Int {
        let weights = try SizeLimits.product([out, n, 7], what: "--shape \(out)x\(n)")
        let rows = try SizeLimits.product([batch, SizeLimits.sum(10 * n, 16 * out, what: "row bytes")],
                                          what: "--batch \(batch) with --shape \(out)x\(n)")
        let rotation = dram ? try SizeLimits.sum(2 * MemoryRegime.dramRotationBytes,
                                                 SizeLimits.product([out, n, 10], what: "--shape \(out)x\(n)"), what: "bench memory") : 0
        return try SizeLimits.sum(SizeLimits.sum(weights, rows, what: "bench memory"), rotation, what: "bench memory")
    }

    /// Refuses a BitNet config whose model (with its KV cache) exceeds physical memory.
    static func checkModelFits(_ config: BitNetConfig, _ what: String) throws {
        try validating {
            try SizeLimits.requireFits(bytes: config.estimatedBytes(), what: what)
        }
    }
}

extension KernelBenchCommand {
    /// The bounds of the numeric flags and the memory of the largest (shape, batch) measured.
    func validateSizes() throws {
        try InputLimits.checkThreads(threadCounts)
        try InputLimits.check("--repeat", repeatCount, 1...InputLimits.maximumTimedRuns)
        try InputLimits.check("--warmup", warmup, 0...InputLimits.maximumWarmup)
        if !(budget <= InputLimits.maximumBudget) {
            throw ValidationError("--budget must be at most \(Int(InputLimits.maximumBudget)) seconds, got \(budget)")
        }
        let batchList = batches.isEmpty ? [1, 64] : batches
        let dram = regimes.contains(.dram)
        for (shape, _) in try shapePlan() {
            for batch in batchList {
                try InputLimits.validating {
                    let bytes = try InputLimits.kernelBenchBytes(out: shape.out, in: shape.in, batch: batch, dram: dram)
                    try SizeLimits.requireFits(bytes: bytes, what: "bench of \(shape) at batch \(batch)")
                }
            }
        }
    }
}
