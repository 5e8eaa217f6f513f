import ArgumentParser
import Foundation
import BitNet
import SafeTensors
import Tokenizers

#if canImport(Glibc)
import Glibc
#endif

/// A one-line failure of the text commands (missing files, a prompt that does not fit, ...),
/// printed by ArgumentParser as `Error: <message>`.
struct TextCommandError: Error, CustomStringConvertible {
    var description: String
    init(_ description: String) { self.description = description }
}

/// Where the text commands write generated text: stdout, flushed after every piece so a reader
/// sees it as it is produced, or, while bound, a closure (tests read a command's text this way,
/// unaffected by other tests printing at the same time).
enum TextOutput {
    @TaskLocal static var capture: (@Sendable (String) -> Void)? = nil

    static func write(_ text: String) {
        guard !text.isEmpty else { return }
        if let capture { capture(text); return }
        print(text, terminator: "")
        fflush(nil)   // every output stream, stdout included (print's buffer)
    }

    /// A line on stderr (progress, speeds, notes): never mixed into the generated text.
    static func note(_ line: String) {
        FileHandle.standardError.write(Data((line + "\n").utf8))
    }
}

/// The tokenizer files of a checkpoint directory: `DIR/tokenizer.json` (or an explicit
/// `--tokenizer PATH`) and `tokenizer_config.json` for the chat template.
struct TokenizerFiles {
    /// The tokenizer.json to load.
    let tokenizerPath: String
    /// The checkpoint directory, when there is one.
    let modelDirectory: String?

    /// `--tokenizer` when given, else `DIR/tokenizer.json`; nil when neither is known.
    init?(tokenizer: String?, model: String?) {
        if let tokenizer {
            tokenizerPath = tokenizer
        } else if let model {
            tokenizerPath = (model as NSString).appendingPathComponent("tokenizer.json")
        } else {
            return nil
        }
        modelDirectory = model
    }

    /// The largest tokenizer.json read (Llama 3's is 9 MB) and tokenizer_config.json (a few KB).
    static let tokenizerByteLimit = 512 << 20
    static let configByteLimit = 16 << 20

    /// Throws a message naming the path (and the flag to override it) when the file is missing,
    /// what the path is when it is not a regular file (a directory, a device, a FIFO), and its
    /// size when it is larger than `tokenizerByteLimit`.
    func checkExists() throws {
        guard try FileKind.of(tokenizerPath) != .absent else {
            throw TextCommandError("no tokenizer file at \(tokenizerPath)" + (modelDirectory != nil ? " (pass --tokenizer PATH to use another one)" : ""))
        }
        _ = try FileKind.regularFileSize(tokenizerPath, expected: "a tokenizer.json file", limit: Self.tokenizerByteLimit)
    }

    /// The parsed tokenizer.
    func loadTokenizer() throws -> Tokenizer {
        try checkExists()
        do { return try Tokenizer(contentsOf: URL(fileURLWithPath: tokenizerPath)) } catch {
            throw TextCommandError("\(tokenizerPath): \(error)")
        }
    }

    /// `tokenizer_config.json` next to the tokenizer file, else in the checkpoint directory.
    var configCandidates: [String] {
        var paths = [((tokenizerPath as NSString).deletingLastPathComponent as NSString).appendingPathComponent("tokenizer_config.json")]
        if let dir = modelDirectory {
            let p = (dir as NSString).appendingPathComponent("tokenizer_config.json")
            if !paths.contains(p) { paths.append(p) }
        }
        return paths
    }

    /// The chat template the checkpoint's `tokenizer_config.json` declares.
    /// - Throws: when there is no such file, it has no `chat_template`, or the template is not a built-in one.
    func loadChatTemplate() throws -> ChatTemplate {
        guard let path = configCandidates.first(where: { (try? FileKind.of($0)) != .absent }) else {
            throw TextCommandError("no tokenizer_config.json (looked for \(configCandidates.joined(separator: ", "))); it holds the chat template")
        }
        _ = try FileKind.regularFileSize(path, expected: "a tokenizer_config.json file", limit: Self.configByteLimit)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TextCommandError("\(path): \(error.localizedDescription)")
        }
        do { return try ChatTemplate.detect(tokenizerConfig: data) } catch { throw TextCommandError("\(path): \(error)") }
    }
}

/// A loaded tokenizer (and chat template) with the prompt encoding and stop ids the generation
/// commands share.
struct TextSession {
    let tokenizer: Tokenizer
    let template: ChatTemplate?

    /// The ids of a user prompt: the chat template's rendering of `[user: prompt]` with the
    /// generation prompt when there is a template, else the plain text; the BOS comes once, either
    /// from the template's text or from the tokenizer's post-processor.
    func encodePrompt(_ prompt: String, system: String? = nil) -> [Int] {
        guard let template else { return tokenizer.encode(prompt, addSpecialTokens: true) }
        var messages = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        messages.append(ChatMessage(role: "user", content: prompt))
        return tokenizer.encode(template.render(messages, addGenerationPrompt: true), addSpecialTokens: !template.rendersBOS)
    }

