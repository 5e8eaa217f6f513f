import Foundation
import Testing
@testable import Tokenizers

/// Expected outputs written by Tests/Fixtures/tokenizers/make_tokenizer_fixtures.py with the
/// Hugging Face `tokenizers` library and jinja2.
struct Expected: Decodable {
    struct EncodeCase: Decodable {
        let text: String
        let ids: [Int]
        let ids_no_special: [Int]
        let decoded: String
        let decoded_skip_special: String
    }
    struct DecodeCase: Decodable {
        let ids: [Int]
        let decoded: String
        let decoded_skip_special: String
    }
    struct FileCases: Decodable {
        let encode: [EncodeCase]
        let decode: [DecodeCase]
    }
    struct Message: Decodable {
        let role: String
        let content: String
    }
    struct Chat: Decodable {
        let template: String
        let messages: [Message]
        let add_generation_prompt: Bool
        let rendered: String
    }
    /// How HF's Split (Oniguruma) cuts random strings with each known expression.
    struct Split: Decodable {
        let text: String
        let llama3: [String]
        let gpt2: [String]
    }
    let files: [String: FileCases]
    let chat: [Chat]
    let templates: [String: String]
    let splits: [Split]

    enum CodingKeys: String, CodingKey { case chat, templates, splits }
    struct AnyKey: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    init(from decoder: Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        chat = try c.decode([Chat].self, forKey: .chat)
        templates = try c.decode([String: String].self, forKey: .templates)
        splits = try c.decode([Split].self, forKey: .splits)
        let any = try decoder.container(keyedBy: AnyKey.self)
        var files: [String: FileCases] = [:]
        for key in any.allKeys where key.stringValue.hasSuffix(".json") {
            files[key.stringValue] = try any.decode(FileCases.self, forKey: key)
        }
        self.files = files
    }
}

enum Fixtures {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tokenizers")
    static let expected: Expected = {
        let data = try! Data(contentsOf: directory.appendingPathComponent("expected.json"))
        return try! JSONDecoder().decode(Expected.self, from: data)
    }()
    static func tokenizer(_ name: String) throws -> Tokenizer {
        try Tokenizer(contentsOf: directory.appendingPathComponent(name))
    }
    static let files = ["llama3-tiny.json", "gpt2-tiny.json"]
}

@Suite struct FixtureTests {
    @Test(arguments: Fixtures.files)
    func encodeMatchesHuggingFace(file: String) throws {
        let tok = try Fixtures.tokenizer(file)
        let cases = try #require(Fixtures.expected.files[file]).encode
        #expect(cases.count > 100)
        for c in cases {
            #expect(tok.encode(c.text) == c.ids, "encode \(c.text.debugDescription)")
            #expect(tok.encode(c.text, addSpecialTokens: false) == c.ids_no_special, "encode without specials \(c.text.debugDescription)")
        }
    }

    @Test(arguments: Fixtures.files)
    func decodeMatchesHuggingFace(file: String) throws {
        let tok = try Fixtures.tokenizer(file)
        let fileCases = try #require(Fixtures.expected.files[file])
        var all: [([Int], String, String)] = fileCases.encode.map { ($0.ids, $0.decoded, $0.decoded_skip_special) }
        all += fileCases.decode.map { ($0.ids, $0.decoded, $0.decoded_skip_special) }
        for (ids, decoded, skipped) in all {
            #expect(try tok.decode(ids) == decoded, "decode \(ids)")
            #expect(try tok.decode(ids, skipSpecialTokens: true) == skipped, "decode skipping specials \(ids)")
        }
    }

    @Test(arguments: Fixtures.files)
    func streamingDecodeEqualsFullDecode(file: String) throws {
        let tok = try Fixtures.tokenizer(file)
        let fileCases = try #require(Fixtures.expected.files[file])
        let runs = fileCases.encode.map(\.ids) + fileCases.decode.map(\.ids)
        for ids in runs {
            for skip in [false, true] {
                var stream = tok.streamingDecoder(skipSpecialTokens: skip)
                var text = ""
                for id in ids {
                    let piece = try stream.append(id)
                    // Nothing emitted may end in a replacement character that a later byte could have completed.
                    text += piece
                }
                text += stream.finish()
                #expect(text == (try tok.decode(ids, skipSpecialTokens: skip)), "stream \(ids)")
            }
        }
    }

    @Test func streamingHoldsIncompleteCharacters() throws {
        let tok = try Fixtures.tokenizer("llama3-tiny.json")
        // "😀" is four bytes; byte-level tokens for each byte exist in every byte-level vocabulary.
        let ids = "😀".utf8.map { b in tok.id(for: String(Character(Unicode.Scalar(ByteLevelMap.scalarForByte[Int(b)])!)))! }
        var stream = tok.streamingDecoder()
        #expect(try stream.append(ids[0]) == "")
        #expect(try stream.append(ids[1]) == "")
        #expect(try stream.append(ids[2]) == "")
        #expect(try stream.append(ids[3]) == "😀")
        // A lead byte followed by an ASCII byte can no longer complete: replaced right away.
        #expect(try stream.append(ids[0]) == "")
        let a = try #require(tok.id(for: "a"))
        #expect(try stream.append(a) == "\u{FFFD}a")
        #expect(try stream.append(ids[0]) == "")
        #expect(stream.finish() == "\u{FFFD}")
    }

