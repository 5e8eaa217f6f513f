// libFuzzer entry point for the Tokenizers library: `tokenizer.json` loading, encoding and
// decoding (whole and streaming), and `tokenizer_config.json` chat-template detection. Built by
// `scripts/fuzz.sh tokenizers`, which compiles this file with Sources/Tokenizers into one module.
// The two fixture tokenizers are read from $TOKENIZER_FIXTURES (default: Tests/Fixtures/tokenizers,
// relative to the package root, where the script runs it).
import Foundation

/// The fixture tokenizers (Llama 3 and GPT-2 pipelines on small vocabularies), loaded once.
let fixtures: [Tokenizer] = ["llama3-tiny.json", "gpt2-tiny.json"].map { name in
    let directory = ProcessInfo.processInfo.environment["TOKENIZER_FIXTURES"] ?? "Tests/Fixtures/tokenizers"
    let url = URL(fileURLWithPath: directory + "/" + name)
    do { return try Tokenizer(contentsOf: url) } catch { fatalError("cannot load the fixture \(url.path): \(error)") }
}

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = start.map { Data(bytes: $0, count: count) } ?? Data()
    // As text, the first 4 KiB: longer texts only repeat what the coverage has seen, and slow
    // every run of the instrumented code.
    let text = String(decoding: bytes.prefix(4096), as: UTF8.self)

    // 1. The input as tokenizer.json: a tokenizer that loads must encode and decode anything.
    do {
        let tokenizer = try Tokenizer(data: bytes)
        for sample in ["", "Hello, world!", " x\n\ny  z\u{1F600}é", text] { exercise(tokenizer, sample, roundTrip: false) }
    } catch {
        checkMessage("\(error)")
    }

    // 2. The input as text, through the fixtures: byte-level BPE must give back every string.
    for tokenizer in fixtures { exercise(tokenizer, text, roundTrip: true) }

    // 3. The input as tokenizer_config.json; and as a message rendered by every built-in template.
    do {
        let template = try ChatTemplate.detect(tokenizerConfig: bytes)
        _ = template.render([ChatMessage(role: "user", content: "hi")], addGenerationPrompt: true)
    } catch {
        checkMessage("\(error)")
    }
    for template in ChatTemplate.builtIn {
        let prompt = template.render([ChatMessage(role: text, content: text)], addGenerationPrompt: true)
        exercise(fixtures[0], prompt, roundTrip: true)
    }
    return 0
}

/// Encodes `text`, checks the ids are in the vocabulary, decodes them whole and one at a time
/// (the streamed pieces must concatenate to the whole decode), and with `roundTrip` checks that
/// the decode is the text itself.
func exercise(_ tokenizer: Tokenizer, _ text: String, roundTrip: Bool) {
    for special in [false, true] {
        let ids = tokenizer.encode(text, addSpecialTokens: special)
        check(ids.allSatisfy { $0 >= 0 && $0 < tokenizer.vocabularySize }, "id out of range")
        let whole: String
        do { whole = try tokenizer.decode(ids) } catch { fatalError("decode of encoded ids threw: \(error)") }
        // Added tokens with lstrip/rstrip drop the whitespace beside them (as Hugging Face does).
        let strips = tokenizer.addedTokens.contains { ($0.lstrip || $0.rstrip) && text.contains($0.content) }
        if roundTrip && !special && !strips { check(whole == text, "round trip: " + firstDifference(text, whole)) }
        var stream = tokenizer.streamingDecoder()
        var pieces = ""
        do { for id in ids { pieces += try stream.append(id) } } catch { fatalError("streaming decode threw: \(error)") }
        pieces += stream.finish()
        check(pieces == whole, "streamed \(pieces.debugDescription) ≠ whole \(whole.debugDescription)")
        _ = try? tokenizer.decode(ids, skipSpecialTokens: true)
    }
    for id in [-1, tokenizer.vocabularySize, Int.max, Int.min] {
        do { _ = try tokenizer.decode([id]); fatalError("decode accepted id \(id)") } catch { checkMessage("\(error)") }
    }
}

/// Error messages built from file content must be one line without control characters.
func checkMessage(_ message: String) {
    check(!message.unicodeScalars.contains {
        $0.value < 0x20 || (0x7F...0x9F).contains($0.value) || (0x202A...0x202E).contains($0.value) || (0x2066...0x2069).contains($0.value)
    },
                 "unescaped control character in: \(message.debugDescription)")
}

/// `precondition` that also prints its message in optimized builds (libFuzzer shows it).
func check(_ condition: Bool, _ message: @autoclosure () -> String) {
    if !condition { fatalError(message()) }
}

/// Where `a` and `b` first differ, with a little context, for messages.
func firstDifference(_ a: String, _ b: String) -> String {
    let x = Array(a.unicodeScalars), y = Array(b.unicodeScalars)
    var i = 0
    while i < x.count && i < y.count && x[i] == y[i] { i += 1 }
    func around(_ s: [Unicode.Scalar]) -> String {
        var out = ""
        out.unicodeScalars.append(contentsOf: s[max(0, i - 20)..<min(s.count, i + 20)])
        return out.debugDescription
    }
    return "scalar \(i) of \(x.count) vs \(y.count): \(around(x)) became \(around(y))"
}
