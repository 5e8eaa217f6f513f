import ArgumentParser
import Backends
import CKernels
import Foundation
import TensorCore

/// `ternary info`: toolchain, OpenBLAS, CPU and backends.
struct InfoCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "info",
        abstract: "Show the Swift and OpenBLAS versions, the CPU and its SIMD features, threads and backends."
    )

    func run() throws {
        print("TernaryKit")
        print("  Swift compiler      \(swiftCompilerVersion)")
        print("  OpenBLAS            \(OpenBLASInfo.configuration)")
        print("  OpenBLAS core       \(OpenBLASInfo.coreName)")
        print("  OpenBLAS threads    \(OpenBLASInfo.threads)")
        print("  CPU                 \(cpuModelName() ?? "unknown")")
        print("  SIMD (run time)     \(CPUFeatures.detected.summary)")
        print("  bitpacked variants  \(BitPackedVariant.supported.map(\.rawValue).joined(separator: ", ")) (default \(BitPackedVariant.best.rawValue))")
        print("  logical processors  \(ProcessInfo.processInfo.activeProcessorCount) (default thread count)")
        print("  backends            \(BackendRegistry.names.joined(separator: ", "))")
    }

    /// The compiler version this binary was built with (from `#if compiler`).
    var swiftCompilerVersion: String {
        #if compiler(>=6.4)
        return "≥ 6.4"
        #elseif compiler(>=6.3)
        return "6.3"
        #elseif compiler(>=6.2)
        return "6.2"
        #elseif compiler(>=6.1)
        return "6.1"
        #else
        return "< 6.1"
        #endif
    }

    func cpuModelName() -> String? {
        guard let text = try? String(contentsOfFile: "/proc/cpuinfo", encoding: .utf8) else { return nil }
        for line in text.split(separator: "\n") where line.hasPrefix("model name") {
            if let colon = line.firstIndex(of: ":") {
                return line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces)
            }
        }
        return nil
    }
}
