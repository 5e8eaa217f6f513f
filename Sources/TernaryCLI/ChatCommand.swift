import ArgumentParser
import Backends
import BitNet
import Foundation
import Layers
import TensorCore
import Tokenizers

#if canImport(Glibc)
import Glibc
#endif

/// `ternary chat`: an interactive conversation with a checkpoint, one user turn per input line.
struct ChatCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "chat",
        abstract: "Chat with a BitNet checkpoint: one user turn per line of standard input, the reply streamed to stdout.",
        discussion: """
            The prompt format is the checkpoint's chat template (tokenizer_config.json). The KV \
            cache is kept across turns: each turn runs only its own tokens. '/reset' starts a new \
            conversation; end of input (Ctrl-D) ends. Input may be piped: replies go to stdout, \
            notes to stderr. When the context is full, the conversation starts over (said on stderr).
            """
    )

    @Option(help: "A Hugging Face BitNet checkpoint directory (with tokenizer.json and tokenizer_config.json).")
    var model: String

    @Option(help: "A tokenizer.json to use instead of --model DIR's.")
    var tokenizer: String?

    @Option(help: "Backend of every ternary layer (see 'ternary info').")
    var backend: String = "naive"

    @Option(help: "Thread count.")
    var threads: Int = 1

    @Option(help: "The most tokens of one reply.")
    var maxNewTokens: Int = 256

    /// `--temperature`, `--top-k`, `--top-p`.
    @OptionGroup var sampling: SamplingOptions

    @Option(help: "Seed of sampling.")
    var seed: UInt64 = 42

    @Option(help: "A system message at the start of the conversation.")
    var system: String?

    @Option(help: "Positions of the KV cache: the conversation's length before it starts over (default: the model's maximum).")
    var context: Int?

    @Option(help: "LM head format: int8 (fast), int4 (fastest, least exact) or float32 (exact reference).")
    var lmHead: LMHeadFormat = .int8

    @Flag(help: "After each turn, print its token counts and the cache length on stderr.")
    var verbose = false

    func validate() throws {
        let config: BitNetConfig
        do { config = try BitNetConfig.read(directory: model) } catch { throw ValidationError("--model: \(error)") }
        do { try TokenizerFiles(tokenizer: tokenizer, model: model)!.checkExists() } catch { throw ValidationError("\(error)") }
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        do { _ = try BackendRegistry.backend(named: backend) } catch { throw ValidationError("--backend: \(error)") }
        if maxNewTokens < 1 { throw ValidationError("--max-new-tokens must be at least 1, got \(maxNewTokens)") }
        if let context, !(2...config.maxPositionEmbeddings).contains(context) {
            throw ValidationError("--context must be in 2...\(config.maxPositionEmbeddings), got \(context)")
        }
    }

    func run() throws {
        OpenBLASCore.reexecWithBestCoreIfNeeded()
        try run(input: { readLine(strippingNewline: true) })
    }

    /// The conversation, reading lines from `input` until it returns nil.
    func run(input: () -> String?) throws {
        let conversation = try makeConversation()
        let interactive = isatty(STDIN_FILENO) != 0 && TextOutput.capture == nil
        if interactive { TextOutput.note("(one message per line; /reset starts over; Ctrl-D ends)") }
        while true {
            if interactive { FileHandle.standardError.write(Data("> ".utf8)) }
            guard let line = input() else { break }
            let message = line.trimmingCharacters(in: .whitespaces)
            if message.isEmpty { continue }
            if message == "/reset" {
                conversation.reset()
                TextOutput.note("(conversation reset)")
                continue
            }
            let turn = try conversation.respond(to: message)
            if verbose, let turn {
                TextOutput.note("(turn: \(turn.appended.count) new tokens, reply \(turn.reply.count) tokens, cache \(conversation.session.length)/\(conversation.session.cache.capacity))")
            }
        }
    }

    /// The model, tokenizer and template of the flags.
    func makeConversation() throws -> ChatConversation {
        let files = TokenizerFiles(tokenizer: tokenizer, model: model)!
        let tok = try files.loadTokenizer()
        let template = try files.loadChatTemplate()
        var config = try BitNetConfig.read(directory: model)
        let capacity = context ?? config.cacheCapacity
        config.kvCacheCapacity = capacity
        let built = try BitNetModel.load(checkpoint: model, backend: BackendRegistry.backend(named: backend),
                                         context: ComputeContext(threads: threads), lmHeadFormat: lmHead, kvCacheCapacity: capacity)
        let text = TextSession(tokenizer: tok, template: template)
        let parameters = sampling.parameters(
            maxNewTokens: maxNewTokens, seed: seed, stopTokens: text.stopTokens(model: built.stopTokens, vocabularySize: built.vocabularySize))
        return try ChatConversation(model: built, text: text, system: system, parameters: parameters, capacity: capacity)
    }
}

