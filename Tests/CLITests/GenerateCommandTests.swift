import Testing
@testable import TernaryCLI

@Suite struct GenerateCommandTests {
    @Test func badArgumentsAreRejected() {
        for args in [["--tokens", "1,2", "--backend", "turbo"], ["--tokens", "1,,2"], ["--tokens", "a,b"], ["--tokens", ""],
                     ["--tokens", "1,-2"], ["--tokens", "256"], ["--tokens", "1", "--max-new-tokens", "0"],
                     ["--tokens", "1", "--threads", "0"], ["--tokens", "1", "--preset", "7b"],
                     ["--tokens", "1", "--top-p", "0"], ["--tokens", "1", "--lm-head", "fp8"], ["--max-new-tokens", "3"]] {
            #expect(throws: (any Error).self, "\(args)") { try GenerateCommand.parse(args) }
        }
    }

    @Test func goodArgumentsParseAndRun() throws {
        let c = try GenerateCommand.parse(["--preset", "tiny", "--tokens", "1, 2,3", "--max-new-tokens", "4",
                                           "--backend", "naive", "--json", "--temperature", "0.7", "--top-k", "5"])
        #expect(try GenerateCommand.parseTokens(c.tokens[0]) == [1, 2, 3])
        try c.run()
    }
}
