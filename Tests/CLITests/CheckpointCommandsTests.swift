import BitNet
import Foundation
import Layers
import Testing
import TensorCore
@testable import TernaryCLI

/// `ternary logits`, `ternary export` and `ternary generate --model`: flags, refusals, output.
@Suite struct CheckpointCommandsTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-bitnet").path

    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ternarykit-cli-\(UInt64.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    @Test func logitsRejectsBadFlags() {
        let m = ["--model", Self.fixture]
        for args in [["--tokens", "1,2"], m, m + ["--tokens", ""], m + ["--tokens", "1,,2"], m + ["--tokens", "1,-3"],
                     m + ["--tokens", "1", "--threads", "0"], m + ["--tokens", "1", "--backend", "turbo"],
                     m + ["--tokens", "1", "--lm-head", "fp8"], m + ["--tokens", "1", "--top", "0"], m + ["--tokens", "1", "--bogus"]] {
            #expect(throws: (any Error).self, "\(args)") { try LogitsCommand.parse(args) }
        }
    }

    @Test func logitsJSONMatchesTheFixture() throws {
        let expectedData = try Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/expected_logits.json"))
        let expected = try #require(try JSONSerialization.jsonObject(with: expectedData) as? [String: Any])
        let tokens = try #require(expected["tokens"] as? [Int])
        let rows = try #require(expected["logits"] as? [[Double]])
        let command = try LogitsCommand.parse(["--model", Self.fixture, "--tokens", tokens.map(String.init).joined(separator: ","), "--json"])
        let logits = try LogitsCommand.compute(model: command.model, tokens: tokens, backend: command.backend, threads: command.threads)
        let lines = try JSONLines.capture { try command.run() }
        #expect(lines.count == 1)
        let text = lines.joined()
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any])
        #expect(object["tokens"] as? [Int] == tokens)
        let printed = try #require(object["logits"] as? [[Double]])
        #expect(printed.count == tokens.count && printed.allSatisfy { $0.count == 256 })
        for (a, b) in zip(printed, rows) { for (x, y) in zip(a, b) { #expect(abs(x - y) < 1e-4) } }
        // The printed text reads back to exactly the Float32 values.
        for (a, b) in zip(printed, logits) { #expect(a.map { Float($0) } == b) }
        let summary = LogitsCommand.summary(tokens: tokens, logits: logits, top: 5)
        #expect(summary.split(separator: "\n").count == tokens.count)
        #expect(summary.hasPrefix("position 0, token 1: top 5: "))
        try LogitsCommand.parse(["--model", Self.fixture, "--tokens", "1,2"]).run()
    }

    @Test func logitsRefusesBadCheckpointsAndTokens() throws {
        #expect(throws: TernaryKitError.self) { _ = try LogitsCommand.compute(model: Self.fixture, tokens: [256], backend: "naive", threads: 1) }
        #expect(throws: TernaryKitError.self) { _ = try LogitsCommand.compute(model: "/nonexistent/model", tokens: [1], backend: "naive", threads: 1) }
        let command = try LogitsCommand.parse(["--model", "/nonexistent/model", "--tokens", "1"])
        #expect(throws: TernaryKitError.self) { try command.run() }
    }

    @Test func exportWritesALoadableCheckpointAndRefusesToOverwrite() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/tiny"
        try ExportCommand.parse(["--preset", "tiny", "--seed", "7", "--out", out]).run()
        let loaded = try BitNetModel.load(checkpoint: out)
        let random = try BitNetModel.random(config: .tiny, seed: 7)
        #expect(try loaded.forward([1, 2, 3], allLogits: true) == random.forward([1, 2, 3], allLogits: true))
        // Now non-empty: refused without --force, accepted with it.
        #expect(throws: (any Error).self) { try ExportCommand.parse(["--preset", "tiny", "--out", out]) }
        try ExportCommand.parse(["--preset", "tiny", "--seed", "8", "--out", out, "--force"]).run()
        let replaced = try BitNetModel.load(checkpoint: out)
        #expect(try replaced.forward([1, 2, 3]) == BitNetModel.random(config: .tiny, seed: 8).forward([1, 2, 3]))
        for args in [["--preset", "7b", "--out", dir + "/x"], ["--preset", "tiny"], ["--out", dir + "/x"],
                     ["--preset", "tiny", "--out", ""], ["--preset", "tiny", "--seed", "-1", "--out", dir + "/x"]] {
            #expect(throws: (any Error).self, "\(args)") { try ExportCommand.parse(args) }
        }
        try Data().write(to: URL(fileURLWithPath: dir + "/file"))
        #expect(throws: (any Error).self) { try ExportCommand.parse(["--preset", "tiny", "--out", dir + "/file", "--force"]) }
    }

    @Test func generateTakesAModelDirectory() throws {
        let c = try GenerateCommand.parse(["--model", Self.fixture, "--tokens", "1,17,42", "--max-new-tokens", "3", "--json", "--lm-head", "float32"])
        try c.run()
        // The checkpoint's vocabulary and context apply, not the preset's.
        #expect(throws: (any Error).self) { try GenerateCommand.parse(["--model", Self.fixture, "--tokens", "256"]) }
        #expect(throws: (any Error).self) { try GenerateCommand.parse(["--model", Self.fixture, "--tokens", "1", "--max-new-tokens", "129"]) }
        #expect(throws: (any Error).self) { try GenerateCommand.parse(["--model", "/nonexistent/model", "--tokens", "1"]) }
        // Greedy generation from the checkpoint equals greedy decoding with the loaded model.
        let model = try BitNetModel.load(checkpoint: Self.fixture, kvCacheCapacity: 8)
        let result = try model.generate(prompt: [1, 17, 42], parameters: GenerationParameters(maxNewTokens: 3, stopTokens: []))
        var sequence = [1, 17, 42]
        let fresh = try BitNetModel.load(checkpoint: Self.fixture, kvCacheCapacity: 8)
        for _ in 0..<3 {
            fresh.resetCache()
            let logits = try fresh.forward(sequence)
            sequence.append(logits.indices.max { logits[$0] < logits[$1] }!)
        }
        #expect(Array(sequence.dropFirst(3)) == result.tokens)
    }
}
