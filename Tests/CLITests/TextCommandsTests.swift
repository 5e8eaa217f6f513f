import BitNet
import Foundation
import Layers
import Testing
import Tokenizers
@testable import TernaryCLI

/// Text in, text out: `ternary tokenize`, `generate --prompt` / `--chat`, `ternary chat`.
///
/// No real model or tokenizer is available, so the checkpoint has random weights and a vocabulary
/// as large as the fixture tokenizer's: the text is meaningless, and the tests check the plumbing
/// (ids, streaming, stop tokens, the KV cache across turns, errors).
@Suite struct TextCommandsTests {
    static let tokenizerFixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers/llama3-tiny.json").path
    static let tokenizer = try! Tokenizer(contentsOf: URL(fileURLWithPath: tokenizerFixture))

    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ternarykit-text-\(UInt64.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// A random BitNet checkpoint covering the fixture tokenizer's vocabulary (EOS `<|end_of_text|>`),
    /// with the tokenizer.json and a tokenizer_config.json holding `chatTemplate` (none when nil).
    static func makeCheckpoint(chatTemplate: String? = ChatTemplate.bitnet2B4T.source, eos: [Int]? = nil,
                               tokenizerFile: Bool = true) throws -> String {
        let tok = tokenizer
        let config = BitNetConfig(hiddenSize: 64, intermediateSize: 160, numHiddenLayers: 2, numAttentionHeads: 4,
                                  numKeyValueHeads: 2, ropeTheta: 10_000, vocabSize: tok.vocabularySize,
                                  maxPositionEmbeddings: 256, bosTokenId: tok.id(for: "<|begin_of_text|>")!,
                                  eosTokenIds: eos ?? [tok.id(for: "<|end_of_text|>")!])
        let dir = try temporaryDirectory() + "/model"
        _ = try BitNetModel.random(config: config, seed: 5).exportCheckpoint(to: dir)
        if tokenizerFile { try FileManager.default.copyItem(atPath: tokenizerFixture, toPath: dir + "/tokenizer.json") }
        var tokenizerConfig: [String: Any] = ["bos_token": "<|begin_of_text|>", "eos_token": "<|eot_id|>"]
        if let chatTemplate { tokenizerConfig["chat_template"] = chatTemplate }
        try JSONSerialization.data(withJSONObject: tokenizerConfig).write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        return dir
    }

    static func remove(_ checkpoint: String) { try? FileManager.default.removeItem(atPath: (checkpoint as NSString).deletingLastPathComponent) }

    /// The text a command writes through `TextOutput`.
    static func captureText(_ body: () throws -> Void) throws -> String {
        final class Box: @unchecked Sendable {
            let lock = NSLock()
            var text = ""
        }
        let box = Box()
        try TextOutput.$capture.withValue({ piece in box.lock.withLock { box.text += piece } }) { try body() }
        return box.lock.withLock { box.text }
    }

    /// `generate ... --json` parsed.
    static func generateJSON(_ args: [String]) throws -> (keys: [String], object: [String: Any]) {
        let lines = try JSONLines.capture { try GenerateCommand.parse(args + ["--json"]).run() }
        #expect(lines.count == 1)
        return (JSONLines.keyOrder(lines[0]), try #require(try JSONLines.objects(lines).first))
    }

    // MARK: tokenize

    @Test func tokenizeRoundTripsAndPrintsJSON() throws {
        let t = Self.tokenizerFixture
        let text = "Hello world, ünïcödé 🙂!"
        let encoded = try JSONLines.objects(JSONLines.capture { try TokenizeCommand.parse(["--tokenizer", t, "--text", text, "--json"]).run() })
        let ids = try #require(encoded.first?["ids"] as? [Int])
        #expect(ids == Self.tokenizer.encode(text) && ids.first == Self.tokenizer.id(for: "<|begin_of_text|>"))
        let plain = try JSONLines.objects(JSONLines.capture {
            try TokenizeCommand.parse(["--tokenizer", t, "--text", text, "--no-special", "--json"]).run()
        })
        #expect(plain.first?["ids"] as? [Int] == Array(ids.dropFirst()))
        let list = ids.map(String.init).joined(separator: ",")
        let lines = try JSONLines.capture { try TokenizeCommand.parse(["--tokenizer", t, "--ids", list, "--json"]).run() }
        #expect(JSONLines.keyOrder(lines[0]) == ["text"])
        #expect(try JSONLines.objects(lines).first?["text"] as? String == "<|begin_of_text|>" + text)
        let skipped = try JSONLines.objects(JSONLines.capture {
            try TokenizeCommand.parse(["--tokenizer", t, "--ids", list, "--no-special", "--json"]).run()
        })
        #expect(skipped.first?["text"] as? String == text)
        try TokenizeCommand.parse(["--tokenizer", t, "--text", "plain output"]).run()
    }

    @Test func tokenizeRefusesBadArguments() throws {
        let t = Self.tokenizerFixture
        for args in [["--tokenizer", t], ["--tokenizer", t, "--text", "a", "--ids", "1"], ["--tokenizer", t, "--ids", "1,,2"],
                     ["--tokenizer", t, "--ids", "x"], ["--tokenizer", t, "--ids", ""], ["--tokenizer", "/nonexistent/tokenizer.json", "--text", "a"],
                     ["--text", "a"]] {
            #expect(throws: (any Error).self, "\(args)") { try TokenizeCommand.parse(args) }
        }
        do {
            _ = try TokenizeCommand.parse(["--tokenizer", t, "--text", "a", "--ids", "1"])
        } catch {
            #expect(TokenizeCommand.message(for: error).contains("--text and --ids exclude each other"))
        }
        do {
            _ = try TokenizeCommand.parse(["--tokenizer", "/nonexistent/tokenizer.json", "--text", "a"])
        } catch {
            #expect(TokenizeCommand.message(for: error).contains("/nonexistent/tokenizer.json"))
        }
        // An id past the vocabulary: a one-line error, not a crash.
        #expect(throws: TextCommandError.self) { try TokenizeCommand.parse(["--tokenizer", t, "--ids", "1,99999"]).run() }
    }

    // MARK: generate --prompt

    @Test func promptGivesTheSameTokensAsItsIDsAndStreamsTheirText() throws {
        let dir = try Self.makeCheckpoint()
        defer { Self.remove(dir) }
        let prompt = "The quick brown fox"
        let ids = Self.tokenizer.encode(prompt)
        let common = ["--model", dir, "--max-new-tokens", "12", "--ignore-eos", "--lm-head", "float32"]
        let byText = try Self.generateJSON(common + ["--prompt", prompt])
        let byIDs = try Self.generateJSON(common + ["--tokens", ids.map(String.init).joined(separator: ",")])
        #expect(byText.keys == ["tokens", "prefill_tokens_per_s", "decode_tokens_per_s", "text"])
        #expect(byIDs.keys == ["tokens", "prefill_tokens_per_s", "decode_tokens_per_s"])
        let generated = try #require(byText.object["tokens"] as? [Int])
        #expect(generated.count == 12 && generated == byIDs.object["tokens"] as? [Int])
        let text = try Self.tokenizer.decode(generated, skipSpecialTokens: true)
        #expect(byText.object["text"] as? String == text)
        // Text mode streams the same text to stdout (the speeds go to stderr).
        let streamed = try Self.captureText { try GenerateCommand.parse(common + ["--prompt", prompt]).run() }
        #expect(streamed == text + "\n")
        // --tokenizer overrides the directory's file.
        let overridden = try Self.generateJSON(common + ["--prompt", prompt, "--tokenizer", Self.tokenizerFixture])
        #expect(overridden.object["tokens"] as? [Int] == generated)
    }

    @Test func streamingNeverSplitsACharacterAndEqualsTheFullDecode() throws {
        // Every id of the vocabulary once, byte tokens in the middle of characters included.
        let tok = Self.tokenizer
        let ids = Array(0..<tok.vocabularySize).filter { tok.token(for: $0) != nil }.shuffled()
        var pieces: [String] = []
        var streamer = TextStreamer(tokenizer: tok) { pieces.append($0) }
        for id in ids + [tok.vocabularySize + 5] { streamer.append(id) }   // an unknown id writes nothing
        streamer.finish()
        #expect(pieces.joined() == TextStreamer.fullText(ids, tokenizer: tok))
        #expect(pieces.joined() == (try tok.decode(ids, skipSpecialTokens: true)))
        #expect(!pieces.joined().contains("<|eot_id|>"))
    }

    @Test func chatPromptHasOneBOSWhateverTheTemplate() throws {
        let prompt = "What is 2 + 2?"
        let user = [ChatMessage(role: "user", content: prompt)]
        let bos = try #require(Self.tokenizer.id(for: "<|begin_of_text|>"))
        for template in ChatTemplate.builtIn {
            let dir = try Self.makeCheckpoint(chatTemplate: template.source)
            defer { Self.remove(dir) }
            let rendered = template.render(user, addGenerationPrompt: true)
            let expected = Self.tokenizer.encode(rendered, addSpecialTokens: !template.rendersBOS)
            #expect(expected.first == bos && expected.filter { $0 == bos }.count == 1, "\(template.name)")
            let common = ["--model", dir, "--max-new-tokens", "4", "--ignore-eos"]
            let chat = try Self.generateJSON(common + ["--prompt", prompt, "--chat"])
            let byIDs = try Self.generateJSON(common + ["--tokens", expected.map(String.init).joined(separator: ",")])
            #expect(chat.object["tokens"] as? [Int] == byIDs.object["tokens"] as? [Int], "\(template.name)")
            let files = TokenizerFiles(tokenizer: nil, model: dir)!
            let session = TextSession(tokenizer: try files.loadTokenizer(), template: try files.loadChatTemplate())
            #expect(session.encodePrompt(prompt) == expected, "\(template.name)")
        }
    }

    @Test func generationStopsAtTheModelsEOSAndTheTokenizersEndOfTurn() throws {
        let dir = try Self.makeCheckpoint()
        defer { Self.remove(dir) }
        let common = ["--model", dir, "--prompt", "Once upon a time", "--max-new-tokens", "10"]
        let free = try #require(try Self.generateJSON(common + ["--ignore-eos"]).object["tokens"] as? [Int])
        // The same weights with the fourth generated token as EOS stop at its first occurrence.
        let stopAt = free[3], first = free.firstIndex(of: stopAt)!
        let stopping = try Self.makeCheckpoint(eos: [stopAt])
        defer { Self.remove(stopping) }
        let stopped = try Self.generateJSON(["--model", stopping] + common.dropFirst(2))
        #expect(stopped.object["tokens"] as? [Int] == Array(free[...first]))
        #expect(try Self.generateJSON(["--model", stopping, "--ignore-eos"] + common.dropFirst(2)).object["tokens"] as? [Int] == free)
        // The tokenizer's end-of-turn and end-of-text ids stop generation besides the model's EOS.
        let session = TextSession(tokenizer: Self.tokenizer, template: nil)
        let stops = session.stopTokens(model: [7], vocabularySize: Self.tokenizer.vocabularySize)
        #expect(stops == Set([7] + ["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>"].map { Self.tokenizer.id(for: $0)! }))
        #expect(session.stopTokens(model: [], vocabularySize: 1500).isEmpty, "ids past the model's vocabulary are left out")
    }

    @Test func generateRefusesBadTextArguments() throws {
        let dir = try Self.makeCheckpoint(chatTemplate: nil, tokenizerFile: false)
        defer { Self.remove(dir) }
        func message(_ args: [String]) -> String {
            do { _ = try GenerateCommand.parse(args) } catch { return GenerateCommand.message(for: error) }
            return "parsed"
        }
        #expect(message(["--model", dir, "--prompt", "hi"]).contains(dir + "/tokenizer.json"))
        #expect(message(["--prompt", "hi"]).contains("--prompt needs a tokenizer"))
        #expect(message(["--prompt", "hi", "--tokens", "1"]).contains("exclude each other"))
        #expect(message(["--tokens", "1", "--chat"]).contains("--chat needs --prompt"))
        #expect(message(["--max-new-tokens", "2"]).contains("--tokens IDS or --prompt TEXT"))
        // A tokenizer_config.json without a chat template, or with an unknown one.
        try FileManager.default.copyItem(atPath: Self.tokenizerFixture, toPath: dir + "/tokenizer.json")
        let noTemplate = try GenerateCommand.parse(["--model", dir, "--prompt", "hi", "--chat"])
        #expect(throws: TextCommandError.self) { try noTemplate.run() }
        do { try noTemplate.run() } catch { #expect("\(error)".contains("no chat_template")) }
        try JSONSerialization.data(withJSONObject: ["chat_template": "{{ messages }}"])
            .write(to: URL(fileURLWithPath: dir + "/tokenizer_config.json"))
        do {
            try GenerateCommand.parse(["--model", dir, "--prompt", "hi", "--chat"]).run()
            Issue.record("an unknown chat template was accepted")
        } catch { #expect("\(error)".contains("unknown chat template")) }
        // A preset's vocabulary (256) does not hold the tokenizer's ids.
        #expect(throws: TextCommandError.self) {
            try GenerateCommand.parse(["--preset", "tiny", "--tokenizer", Self.tokenizerFixture, "--prompt", "hello"]).run()
        }
        // Too long for the context.
        #expect(throws: TextCommandError.self) {
            try GenerateCommand.parse(["--model", dir, "--prompt", String(repeating: "word ", count: 300)]).run()
        }
    }

    // MARK: chat

    @Test func chatKeepsTheCacheAcrossTurnsAndResets() throws {
        let dir = try Self.makeCheckpoint()
        defer { Self.remove(dir) }
        let command = try ChatCommand.parse(["--model", dir, "--max-new-tokens", "8", "--lm-head", "float32", "--system", "Be brief."])
        let conversation = try command.makeConversation()
        let first = try #require(try conversation.respond(to: "Hello there", sink: { _ in }))
        #expect(first.lengthBefore == 0 && first.lengthAfterAppend == first.appended.count)
        #expect(first.appended == conversation.text.encodePrompt("Hello there", system: "Be brief."))
        let second = try #require(try conversation.respond(to: "And then?", sink: { _ in }))
        // Only the new turn ran: the cache holds the whole conversation once.
        let whole = first.appended + first.reply + second.appended
        #expect(second.lengthAfterAppend == whole.count)
        #expect(second.lengthAfterAppend - second.lengthBefore == second.appended.count + 1, "the new turn and the last reply token")
        let continuation = try Self.tokenizer.decode(second.appended)
        let closing = first.reply.last == Self.tokenizer.id(for: "<|eot_id|>") ? "" : "<|eot_id|>"
        #expect(continuation == closing + "User: And then?<|eot_id|>Assistant: ")
        // The second reply equals a from-scratch run of the whole conversation.
        let fresh = try BitNetModel.load(checkpoint: dir)
        let scratch = try fresh.generate(prompt: whole, parameters: conversation.parameters)
        #expect(scratch.tokens == second.reply)
        #expect(second.text == TextStreamer.fullText(second.reply, tokenizer: Self.tokenizer))
        // /reset: the first turn again gives the first reply again.
        conversation.reset()
        #expect(conversation.session.length == 0)
        let again = try #require(try conversation.respond(to: "Hello there", sink: { _ in }))
        #expect(again.appended == first.appended && again.reply == first.reply && again.lengthBefore == 0)
    }

    @Test func chatReadsLinesAndStreamsReplies() throws {
        let dir = try Self.makeCheckpoint()
        defer { Self.remove(dir) }
        let args = ["--model", dir, "--max-new-tokens", "6"]
        var lines = ["Hello there", "", "And then?", "/reset", "Hello there"][...]
        let output = try Self.captureText { try ChatCommand.parse(args).run(input: { lines.popFirst() }) }
        // The same turns one by one; /reset starts the same conversation again.
        #expect(output == (try Self.expectedChatOutput(args, ["Hello there", "And then?"], then: ["Hello there"])))
    }

    /// What `chat` prints for `turns`, then `/reset`, then `afterReset`, each reply followed by a newline.
    static func expectedChatOutput(_ args: [String], _ turns: [String], then afterReset: [String]) throws -> String {
        let conversation = try ChatCommand.parse(args).makeConversation()
        var pieces: [String] = []
        for t in turns { try conversation.respond(to: t) { pieces.append($0) } }
        conversation.reset()
        for t in afterReset { try conversation.respond(to: t) { pieces.append($0) } }
        return pieces.joined()
    }

    @Test func chatStartsOverWhenTheContextIsFull() throws {
        let dir = try Self.makeCheckpoint()
        defer { Self.remove(dir) }
        let conversation = try ChatCommand.parse(["--model", dir, "--max-new-tokens", "30", "--context", "40"]).makeConversation()
        let params = conversation.parameters
        #expect(params.stopTokens?.contains(Self.tokenizer.id(for: "<|eot_id|>")!) == true)
        var restarted = false
        for k in 0..<4 {
            let turn = try #require(try conversation.respond(to: "Tell me a story number \(k)", sink: { _ in }))
            #expect(conversation.session.length <= 40)
            restarted = restarted || turn.restarted
        }
        #expect(restarted)
        // A message that alone exceeds the context: nothing generated, no crash.
        #expect(try conversation.respond(to: String(repeating: "word ", count: 60), sink: { _ in }) == nil)
        #expect(throws: (any Error).self) { try ChatCommand.parse(["--model", dir, "--context", "100000"]) }
        #expect(throws: (any Error).self) { try ChatCommand.parse(["--model", dir + "/missing"]) }
    }

    /// The built `ternary` next to the test bundle, when `swift test` built it.
    static var binary: String? {
        let dir = URL(fileURLWithPath: CommandLine.arguments[0]).deletingLastPathComponent()
        let candidates = [dir.appendingPathComponent("ternary").path, dir.deletingLastPathComponent().appendingPathComponent("ternary").path]
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) }
    }

