/// Every failure the Tokenizers library reports.
///
/// Loading a `tokenizer.json` can meet components this library does not implement; rather than
/// silently encoding differently from Hugging Face `tokenizers`, it refuses with an error naming the
/// component, so the caller learns at load time instead of from subtly wrong ids.
public enum TokenizerError: Error, Equatable, Sendable, CustomStringConvertible {
    /// A pipeline component (`component` is e.g. "pre_tokenizer", `type` its `"type"` field) or one of
    /// its options that this library does not implement.
    case unsupported(component: String, type: String)
    /// The bytes are not valid JSON; the message gives the byte offset.
    case malformedJSON(String)
    /// Valid JSON that does not describe a tokenizer (missing or ill-typed field).
    case invalidTokenizer(String)
    /// An id that is neither in the model vocabulary nor an added token, met while decoding.
    case unknownTokenID(Int)
    /// `ChatTemplate.detect` found no built-in template matching the checkpoint's `chat_template`.
    case unknownChatTemplate(String)
    /// The file could not be read.
    case io(String)

    /// A one-line message naming the component or the problem, for logs and CLI output. Text taken
    /// from the file (type names, keys, template source) is escaped: control characters, DEL, C1
    /// controls and bidirectional overrides are written as `\u{…}`, so a crafted file can neither
    /// split the message into several lines nor send sequences to a terminal.
    public var description: String {
        switch self {
        case .unsupported(let component, let type): return "unsupported \(escaped(component)) type '\(escaped(type))'"
        case .malformedJSON(let message): return "malformed JSON: \(escaped(message))"
        case .invalidTokenizer(let message): return "invalid tokenizer.json: \(escaped(message))"
        case .unknownTokenID(let id): return "unknown token id \(id)"
        case .unknownChatTemplate(let message): return "unknown chat template: \(escaped(message))"
        case .io(let message): return "cannot read tokenizer: \(escaped(message))"
        }
    }

    /// `text` with every scalar a terminal could act on written as `\u{…}` (backslashes are kept,
    /// so escaping twice changes nothing). The library has no dependencies, so this is its own
    /// copy of the rule the other modules share (`String.escapedForTerminal` in TensorCore).
    private func escaped(_ text: String) -> String {
        func needsEscape(_ u: Unicode.Scalar) -> Bool {
            switch u.value {
            case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: return true
            default: return false
            }
        }
        guard text.unicodeScalars.contains(where: needsEscape) else { return text }
        var out = ""
        for u in text.unicodeScalars {
            if needsEscape(u) { out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}" } else { out.unicodeScalars.append(u) }
        }
        return out
    }
}
