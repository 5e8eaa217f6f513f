import Foundation
import Testing
@testable import Tokenizers

/// llama3-tiny.json with one component changed (see variants.json, written by
/// make_tokenizer_fixtures.py): other pre-tokenizer options, byte fallback, no decoder.
@Suite struct VariantTests {
    struct File: Decodable {
        struct Variant: Decodable {
            let cases: [Case]
        }
        /// [ids, ids without specials, decoded, decoded skipping specials]
        struct Case: Decodable {
            let ids: [Int]
            let idsNoSpecial: [Int]
            let decoded: String
            let decodedSkip: String
            init(from decoder: Decoder) throws {
                var c = try decoder.unkeyedContainer()
                ids = try c.decode([Int].self)
                idsNoSpecial = try c.decode([Int].self)
                decoded = try c.decode(String.self)
                decodedSkip = try c.decode(String.self)
            }
        }
        let strings: [String]
        let variants: [String: Variant]
    }

    static let url = Fixtures.directory.appendingPathComponent("variants.json")
    static let file: File = try! JSONDecoder().decode(File.self, from: Data(contentsOf: url))
    static let names: [String] = file.variants.keys.sorted()

    static func tokenizer(_ name: String) throws -> Tokenizer {
        let base = try Data(contentsOf: Fixtures.directory.appendingPathComponent("llama3-tiny.json"))
        var root = try JSONSerialization.jsonObject(with: base) as! [String: Any]
        let raw = try JSONSerialization.jsonObject(with: Data(contentsOf: url)) as! [String: Any]
        let variants = raw["variants"] as! [String: Any]
        let patch = (variants[name] as! [String: Any])["patch"] as! [String: Any]
        for (key, value) in patch {
            if key == "model" {
                var model = root["model"] as! [String: Any]
                for (k, v) in value as! [String: Any] {
                    if k == "add_vocab" {
                        var vocab = model["vocab"] as! [String: Any]
                        for (t, id) in v as! [String: Any] { vocab[t] = id }
                        model["vocab"] = vocab
                    } else { model[k] = v }
                }
                root["model"] = model
            } else {
                root[key] = value
            }
        }
        return try Tokenizer(data: JSONSerialization.data(withJSONObject: root))
    }

    @Test(arguments: names)
    func variantMatchesHuggingFace(name: String) throws {
        let tok = try VariantTests.tokenizer(name)
        let cases = try #require(VariantTests.file.variants[name]).cases
        #expect(cases.count == VariantTests.file.strings.count)
        for (text, c) in zip(VariantTests.file.strings, cases) {
            #expect(tok.encode(text) == c.ids, "\(name): encode \(text.debugDescription)")
            #expect(tok.encode(text, addSpecialTokens: false) == c.idsNoSpecial, "\(name): encode without specials \(text.debugDescription)")
            #expect(try tok.decode(c.ids) == c.decoded, "\(name): decode \(c.ids)")
            #expect(try tok.decode(c.ids, skipSpecialTokens: true) == c.decodedSkip, "\(name): decode skipping specials \(c.ids)")
            var stream = tok.streamingDecoder()
            var streamed = ""
            for id in c.ids { streamed += try stream.append(id) }
            streamed += stream.finish()
            #expect(streamed == c.decoded, "\(name): streaming decode \(c.ids)")
        }
    }
}
