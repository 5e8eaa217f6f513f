import Foundation
import Testing
@testable import TernaryCLI

@Suite struct ModelBenchTests {
    @Test func badFlagsAreRejected() {
        for args in [["--preset", "7b"], ["--threads", "0"], ["--prompt-tokens", "0"], ["--new-tokens", "0"],
                     ["--backends", "turbo"], ["--lm-head", "fp8"], ["--lm-head", "int4"], ["--repeat", "0"],
                     ["--prompt-tokens", "5000"]] {
            #expect(throws: (any Error).self, "\(args)") { try ModelBenchCommand.parse(args) }
        }
    }

    @Test func rowsCarryTheDocumentedJSONFields() throws {
        let row = ModelBenchCommand.Row(backend: "naive", threads: 2, prefill: 10, decode: 5, bandwidth: 2e10,
                                        bytesPerToken: 1_000_000_000)
        #expect(row.ceiling == 20)
        let object = try JSONSerialization.jsonObject(with: Data(try row.jsonLine.utf8)) as! [String: Any]
        for key in ["backend", "threads", "prefill_tokens_per_s", "decode_tokens_per_s", "ceiling_tokens_per_s"] {
            #expect(object[key] != nil, "\(key)")
        }
    }

    @Test func defaultsValidateForTheTinyPreset() throws {
        let command = try ModelBenchCommand.parse(["--preset", "tiny", "--prompt-tokens", "4", "--new-tokens", "2",
                                                   "--json", "--quiet"])
        try command.validate()
        #expect(command.preset == .tiny && command.promptTokens == 4 && command.newTokens == 2 && command.json)
    }

    @Test func medianIgnoresNaNAndAveragesTheMiddlePair() {
        #expect(median(of: [3, 1, 2]) == 2)
        #expect(median(of: [4, 1, 2, 3]) == 2.5)
        #expect(median(of: [.nan, 5, 1]) == 3)
        #expect(median(of: []).isNaN && median(of: [.nan]).isNaN)
    }
}
