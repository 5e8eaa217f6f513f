import Foundation

/// One turn of a conversation.
public struct ChatMessage: Sendable, Equatable {
    /// "system", "user" or "assistant" (any text is passed through as the template would).
    public var role: String
    /// The message text.
    public var content: String

    /// Creates a message.
    public init(role: String, content: String) {
        self.role = role
        self.content = content
    }
}

/// A chat prompt format, rendered in Swift instead of by a Jinja engine.
///
/// Checkpoints ship their prompt format as a Jinja `chat_template`. Both formats this library
/// needs are short loops over the messages, so each is reproduced as data (role label, separators,
/// where the BOS text goes) and `detect` checks that a checkpoint's template text is one of them,
/// rather than trusting a guess and silently feeding the model a format it was not trained on.
public struct ChatTemplate: Sendable, Equatable {
    enum Style: Sendable, Equatable {
        /// `<|start_header_id|>role<|end_header_id|>\n\ncontent<|eot_id|>`, BOS before the first turn.
        case llama3
        /// `Role: content<|eot_id|>` with the role capitalised; `bos` puts the BOS text first.
        case bitnet(bos: Bool)
    }

    /// A short name ("llama3", "bitnet-b1.58-2b4t").
    public let name: String
    /// The Jinja source this template reproduces, as it appears in `tokenizer_config.json`.
    public let source: String
    let style: Style
    /// The text the template writes for `bos_token` (only the Llama 3 format writes it).
    public var bosToken: String

    /// Llama 3 Instruct's header format: BOS, then per message
    /// `<|start_header_id|>role<|end_header_id|>\n\n` + trimmed content + `<|eot_id|>`.
    public static let llama3 = ChatTemplate(
        name: "llama3",
        source: "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = '<|start_header_id|>' + message['role'] + '<|end_header_id|>\\n\\n'+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ '<|start_header_id|>assistant<|end_header_id|>\\n\\n' }}{% endif %}",
        style: .llama3, bosToken: "<|begin_of_text|>")

    /// BitNet b1.58 2B4T's format (`chat_template` of microsoft/bitnet-b1.58-2B-4T):
    /// `User: …<|eot_id|>Assistant: …<|eot_id|>`. The template writes no BOS; the tokenizer's
    /// post-processor adds `<|begin_of_text|>` when the prompt is encoded with special tokens.
    public static let bitnet2B4T = ChatTemplate(
        name: "bitnet-b1.58-2b4t",
        source: "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}",
        style: .bitnet(bos: false), bosToken: "<|begin_of_text|>")

    /// The 2B4T format with Llama 3's first-message BOS clause
    /// (`{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}`), so that a copy of
    /// the 2B4T config carrying it is still recognised; it renders the BOS text first.
    public static let bitnet2B4TWithBOS = ChatTemplate(
        name: "bitnet-b1.58-2b4t-bos",
        source: "{% set loop_messages = messages %}{% for message in loop_messages %}{% set content = message['role'] | capitalize + ': '+ message['content'] | trim + '<|eot_id|>' %}{% if loop.index0 == 0 %}{% set content = bos_token + content %}{% endif %}{{ content }}{% endfor %}{% if add_generation_prompt %}{{ 'Assistant: ' }}{% endif %}",
        style: .bitnet(bos: true), bosToken: "<|begin_of_text|>")

    /// Whether the rendered text already starts with the BOS token text. If it does (Llama 3), encode
    /// the prompt with `addSpecialTokens: false`, or the post-processor adds a second BOS (the
    /// Hugging Face pipeline has the same trap); if not (2B4T), encode with special tokens.
    public var rendersBOS: Bool { style == .llama3 || style == .bitnet(bos: true) }

    /// The built-in templates `detect` chooses from.
    public static let builtIn: [ChatTemplate] = [.bitnet2B4T, .bitnet2B4TWithBOS, .llama3]

    /// The built-in template whose Jinja text equals the `chat_template` of a checkpoint's
    /// `tokenizer_config.json` (compared with whitespace runs collapsed). Also picks up
    /// `bos_token` when the config names it.
    public static func detect(tokenizerConfig: Data) throws(TokenizerError) -> ChatTemplate {
        let root = try JSON.parse([UInt8](tokenizerConfig))
        var text: String?
        if let s = root["chat_template"]?.string {
            text = s
        } else if let list = root["chat_template"]?.array {
            text = list.first(where: { $0["name"]?.string == "default" })?["template"]?.string
        }
        guard let text else { throw .unknownChatTemplate("tokenizer_config.json has no chat_template") }
        let wanted = normalizeWhitespace(text)
        guard var found = builtIn.first(where: { normalizeWhitespace($0.source) == wanted }) else {
            throw .unknownChatTemplate("chat_template matches none of the built-in templates (\(builtIn.map(\.name).joined(separator: ", "))): \(text.prefix(120))…")
        }
        if let bos = root["bos_token"]?.string ?? root["bos_token"]?["content"]?.string { found.bosToken = bos }
        return found
    }

    /// The prompt text the Jinja template renders for these messages.
    public func render(_ messages: [ChatMessage], addGenerationPrompt: Bool) -> String {
        var out = ""
        for (k, m) in messages.enumerated() {
            switch style {
            case .llama3:
                if k == 0 { out += bosToken }
                out += "<|start_header_id|>" + m.role + "<|end_header_id|>\n\n" + ChatTemplate.trim(m.content) + "<|eot_id|>"
            case .bitnet(let bos):
                if bos && k == 0 { out += bosToken }
                out += ChatTemplate.capitalize(m.role) + ": " + ChatTemplate.trim(m.content) + "<|eot_id|>"
            }
        }
        if addGenerationPrompt {
            switch style {
            case .llama3: out += "<|start_header_id|>assistant<|end_header_id|>\n\n"
            case .bitnet: out += "Assistant: "
            }
        }
        return out
    }

    /// Jinja's `trim`: Python `str.strip()`, whose whitespace also includes U+001C…U+001F.
    static func trim(_ s: String) -> String {
        let scalars = Array(s.unicodeScalars)
        func isSpace(_ c: Unicode.Scalar) -> Bool { c.properties.isWhitespace || (0x1C...0x1F).contains(c.value) }
        var lo = 0, hi = scalars.count
        while lo < hi && isSpace(scalars[lo]) { lo += 1 }
        while hi > lo && isSpace(scalars[hi - 1]) { hi -= 1 }
        var out = String.UnicodeScalarView()
        out.append(contentsOf: scalars[lo..<hi])
        return String(out)
    }

    /// Jinja's `capitalize`: first character upper case, the rest lower case.
    static func capitalize(_ s: String) -> String {
        guard let first = s.first else { return s }
        return first.uppercased() + s.dropFirst().lowercased()
    }

    /// Whitespace-insensitive form for comparing template sources: whitespace runs collapse to one
    /// space, whitespace-control dashes (`{%-`, `-%}`) go, and spaces next to tag delimiters go, so
    /// a re-indented or one-line copy of the same template compares equal.
    static func normalizeWhitespace(_ s: String) -> String {
        var t = s.split(whereSeparator: { $0.isWhitespace }).joined(separator: " ")
        for (from, to) in [("{%-", "{%"), ("-%}", "%}"), ("{{-", "{{"), ("-}}", "}}")] {
            t = t.replacingOccurrences(of: from, with: to)
        }
        for delimiter in ["{%", "%}", "{{", "}}"] {
            t = t.replacingOccurrences(of: " " + delimiter, with: delimiter)
            t = t.replacingOccurrences(of: delimiter + " ", with: delimiter)
        }
        return t
    }
}
