import ArgumentParser
import Foundation
import Testing
@testable import TernaryCLI

/// The JSON lines a command prints through `printJSON`, read without touching stdout.
enum JSONLines {
    static func capture(_ body: () throws -> Void) throws -> [String] {
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var lines: [String] = []
        }
        let box = Box()
        try JSONOutput.$capture.withValue({ line in box.lock.withLock { box.lines.append(line) } }) { try body() }
        return box.lock.withLock { box.lines }
    }

    /// Each line parsed as a JSON object.
    static func objects(_ lines: [String]) throws -> [[String: Any]] {
        try lines.map { try #require(try JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: Any], "\($0)") }
    }

    /// The top-level keys of a one-line object in the order printed (keys of nested objects left out).
    static func keyOrder(_ line: String) -> [String] {
        var keys: [String] = [], depth = 0, inString = false, escaped = false, current = ""
        var lastString = ""
        for ch in line {
            if inString {
                if escaped { escaped = false; current.append(ch) } else if ch == "\\" { escaped = true } else if ch == "\"" {
                    inString = false; lastString = current
                } else { current.append(ch) }
                continue
            }
            switch ch {
            case "\"": inString = true; current = ""
            case "{", "[": depth += 1
            case "}", "]": depth -= 1
            case ":" where depth == 1: keys.append(lastString)
            default: break
            }
        }
        return keys
    }
}

