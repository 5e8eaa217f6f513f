import Foundation
import Testing
@testable import TernaryCLI

/// `generate` with several `--tokens` and `bench model --sequences`.
@Suite struct BatchedGenerationCLITests {
    @Test func severalPromptsPrintEverySequenceAndAggregateSpeeds() throws {
        let prompts = ["1,2,3", "7", "9,10"]
        let lines = try JSONLines.capture {
            try GenerateCommand.parse(prompts.flatMap { ["--tokens", $0] } + ["--max-new-tokens", "4", "--ignore-eos",
                                                                              "--backend", "bitpacked", "--json"]).run()
        }
        #expect(lines.count == 1)
        #expect(JSONLines.keyOrder(lines[0]) == ["sequences", "prefill_tokens_per_s", "decode_tokens_per_s"])
        let sequences = try #require(try JSONLines.objects(lines).first?["sequences"] as? [[Int]])
        #expect(sequences.count == 3 && sequences.allSatisfy { $0.count == 4 })
        // Each sequence is what a run with that prompt alone prints.
        for (i, p) in prompts.enumerated() {
            let alone = try JSONLines.capture {
                try GenerateCommand.parse(["--tokens", p, "--max-new-tokens", "4", "--ignore-eos", "--backend", "bitpacked",
                                           "--json"]).run()
            }
            #expect(try JSONLines.objects(alone).first?["tokens"] as? [Int] == sequences[i])
        }
        #expect(throws: (any Error).self) { try GenerateCommand.parse(["--tokens", "1", "--tokens", "1,999"]) }
    }

    @Test func benchModelAddsTheSequencesField() throws {
        #expect(throws: (any Error).self) { try ModelBenchCommand.parse(["--sequences", "0"]) }
        let lines = try JSONLines.capture {
            try ModelBenchCommand.parse(["--preset", "tiny", "--backends", "naive", "--prompt-tokens", "3", "--new-tokens", "3",
                                         "--sequences", "1", "--sequences", "3", "--json", "--quiet"]).run()
        }
        #expect(lines.count == 2)
        let objects = try JSONLines.objects(lines)
        #expect(objects.map { $0["sequences"] as? Int } == [1, 3])
        #expect(JSONLines.keyOrder(lines[1]) == ["backend", "threads", "sequences", "prefill_tokens_per_s", "decode_tokens_per_s",
                                                 "ceiling_tokens_per_s", "bandwidth_gb_per_s", "weight_bytes_per_token", "variant"])
        // Without --sequences, no such field.
        let plain = try JSONLines.capture {
            try ModelBenchCommand.parse(["--preset", "tiny", "--backends", "naive", "--prompt-tokens", "3", "--new-tokens", "2",
                                         "--json", "--quiet"]).run()
        }
        #expect(plain.count == 1 && !plain[0].contains("sequences"))
    }
}