/// A conversation kept in one `GenerationSession`: each user turn appends only its own tokens
/// (the template's rendering of the new message and the generation prompt) after what the cache
/// holds, so earlier turns are never run again.
final class ChatConversation {
    let session: GenerationSession
    let text: TextSession
    let template: ChatTemplate
    let system: String?
    let parameters: GenerationParameters
    /// The messages so far (system, then user / assistant pairs), as the template sees them.
    private(set) var history: [ChatMessage] = []
    /// Whether the last reply ended with a stop token (else the template's end-of-turn id is
    /// added before the next user message).
    private var lastReplyClosed = true
    private let endOfTurnID: Int?

    /// One answered turn.
    struct Turn {
        /// The ids appended for this turn (after the previous reply's last token, which runs first).
        var appended: [Int]
        /// Cache positions before and after running the turn's ids.
        var lengthBefore: Int
        var lengthAfterAppend: Int
        /// The generated ids, the stop token included.
        var reply: [Int]
        /// The reply's text, as streamed.
        var text: String
        /// Whether the conversation was started over because the context was full.
        var restarted: Bool
    }

    init(model: any CausalLanguageModel, text: TextSession, system: String?, parameters: GenerationParameters, capacity: Int) throws {
        guard let template = text.template else { throw TextCommandError("chat needs a chat template") }
        session = try GenerationSession(model: model, capacity: capacity)
        self.text = text
        self.template = template
        self.system = system
        self.parameters = parameters
        endOfTurnID = text.tokenizer.id(for: "<|eot_id|>")
        reset()
    }

    /// Starts over: an empty cache and only the system message.
    func reset() {
        session.reset()
        history = system.map { [ChatMessage(role: "system", content: $0)] } ?? []
        lastReplyClosed = true
    }

    /// The ids the next user message adds: the whole rendered prompt on an empty cache, else the
    /// part of the rendering after the history (plus an end-of-turn id if the last reply lacked one).
    func turnIDs(for message: String) -> [Int] {
        let user = ChatMessage(role: "user", content: message)
        if session.length == 0 && session.pendingToken == nil {
            return text.tokenizer.encode(template.render(history + [user], addGenerationPrompt: true),
                                         addSpecialTokens: !template.rendersBOS)
        }
        let before = template.render(history, addGenerationPrompt: false)
        let after = template.render(history + [user], addGenerationPrompt: true)
        // The template renders message by message, so the history's text is a prefix.
        let continuation = after.hasPrefix(before) ? String(after.dropFirst(before.count))
            : template.render([user], addGenerationPrompt: true)
        var ids = lastReplyClosed ? [] : endOfTurnID.map { [$0] } ?? []
        ids += text.tokenizer.encode(continuation, addSpecialTokens: false)
        return ids
    }

    /// Positions the cache would hold after running `ids` (the pending token included).
    private func lengthAfter(_ ids: [Int]) -> Int { session.length + (session.pendingToken == nil ? 0 : 1) + ids.count }

    /// Answers one user message, streaming the reply through `sink`; nil (with a note on stderr)
    /// when the message alone does not fit in the context.
    @discardableResult
    func respond(to message: String, sink: @escaping (String) -> Void = TextOutput.write) throws -> Turn? {
        var ids = turnIDs(for: message)
        var restarted = false
        if lengthAfter(ids) > session.cache.capacity && session.length > 0 {
            TextOutput.note("(the conversation would exceed the context of \(session.cache.capacity) tokens: starting a new one)")
            reset()
            restarted = true
            ids = turnIDs(for: message)
        }
        if lengthAfter(ids) > session.cache.capacity {
            TextOutput.note("(message too long: \(ids.count) tokens, the context holds \(session.cache.capacity); nothing generated)")
            return nil
        }
        do { try text.checkVocabulary(ids, modelVocabularySize: session.model.vocabularySize) } catch {
            TextOutput.note("(\(error))")
            return nil
        }
        let lengthBefore = session.length
        try session.append(ids)
        let lengthAfterAppend = session.length
        var streamer = TextStreamer(tokenizer: text.tokenizer, sink: sink)
        let result = try session.generate(parameters: parameters) { _, token in
            streamer.append(token)
            return true
        }
        streamer.finish()
        sink("\n")
        lastReplyClosed = result.stoppedAtStopToken
        if !result.stoppedAtStopToken && session.length >= session.cache.capacity {
            TextOutput.note("(context of \(session.cache.capacity) tokens full: the next message starts a new conversation)")
        }
        history.append(ChatMessage(role: "user", content: message))
        history.append(ChatMessage(role: "assistant", content: streamer.text))
        return Turn(appended: ids, lengthBefore: lengthBefore, lengthAfterAppend: lengthAfterAppend, reply: result.tokens,
                    text: streamer.text, restarted: restarted)
    }
}