    @Test(.enabled(if: binary != nil)) func chatWorksWithPipedStandardInput() throws {
        let dir = try Self.makeCheckpoint()
        defer { Self.remove(dir) }
        func run(_ args: [String], input: String) throws -> (out: String, err: String, status: Int32) {
            let process = Process()
            process.executableURL = URL(fileURLWithPath: Self.binary!)
            process.arguments = args
            let stdin = Pipe(), stdout = Pipe(), stderr = Pipe()
            process.standardInput = stdin
            process.standardOutput = stdout
            process.standardError = stderr
            try process.run()
            stdin.fileHandleForWriting.write(Data(input.utf8))
            try stdin.fileHandleForWriting.close()
            let out = stdout.fileHandleForReading.readDataToEndOfFile()
            let err = stderr.fileHandleForReading.readDataToEndOfFile()
            process.waitUntilExit()
            return (String(decoding: out, as: UTF8.self), String(decoding: err, as: UTF8.self), process.terminationStatus)
        }
        let args = ["--model", dir, "--max-new-tokens", "5"]
        let chat = try run(["chat"] + args, input: "Hi\nHow are you?\n/reset\nHi\n")
        #expect(chat.status == 0, "\(chat.err)")
        // Only the replies on stdout: no prompt decoration when stdin is not a terminal.
        #expect(chat.out == (try Self.expectedChatOutput(args, ["Hi", "How are you?"], then: ["Hi"])))
        let tokenize = try run(["tokenize", "--tokenizer", Self.tokenizerFixture, "--text", "Hi"], input: "")
        #expect(tokenize.out == Self.tokenizer.encode("Hi").map(String.init).joined(separator: ",") + "\n")
        let missing = try run(["generate", "--model", "/nonexistent/dir", "--prompt", "Hi"], input: "")
        #expect(missing.status != 0 && missing.err.split(separator: "\n").count <= 3 && missing.out.isEmpty)
    }
}
