import ArgumentParser
import Foundation
import Tokenizers

/// `ternary tokenize`: text to ids and ids to text with a Hugging Face tokenizer.json.
struct TokenizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "tokenize",
        abstract: "Encode text to token ids (--text) or decode ids to text (--ids) with a tokenizer.json.",
        discussion: """
            --text prints the ids, comma-separated (paste them into 'generate --tokens'); the \
            tokenizer's post-processor adds its special tokens (Llama 3: <|begin_of_text|>) unless \
            --no-special. --ids prints the text; --no-special leaves special tokens out of it.
            """
    )

    @Option(help: "A Hugging Face tokenizer.json.")
    var tokenizer: String

    @Option(help: "Text to encode.")
    var text: String?

    @Option(help: "Comma-separated token ids to decode, e.g. 1,2,3.")
    var ids: String?

    @Flag(help: "With --text: no post-processor tokens (no BOS). With --ids: leave special tokens out of the text.")
    var noSpecial = false

    @Flag(help: "Print one JSON object: {\"ids\": [...]} with --text, {\"text\": \"...\"} with --ids.")
    var json = false

    struct IDsResult: Encodable { var ids: [Int] }
    struct TextResult: Encodable { var text: String }

    /// Parses "1,2,3" (whitespace allowed) into ids.
    static func parseIDs(_ text: String) throws -> [Int] {
        guard !text.trimmingCharacters(in: .whitespaces).isEmpty else { throw ValidationError("--ids: empty id list") }
        return try text.split(separator: ",", omittingEmptySubsequences: false).map { part in
            let p = part.trimmingCharacters(in: .whitespaces)
            guard let v = Int(p), v >= 0 else { throw ValidationError("--ids: '\(p)' is not a token id (a non-negative integer)") }
            return v
        }
    }

    func validate() throws {
        switch (text, ids) {
        case (nil, nil): throw ValidationError("give --text TEXT (to encode) or --ids IDS (to decode)")
        case (.some, .some): throw ValidationError("--text and --ids exclude each other: give one")
        case (nil, .some(let list)): _ = try TokenizeCommand.parseIDs(list)
        case (.some, nil): break
        }
        do { try TokenizerFiles(tokenizer: tokenizer, model: nil)!.checkExists() } catch { throw ValidationError("--tokenizer: \(error)") }
    }

    func run() throws {
        let tok = try TokenizerFiles(tokenizer: tokenizer, model: nil)!.loadTokenizer()
        if let text {
            let ids = tok.encode(text, addSpecialTokens: !noSpecial)
            if json { try printJSON(IDsResult(ids: ids)) } else { print(ids.map(String.init).joined(separator: ",")) }
        } else if let list = ids {
            let decoded: String
            do { decoded = try tok.decode(try TokenizeCommand.parseIDs(list), skipSpecialTokens: noSpecial) } catch let error as TokenizerError {
                throw TextCommandError("--ids: \(error) (the tokenizer has ids 0..<\(tok.vocabularySize))")
            }
            if json { try printJSON(TextResult(text: decoded)) } else { print(decoded) }
        }
    }
}
