import Testing
@testable import TernaryCLI

@Suite struct CLITests {
    @Test func shapesParse() throws {
        #expect(try MatrixShape.parse("4096x4096") == MatrixShape(out: 4096, in: 4096))
        #expect(try MatrixShape.parse("640X2560") == MatrixShape(out: 640, in: 2560))
        for bad in ["4096y", "0x-1", "x", "12x", "4096x0", "axb", "1x2x3", "-3x4", ""] {
            #expect(throws: (any Error).self, "\(bad)") { try MatrixShape.parse(bad) }
        }
    }

    @Test func badFlagsAreRejected() {
        for args in [["--shape", "4096y"], ["--batch", "0"], ["--threads", "-1"], ["--repeat", "0"],
                     ["--backends", "naive,turbo"], ["--path", "double"], ["--bogus"], ["--budget", "0"]] {
            #expect(throws: (any Error).self, "\(args)") { try BenchCommand.parse(args) }
        }
    }

    @Test func goodFlagsParse() throws {
        let c = try BenchCommand.parse(["--shape", "8x16", "--shape", "3x5", "--batch", "2", "--threads", "1",
                                        "--backends", "naive,blas", "--json", "--repeat", "3"])
        #expect(c.shapes == ["8x16", "3x5"] && c.batches == [2] && c.json && c.repeatCount == 3)
    }

    @Test func runnerChecksAndMeasuresEveryBackend() throws {
        let runner = BenchmarkRunner(repeatCount: 3, warmup: 1, budgetSeconds: 0.5, path: .float, seed: 1)
        let (rows, failures) = try runner.run(shape: MatrixShape(out: 33, in: 65), batch: 3, threads: 1,
                                              backends: BackendRegistry.all)
        #expect(failures.isEmpty)
        #expect(rows.map(\.backend) == BackendRegistry.names)
        for r in rows {
            #expect(r.runs == 3 && r.minMicros <= r.medianMicros && r.medianMicros <= r.maxMicros)
            #expect(r.jsonLine.hasPrefix("{\"backend\":\"\(r.backend)\",\"out\":33,\"in\":65,\"batch\":3,\"threads\":1,"))
            #expect(r.jsonLine.contains("\"weights_per_s\":") && r.jsonLine.contains("\"storage_bits_per_weight\":"))
        }
    }
}

import Backends
