import Foundation

/// Named sets of shapes for `ternary bench --suite` (docs/BENCHMARKS.md lists them).
enum BenchSuite: String, CaseIterable {
    /// The paper's square sweep n = 2^11 … 2^15 with binary {0, 1} weights (2^16 where memory allows).
    case paperBinary = "paper-binary"
    /// The same sweep with ternary weights.
    case paperTernary = "paper-ternary"
    /// The BitNet b1.58 2B4T layer shapes: q/o, k/v, gate/up, down.
    case bitnet2b4t = "bitnet-2b4t"
    /// Llama-3-8B-like shapes.
    case llama8b = "llama-8b"

    /// Physical memory in bytes (0 when unknown).
    static var physicalMemory: UInt64 { ProcessInfo.processInfo.physicalMemory }

    /// The shapes of the suite. The paper sweeps include n = 2^16 (4 G weights; the BLAS form
    /// alone is 16 GiB) only on machines with at least 64 GiB.
    var shapes: [MatrixShape] {
        switch self {
        case .paperBinary, .paperTernary:
            var exponents = Array(11...15)
            if BenchSuite.physicalMemory >= 64 << 30 { exponents.append(16) }
            return exponents.map { MatrixShape(out: 1 << $0, in: 1 << $0) }
        case .bitnet2b4t:
            return [MatrixShape(out: 2560, in: 2560), MatrixShape(out: 640, in: 2560),
                    MatrixShape(out: 6912, in: 2560), MatrixShape(out: 2560, in: 6912)]
        case .llama8b:
            return [MatrixShape(out: 4096, in: 4096), MatrixShape(out: 14336, in: 4096),
                    MatrixShape(out: 4096, in: 14336)]
        }
    }

    /// Whether the suite uses binary {0, 1} weights.
    var binary: Bool { self == .paperBinary }
}