    @Test func chatRenderingMatchesJinja() throws {
        let byName = Dictionary(uniqueKeysWithValues: ChatTemplate.builtIn.map { ($0.name, $0) })
        #expect(Fixtures.expected.chat.count == 18)
        for c in Fixtures.expected.chat {
            let template = try #require(byName[c.template])
            let messages = c.messages.map { ChatMessage(role: $0.role, content: $0.content) }
            #expect(template.render(messages, addGenerationPrompt: c.add_generation_prompt) == c.rendered, "\(c.template) \(messages)")
        }
        for (name, source) in Fixtures.expected.templates { #expect(byName[name]?.source == source) }
    }

    @Test func detectPicksTemplateFromConfig() throws {
        for template in ChatTemplate.builtIn {
            // Re-indented text with the same tokens still matches.
            let spaced = template.source.replacingOccurrences(of: "%}{%", with: "%}\n  {%")
            let config = try JSONSerialization.data(withJSONObject: ["chat_template": spaced, "bos_token": "<|begin_of_text|>"])
            #expect(try ChatTemplate.detect(tokenizerConfig: config) == template)
        }
        let other = try JSONSerialization.data(withJSONObject: ["chat_template": "{{ messages }}"])
        #expect(throws: TokenizerError.self) { try ChatTemplate.detect(tokenizerConfig: other) }
        let none = try JSONSerialization.data(withJSONObject: ["bos_token": "x"])
        #expect(throws: TokenizerError.self) { try ChatTemplate.detect(tokenizerConfig: none) }
    }

    @Test func chatPromptEncodesWithSpecialTokens() throws {
        let tok = try Fixtures.tokenizer("llama3-tiny.json")
        let prompt = ChatTemplate.bitnet2B4T.render([ChatMessage(role: "user", content: "Hi")], addGenerationPrompt: true)
        #expect(prompt == "User: Hi<|eot_id|>Assistant: ")
        let ids = tok.encode(prompt)
        #expect(ids.first == tok.id(for: "<|begin_of_text|>"))
        #expect(ids.contains(try #require(tok.id(for: "<|eot_id|>"))))
    }

    @Test func lookups() throws {
        let tok = try Fixtures.tokenizer("llama3-tiny.json")
        let eot = try #require(tok.id(for: "<|eot_id|>"))
        #expect(tok.token(for: eot) == "<|eot_id|>")
        #expect(tok.isSpecial(eot))
        #expect(tok.stopTokenIDs == [eot, try #require(tok.id(for: "<|end_of_text|>")), try #require(tok.id(for: "<|eom_id|>"))])
        #expect(tok.vocabularySize == 1500 + 11)
        #expect(tok.token(for: -1) == nil && tok.token(for: 1_000_000) == nil)
        #expect(tok.id(for: "Ġthe") != nil)
        #expect(tok.addedToken("<|begin_of_text|>")?.special == true)
        let gpt2 = try Fixtures.tokenizer("gpt2-tiny.json")
        #expect(gpt2.addedToken("hello world")?.singleWord == true)
        #expect(gpt2.isSpecial(try #require(gpt2.id(for: "hello world"))) == false)
    }
}

@Suite struct ConcurrencyTests {
    @Test func concurrentEncodesAgree() async throws {
        let tok = try Fixtures.tokenizer("llama3-tiny.json")
        let cases = try #require(Fixtures.expected.files["llama3-tiny.json"]).encode
        let text = cases.map(\.text).joined(separator: "\n")
        let expected = tok.encode(text)
        let results = await withTaskGroup(of: [Int].self) { group in
            for _ in 0..<8 { group.addTask { tok.encode(text) } }
            var all: [[Int]] = []
            for await r in group { all.append(r) }
            return all
        }
        #expect(results.count == 8)
        for r in results { #expect(r == expected) }
    }

    @Test func bosHandlingPerTemplate() throws {
        let tok = try Fixtures.tokenizer("llama3-tiny.json")
        let bos = try #require(tok.id(for: "<|begin_of_text|>"))
        let messages = [ChatMessage(role: "user", content: "Hi")]
        for template in ChatTemplate.builtIn {
            let ids = tok.encode(template.render(messages, addGenerationPrompt: true), addSpecialTokens: !template.rendersBOS)
            #expect(ids.filter { $0 == bos }.count == 1 && ids.first == bos, "\(template.name)")
        }
    }
}