    /// The model's EOS ids and the tokenizer's end-of-turn / end-of-text ids that the model can produce.
    func stopTokens(model: Set<Int>, vocabularySize: Int) -> Set<Int> {
        model.union(tokenizer.stopTokenIDs.filter { $0 < vocabularySize })
    }

    /// Checks that every prompt id is a row of the model's embedding.
    func checkVocabulary(_ ids: [Int], modelVocabularySize: Int) throws {
        if let bad = ids.first(where: { $0 >= modelVocabularySize }) {
            throw TextCommandError("the tokenizer gives id \(bad), outside the model's vocabulary 0..<\(modelVocabularySize): the tokenizer does not belong to this model")
        }
    }
}

/// Turns generated ids into text as they arrive and writes each complete piece (see
/// `StreamingDecoder`). Special tokens (end of turn, ...) are left out of the text; an id the
/// tokenizer does not know (a padded vocabulary row) writes nothing.
struct TextStreamer {
    private var decoder: StreamingDecoder
    private let tokenizer: Tokenizer
    private let sink: (String) -> Void
    /// Everything written so far.
    private(set) var text = ""

    init(tokenizer: Tokenizer, sink: @escaping (String) -> Void = TextOutput.write) {
        self.tokenizer = tokenizer
        decoder = tokenizer.streamingDecoder(skipSpecialTokens: true)
        self.sink = sink
    }

    mutating func append(_ id: Int) {
        guard tokenizer.token(for: id) != nil, let piece = try? decoder.append(id) else { return }
        emit(piece)
    }

    /// Flushes an incomplete character at the end (as U+FFFD, as a full decode would).
    mutating func finish() { emit(decoder.finish()) }

    private mutating func emit(_ piece: String) {
        guard !piece.isEmpty else { return }
        text += piece
        sink(piece)
    }

    /// The text `ids` decode to, as the streamer writes them.
    static func fullText(_ ids: [Int], tokenizer: Tokenizer) -> String {
        (try? tokenizer.decode(ids.filter { tokenizer.token(for: $0) != nil }, skipSpecialTokens: true)) ?? ""
    }
}

/// `generate`'s text options: `--prompt`, `--chat`, `--tokenizer`.
struct TextPromptOptions: ParsableArguments {
    @Option(help: "Prompt text, encoded with the tokenizer (--model DIR's tokenizer.json or --tokenizer); the generated text streams to stdout. Excludes --tokens.")
    var prompt: String?

    @Flag(help: "Wrap --prompt in the checkpoint's chat template (tokenizer_config.json) as one user turn.")
    var chat = false

    @Option(help: "A tokenizer.json to use instead of --model DIR's.")
    var tokenizer: String?

    /// Checks the combination with `--tokens` and `--model` (files are looked at, not parsed).
    func validate(tokens: String?, model: String?) throws {
        switch (prompt, tokens) {
        case (nil, nil): throw ValidationError("give a prompt: --tokens IDS or --prompt TEXT")
        case (.some, .some): throw ValidationError("--prompt and --tokens exclude each other")
        case (nil, .some):
            if chat { throw ValidationError("--chat needs --prompt") }
        case (.some, nil):
            guard let files = TokenizerFiles(tokenizer: tokenizer, model: model) else {
                throw ValidationError("--prompt needs a tokenizer: --model DIR (with DIR/tokenizer.json) or --tokenizer PATH")
            }
            do { try files.checkExists() } catch { throw ValidationError("\(error)") }
        }
    }

    /// The tokenizer and template for `--prompt`; nil with `--tokens`.
    func session(model: String?) throws -> TextSession? {
        guard prompt != nil, let files = TokenizerFiles(tokenizer: tokenizer, model: model) else { return nil }
        let tokenizer = try files.loadTokenizer()
        return TextSession(tokenizer: tokenizer, template: chat ? try files.loadChatTemplate() : nil)
    }
}

extension GenerateCommand {
    /// `--prompt` encoded (with the chat template under `--chat`), checked against the model's
    /// vocabulary and context.
    func promptIDs(_ session: TextSession, config: BitNetConfig) throws -> [Int] {
        let ids = session.encodePrompt(text.prompt ?? "")
        guard !ids.isEmpty else { throw TextCommandError("--prompt: the text encodes to no tokens") }
        try session.checkVocabulary(ids, modelVocabularySize: config.vocabSize)
        if ids.count + maxNewTokens - 1 > config.cacheCapacity {
            throw TextCommandError("prompt (\(ids.count) tokens) + --max-new-tokens (\(maxNewTokens)) exceed the context \(config.cacheCapacity)")
        }
        return ids
    }
}
