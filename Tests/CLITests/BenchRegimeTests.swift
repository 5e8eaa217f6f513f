import Testing
import Backends
import TensorCore
@testable import TernaryCLI

/// `ternary bench --regime`: parsing, and a DRAM rotation that really measures.
@Suite struct BenchRegimeTests {
    @Test func regimeFlagParses() throws {
        #expect(try BenchCommand.parse(["--regime", "dram"]).regime == "dram")
        #expect(try BenchCommand.parse([]).regime == "cache")
        #expect(throws: (any Error).self) { try BenchCommand.parse(["--regime", "disk"]) }
    }

    @Test func dramRegimeRotatesAndReports() throws {
        let runner = BenchmarkRunner(repeatCount: 3, warmup: 1, budgetSeconds: 0.5, path: .int8, seed: 3, regime: .dram)
        let backends = try BackendRegistry.backends(list: "naive,bitpacked")
        let (rows, failures) = try runner.run(shape: MatrixShape(out: 16, in: 40), batch: 2, threads: 1, backends: backends)
        #expect(failures.isEmpty)
        #expect(rows.map(\.backend) == ["naive", "bitpacked"])
        #expect(rows.allSatisfy { $0.regime == "dram" && $0.jsonLine.contains("\"regime\":\"dram\"") })
    }
}