@Suite struct JSONOutputTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-bitnet").path

    @Test func benchKernelsPrintsOneObjectPerMeasurementWithTheDocumentedFields() throws {
        let command = try KernelBenchCommand.parse(["--shape", "8x16", "--backends", "naive,bitpacked", "--repeat", "3",
                                                   "--budget", "0.05", "--json", "--quiet"])
        let lines = try JSONLines.capture { try command.run() }
        #expect(lines.count == 2)
        let keys = ["backend", "out", "in", "batch", "threads", "k", "regime", "path", "median_us", "min_us", "max_us",
                    "runs", "weights_per_s", "storage_bits_per_weight", "prepare_ms"]
        for (line, object) in zip(lines, try JSONLines.objects(lines)) {
            #expect(JSONLines.keyOrder(line) == keys)
            #expect(line.contains("\"k\":null") && object["k"] is NSNull)
            #expect(object["out"] as? Int == 8 && object["in"] as? Int == 16 && object["runs"] as? Int == 3)
            #expect(object["regime"] as? String == "cache" && object["path"] as? String == "int8")
            #expect((object["median_us"] as? Double).map { $0 > 0 } == true)
        }
        #expect(try JSONLines.objects(lines).map { $0["backend"] as? String } == ["naive", "bitpacked"])
    }

    @Test func benchModelPrintsOneObjectPerBackendAndThreadCount() throws {
        let command = try ModelBenchCommand.parse(["--preset", "tiny", "--prompt-tokens", "4", "--new-tokens", "2",
                                                  "--backends", "naive", "--json", "--quiet"])
        let lines = try JSONLines.capture { try command.run() }
        #expect(lines.count == 1)
        #expect(JSONLines.keyOrder(lines[0]) == ["backend", "threads", "prefill_tokens_per_s", "decode_tokens_per_s",
                                                 "ceiling_tokens_per_s", "bandwidth_gb_per_s", "weight_bytes_per_token"])
        let object = try #require(try JSONLines.objects(lines).first)
        #expect(object["backend"] as? String == "naive" && object["threads"] as? Int == 1)
        #expect((object["weight_bytes_per_token"] as? Int).map { $0 > 0 } == true)
    }

    @Test func generatePrintsTokensAndSpeeds() throws {
        let plain = try GenerateCommand.parse(["--tokens", "1,2,3", "--max-new-tokens", "3", "--ignore-eos", "--json"])
        let lines = try JSONLines.capture { try plain.run() }
        #expect(lines.count == 1)
        #expect(JSONLines.keyOrder(lines[0]) == ["tokens", "prefill_tokens_per_s", "decode_tokens_per_s"])
        let object = try #require(try JSONLines.objects(lines).first)
        #expect((object["tokens"] as? [Int])?.count == 3)
        // One new token: no decode step, so no decode speed (NaN), printed as null.
        let one = try JSONLines.capture {
            try GenerateCommand.parse(["--tokens", "1", "--max-new-tokens", "1", "--json"]).run()
        }
        #expect(one.count == 1 && one[0].contains("\"decode_tokens_per_s\":null"))
        #expect(try JSONLines.objects(one).first?["decode_tokens_per_s"] is NSNull)
        // With --bandwidth, three more fields after the speeds.
        let withBandwidth = try JSONLines.capture {
            try GenerateCommand.parse(["--tokens", "1", "--max-new-tokens", "2", "--bandwidth", "--json"]).run()
        }
        #expect(withBandwidth.count == 1)
        #expect(JSONLines.keyOrder(withBandwidth[0]) == ["tokens", "prefill_tokens_per_s", "decode_tokens_per_s", "bandwidth_gb_per_s",
                                                         "weight_bytes_per_token", "decode_ceiling_tokens_per_s"])
    }

    @Test func logitsPrintTokensAndOneRowPerPosition() throws {
        let lines = try JSONLines.capture {
            try LogitsCommand.parse(["--model", Self.fixture, "--tokens", "1,2", "--json"]).run()
        }
        #expect(lines.count == 1)
        #expect(JSONLines.keyOrder(lines[0]) == ["tokens", "logits"])
        let object = try #require(try JSONLines.objects(lines).first)
        #expect(object["tokens"] as? [Int] == [1, 2])
        let rows = try #require(object["logits"] as? [[Double]])
        #expect(rows.count == 2 && rows.allSatisfy { $0.count == 256 })
    }

    @Test func inspectPrintsTheListing() throws {
        let lines = try JSONLines.capture {
            try InspectCommand.parse([Self.fixture + "/model.safetensors", "--json"]).run()
        }
        #expect(lines.count == 1)
        #expect(JSONLines.keyOrder(lines[0]) == ["path", "header_bytes", "data_bytes", "tensors", "metadata"])
        #expect(lines[0].contains("\"path\":\"\(Self.fixture)/model.safetensors\""), "slashes are not escaped")
        let object = try #require(try JSONLines.objects(lines).first)
        let tensors = try #require(object["tensors"] as? [[String: Any]])
        let first = try #require(tensors.first)
        #expect(Set(first.keys) == ["name", "dtype", "shape", "data_offsets", "bytes"])
        #expect(lines[0].contains("{\"name\":\"\(first["name"] as? String ?? "?")\",\"dtype\":"))
        let metadata = try #require(object["metadata"] as? [String: String])
        #expect(metadata["writer"] == "make_bitnet_fixture.py")
    }

    @Test func nonFiniteNumbersAreNullAndFloatsKeepTheirShortestText() throws {
        let m = BenchMeasurement(backend: "na\"ive/x", out: 1, in: 2, batch: 1, threads: 1, k: 4, regime: "cache", path: .float,
                                 medianMicros: .nan, minMicros: -.infinity, maxMicros: .infinity, runs: 0,
                                 bitsPerWeight: 2, prepareMillis: 1.23456789)
        let line = try m.jsonLine
        #expect(line.hasPrefix("{\"backend\":\"na\\\"ive/x\",\"out\":1,\"in\":2,\"batch\":1,\"threads\":1,\"k\":4,"))
        #expect(line.contains("\"median_us\":null,\"min_us\":null,\"max_us\":null,"))
        #expect(line.contains("\"weights_per_s\":null") && line.contains("\"prepare_ms\":1.23457}"))
        let object = try #require(try JSONLines.objects([line]).first)
        #expect(object["backend"] as? String == "na\"ive/x" && object["k"] as? Int == 4)

        let logits = LogitsCommand.JSONResult(tokens: [5], logits: [[0.1, -3.4028235e38, .nan, 1, .infinity, .leastNonzeroMagnitude]])
        #expect(try JSONOutput.line(logits) == "{\"tokens\":[5],\"logits\":[[0.1,-3.4028235e+38,null,1.0,null,1e-45]]}")

        let row = ModelBenchCommand.Row(backend: "naive", threads: 1, prefill: .nan, decode: 2, bandwidth: 1e9, bytesPerToken: 0)
        #expect(try row.jsonLine == "{\"backend\":\"naive\",\"threads\":1,\"prefill_tokens_per_s\":null,\"decode_tokens_per_s\":2.0,"
                + "\"ceiling_tokens_per_s\":null,\"bandwidth_gb_per_s\":1.0,\"weight_bytes_per_token\":0}")
    }

    @Test func helpListsTheAcceptedValues() {
        let kernels = KernelBenchCommand.helpMessage(columns: 1000)
        for values in ["(values: paper-binary, paper-ternary, bitnet-2b4t, llama-8b)", "(values: cache, dram)",
                       "(values: fused, two-part; default: fused)", "(values: int8, float; default: int8)"] {
            #expect(kernels.contains(values), "\(values)")
        }
        let model = ModelBenchCommand.helpMessage(columns: 1000)
        #expect(model.contains("(values: 2b4t, tiny; default: tiny)"))
        #expect(model.contains("(values: int8, float32; default: int8)"))
        #expect(GenerateCommand.helpMessage(columns: 1000).contains("(values: float32, int8, int4; default: int8)"))
        #expect(LogitsCommand.helpMessage(columns: 1000).contains("(values: float32, int8, int4; default: float32)"))
    }

    @Test func choicesParseAndBadValuesNameTheFlagAndTheValidValues() throws {
        let c = try KernelBenchCommand.parse(["--suite", "llama-8b", "--regime", "dram", "--regime", "cache",
                                              "--rsr-form", "two-part", "--path", "float"])
        #expect(c.suites == [.llama8b] && c.regimes == [.dram, .cache] && c.rsrForm == .twoPart && c.path == .float)
        let defaults = try KernelBenchCommand.parse([])
        #expect(defaults.rsrForm == .fused && defaults.path == .int8 && defaults.suites.isEmpty)
        for name in ["2b4t", "bitnet-b1.58-2b-4t", "2B4T"] {
            #expect(try GenerateCommand.parse(["--tokens", "1", "--preset", name]).preset == .bitnet2B4T, "\(name)")
        }
        #expect(try ExportCommand.parse(["--preset", "TINY", "--out", "/nonexistent/x"]).preset == .tiny)
        #expect(try LogitsCommand.parse(["--model", Self.fixture, "--tokens", "1"]).lmHead == .float32)
        #expect(try GenerateCommand.parse(["--tokens", "1", "--lm-head", "int4"]).lmHead == .int4)
        #expect(try ModelBenchCommand.parse(["--prompt-tokens", "4", "--new-tokens", "2", "--lm-head", "float32"]).lmHead == .float32)

        let cases: [(any ParsableCommand.Type, [String], String, String)] = [
            (KernelBenchCommand.self, ["--regime", "disk"], "--regime", "'cache' and 'dram'"),
            (KernelBenchCommand.self, ["--suite", "paper"], "--suite", "'llama-8b'"),
            (KernelBenchCommand.self, ["--rsr-form", "split"], "--rsr-form", "'fused' and 'two-part'"),
            (KernelBenchCommand.self, ["--path", "double"], "--path", "'int8' and 'float'"),
            (ModelBenchCommand.self, ["--lm-head", "int4"], "--lm-head", "'int8' and 'float32'"),
            (ModelBenchCommand.self, ["--preset", "7b"], "--preset", "'2b4t' and 'tiny'"),
            (GenerateCommand.self, ["--tokens", "1", "--lm-head", "fp8"], "--lm-head", "'int4'"),
            (ExportCommand.self, ["--preset", "7b", "--out", "/nonexistent/x"], "--preset", "'tiny'"),
        ]
        for (type, args, flag, valid) in cases {
            do {
                _ = try type.parseAsRoot(args)
                Issue.record("\(args) parsed")
            } catch {
                let message = type.message(for: error)
                #expect(message.contains(flag) && message.contains(valid), "\(args): \(message)")
            }
        }
    }
}
