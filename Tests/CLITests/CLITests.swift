import Backends
import Foundation
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
                     ["--backends", "naive,turbo"], ["--path", "double"], ["--bogus"], ["--budget", "0"],
                     ["--suite", "paper"], ["--regime", "l2"], ["--k", "17"], ["--k", "0"]] {
            #expect(throws: (any Error).self, "\(args)") { try KernelBenchCommand.parse(args) }
        }
    }

    @Test func goodFlagsParse() throws {
        let c = try KernelBenchCommand.parse(["--shape", "8x16", "--shape", "3x5", "--batch", "2", "--threads", "1",
                                        "--backends", "naive,blas", "--json", "--repeat", "3"])
        #expect(c.shapes == ["8x16", "3x5"] && c.batches == [2] && c.json && c.repeatCount == 3)
    }

    @Test func runnerChecksAndMeasuresEveryBackend() throws {
        let runner = BenchmarkRunner(repeatCount: 3, warmup: 1, budgetSeconds: 0.5, path: .float, seed: 1)
        let config = BenchConfiguration(shape: MatrixShape(out: 33, in: 65), batch: 3, threads: 1, regime: .cache)
        let (rows, failures) = try runner.run(config, backends: BackendRegistry.all.map { BenchBackend(backend: $0) })
        #expect(failures.isEmpty)
        #expect(rows.map(\.backend) == BackendRegistry.names)
        for r in rows {
            #expect(r.runs == 3 && r.minMicros <= r.medianMicros && r.medianMicros <= r.maxMicros)
            #expect(try r.jsonLine.hasPrefix("{\"backend\":\"\(r.backend)\",\"out\":33,\"in\":65,\"batch\":3,\"threads\":1,"))
            #expect(try r.jsonLine.contains("\"weights_per_s\":") && r.jsonLine.contains("\"storage_bits_per_weight\":"))
        }
    }

    @Test func dramRegimeRotatesDistinctMatrices() throws {
        let runner = BenchmarkRunner(repeatCount: 3, warmup: 0, budgetSeconds: 0.2, path: .int8, seed: 2)
        let config = BenchConfiguration(shape: MatrixShape(out: 5, in: 9), batch: 2, threads: 1, regime: .dram)
        let (rows, failures) = try runner.run(config, backends: [BenchBackend(backend: NaiveBackend())])
        #expect(failures.isEmpty && rows.count == 1 && rows[0].regime == "dram")
    }

    @Test func suitesHaveTheDocumentedShapes() {
        #expect(BenchSuite.bitnet2b4t.shapes.map(\.description) == ["2560x2560", "640x2560", "6912x2560", "2560x6912"])
        #expect(BenchSuite.paperTernary.shapes.first == MatrixShape(out: 2048, in: 2048))
        #expect(BenchSuite.paperTernary.shapes.contains(MatrixShape(out: 32768, in: 32768)))
        #expect(BenchSuite.paperBinary.binary && !BenchSuite.paperTernary.binary)
    }

    @Test func defaultPlanIsThe2B4TShapes() throws {
        let c = try KernelBenchCommand.parse([])
        #expect(try c.shapePlan().map(\.0) == BenchSuite.bitnet2b4t.shapes)
        let s = try KernelBenchCommand.parse(["--suite", "paper-binary", "--shape", "3x4"])
        let plan = try s.shapePlan()
        #expect(plan.first! == (MatrixShape(out: 3, in: 4), false))
        #expect(plan.dropFirst().allSatisfy { $0.1 })
    }

    @Test func plotsAreWrittenAsSVG() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("ternary-plot-\(UInt64.random(in: 0...UInt64.max))").path
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func m(_ backend: String, _ n: Int, _ k: Int?, _ us: Double) -> BenchMeasurement {
            BenchMeasurement(backend: backend, out: n, in: n, batch: 1, threads: 1, k: k, regime: "cache", path: .int8,
                        medianMicros: us, minMicros: us, maxMicros: us, runs: 3, bitsPerWeight: 2, prepareMillis: 1)
        }
        let ms = [m("naive", 2048, nil, 100), m("naive", 4096, nil, 400), m("rsr", 4096, 4, 50), m("rsr", 4096, 6, 40)]
        let files = try BenchPlots.write(ms, to: dir)
        #expect(files.contains("time-vs-n-b1-t1-cache.svg"))
        #expect(files.contains("k-sweep-4096x4096-b1-t1-cache.svg"))
        #expect(files.contains("bits-per-weight.svg"))
        for f in files {
            let text = try String(contentsOfFile: dir + "/" + f, encoding: .utf8)
            #expect(text.hasPrefix("<svg") && text.hasSuffix("</svg>"), "\(f)")
            #expect(text.contains("<text"), "\(f) has labels")
        }
        let sweep = try String(contentsOfFile: dir + "/k-sweep-4096x4096-b1-t1-cache.svg", encoding: .utf8)
        #expect(sweep.contains("block height k") && sweep.contains(">rsr<"))
        let byN = try String(contentsOfFile: dir + "/time-vs-n-b1-t1-cache.svg", encoding: .utf8)
        #expect(byN.contains(">naive<") && byN.contains("<polyline"))
        // rsr and rsr++ each at their own default k is not a sweep.
        let noSweep = try BenchPlots.write([m("rsr", 2048, 5, 10), m("rsr++", 2048, 6, 9)], to: dir + "/b")
        #expect(!noSweep.contains { $0.hasPrefix("k-sweep") })
    }
}
