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

    /// A one-line message naming the component or the problem, for logs and CLI output.
    public var description: String {
        switch self {
        case .unsupported(let component, let type): return "unsupported \(component) type '\(type)'"
        case .malformedJSON(let message): return "malformed JSON: \(message)"
        case .invalidTokenizer(let message): return "invalid tokenizer.json: \(message)"
        case .unknownTokenID(let id): return "unknown token id \(id)"
        case .unknownChatTemplate(let message): return "unknown chat template: \(message)"
        case .io(let message): return "cannot read tokenizer: \(message)"
        }
    }
}
