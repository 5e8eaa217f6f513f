import Testing
import Backends
import TensorCore
@testable import TernaryCLI

/// `ternary bench --regime`: parsing, and a DRAM rotation that really measures.
@Suite struct BenchRegimeTests {
    @Test func regimeFlagParses() throws {
        #expect(try KernelBenchCommand.parse(["--regime", "dram"]).regimes == [.dram])
        #expect(try KernelBenchCommand.parse([]).regimes.isEmpty)
        #expect(throws: (any Error).self) { try KernelBenchCommand.parse(["--regime", "disk"]) }
    }

    @Test func dramRegimeRotatesAndReports() throws {
        let runner = BenchmarkRunner(repeatCount: 3, warmup: 1, budgetSeconds: 0.5, path: .int8, seed: 3)
        let backends = try BackendRegistry.backends(list: "naive,bitpacked").map { BenchBackend(backend: $0) }
        let config = BenchConfiguration(shape: MatrixShape(out: 16, in: 40), batch: 2, threads: 1, regime: .dram)
        let (rows, failures) = try runner.run(config, backends: backends)
        #expect(failures.isEmpty)
        #expect(rows.map(\.backend) == ["naive", "bitpacked"])
        #expect(try rows.allSatisfy { try $0.regime == "dram" && $0.jsonLine.contains("\"regime\":\"dram\"") })
    }
}
