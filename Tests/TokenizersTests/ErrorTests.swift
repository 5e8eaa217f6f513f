import Foundation
import Testing
@testable import Tokenizers

@Suite struct ErrorTests {
    /// The Llama 3 fixture with one component replaced.
    func variant(_ edit: (inout [String: Any]) -> Void) throws -> Data {
        let data = try Data(contentsOf: Fixtures.directory.appendingPathComponent("llama3-tiny.json"))
        var root = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        edit(&root)
        return try JSONSerialization.data(withJSONObject: root)
    }

    func error(_ data: Data) -> TokenizerError? {
        do { _ = try Tokenizer(data: data); return nil } catch { return error }
    }

    @Test func unsupportedComponentsAreNamed() throws {
        let meta = try variant { $0["pre_tokenizer"] = ["type": "Metaspace", "replacement": "▁"] }
        #expect(error(meta) == .unsupported(component: "pre_tokenizer", type: "Metaspace"))
        #expect(error(meta)?.description == "unsupported pre_tokenizer type 'Metaspace'")
        let nfkc = try variant { $0["normalizer"] = ["type": "NFKC"] }
        #expect(error(nfkc) == .unsupported(component: "normalizer", type: "NFKC"))
        let wordPiece = try variant { $0["model"] = ["type": "WordPiece", "vocab": [:]] }
        #expect(error(wordPiece) == .unsupported(component: "model", type: "WordPiece"))
        let bert = try variant { $0["post_processor"] = ["type": "BertProcessing"] }
        #expect(error(bert) == .unsupported(component: "post_processor", type: "BertProcessing"))
        let fuse = try variant { $0["decoder"] = ["type": "Fuse"] }
        #expect(error(fuse) == .unsupported(component: "decoder", type: "Fuse"))
    }

    @Test func malformedInputThrows() throws {
        for text in ["", "{", "{\"model\": ", "[1, 2", "{\"a\": tru}", "{\"a\": \"\\q\"}", "nul", "{} x"] {
            let e = error(Data(text.utf8))
            guard case .malformedJSON = e else { Issue.record("expected malformedJSON for \(text), got \(String(describing: e))"); continue }
        }
        #expect(error(Data("[]".utf8)) == .invalidTokenizer("top level is not an object"))
        guard case .invalidTokenizer = error(Data("{\"model\": {\"type\": \"BPE\"}}".utf8)) else { Issue.record("no vocab"); return }
        let badMerge = try variant { root in
            var model = root["model"] as! [String: Any]
            model["merges"] = ["Ġ nonexistent"]
            root["model"] = model
        }
        guard case .invalidTokenizer(let message) = error(badMerge) else { Issue.record("bad merge accepted"); return }
        #expect(message.contains("missing from the vocabulary"))
        #expect(throws: TokenizerError.self) { try Tokenizer(contentsOf: URL(fileURLWithPath: "/nonexistent/tokenizer.json")) }
    }

    /// Text from the file reaches messages escaped: one line, no terminal control sequences.
    @Test func messagesEscapeTextFromTheFile() throws {
        let hostile = try variant { $0["pre_tokenizer"] = ["type": "Meta\u{1B}[2J\nError: forged\u{202E}"] }
        let e = try #require(error(hostile))
        #expect(e == .unsupported(component: "pre_tokenizer", type: "Meta\u{1B}[2J\nError: forged\u{202E}"))
        #expect(e.description == "unsupported pre_tokenizer type 'Meta\\u{1B}[2J\\u{A}Error: forged\\u{202E}'")
        let control = try #require(error(Data([0x05])))
        #expect(control.description == "malformed JSON: unexpected character '\\u{5}' at byte offset 0")
        let template = Data(#"{"chat_template": "{{ x }}\u001b[31m\r"}"#.utf8)
        do {
            _ = try ChatTemplate.detect(tokenizerConfig: template)
            Issue.record("an unknown template was accepted")
        } catch {
            #expect(!error.description.unicodeScalars.contains { $0.value < 0x20 }, "\(error.description.debugDescription)")
            #expect(error.description.contains("\\u{1B}[31m\\u{D}"))
        }
    }

    @Test func pathsThatAreNotRegularFilesAreNamed() throws {
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("tok-fifo-\(UInt32.random(in: 0 ... .max))").path
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        for (path, kind) in [("/dev/zero", "a character device"), ("/tmp", "a directory"), (fifo, "not a regular file")] {
            #expect(throws: TokenizerError.io("\(path) is \(kind), expected a tokenizer.json file")) {
                try Tokenizer(contentsOf: URL(fileURLWithPath: path))
            }
        }
    }

    @Test func unknownIDsThrowOnDecode() throws {
        let tok = try Fixtures.tokenizer("llama3-tiny.json")
        #expect(throws: TokenizerError.unknownTokenID(99_999)) { try tok.decode([1, 99_999]) }
        #expect(throws: TokenizerError.unknownTokenID(-3)) { try tok.decode([-3]) }
        var stream = tok.streamingDecoder()
        #expect(throws: TokenizerError.unknownTokenID(1_000_000)) { try stream.append(1_000_000) }
    }

    @Test func otherRegexFallsBackToSwiftRegex() throws {
        // A digit-per-token variant (Qwen-style \p{N}) is not a known pattern: Swift Regex runs it.
        let data = try variant { root in
            root["pre_tokenizer"] = ["type": "Sequence", "pretokenizers": [
                ["type": "Split", "pattern": ["Regex": #"\p{N}|[^\p{N}]+"#], "behavior": "Isolated", "invert": false],
                ["type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": false]]]
        }
        let tok = try Tokenizer(data: data)
        let ids = tok.encode("abc 123", addSpecialTokens: false)
        #expect(try tok.decode(ids) == "abc 123")
        #expect(ids.suffix(3) == ["1", "2", "3"].map { tok.id(for: $0)! })
        let bad = try variant { root in
            root["pre_tokenizer"] = ["type": "Split", "pattern": ["Regex": "(unclosed"], "behavior": "Isolated", "invert": false]
        }
        guard case .unsupported(let component, _) = error(bad) else { Issue.record("bad regex accepted"); return }
        #expect(component == "pre_tokenizer")
    }
}

extension ErrorTests {
    @Test func absurdIDsAreRefused() throws {
        let data = try variant { root in
            var added = root["added_tokens"] as! [[String: Any]]
            added[0]["id"] = 2_000_000_000
            root["added_tokens"] = added
        }
        guard case .invalidTokenizer(let message) = error(data) else { Issue.record("huge id accepted"); return }
        #expect(message.contains("added_tokens[0]"))
    }
}

extension ErrorTests {
    /// Damaged files either load or throw; they never trap.
    @Test func damagedFilesNeverCrash() throws {
        let data = try [UInt8](Data(contentsOf: Fixtures.directory.appendingPathComponent("gpt2-tiny.json")))
        var rng = SplitMix(seed: 5)
        for round in 0..<60 {
            var bytes = data
            if round % 2 == 0 {
                bytes = Array(bytes[0..<Int(rng.next() % UInt64(bytes.count))])
            } else {
                for _ in 0..<4 { bytes[Int(rng.next() % UInt64(bytes.count))] = UInt8(truncatingIfNeeded: rng.next()) }
            }
            if let tok = try? Tokenizer(data: Data(bytes)) {
                let ids = tok.encode("Hello wörld 😀 <|endoftext|>")
                _ = try? tok.decode(ids)
            }
        }
    }
}
