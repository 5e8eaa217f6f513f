import Foundation
import Synchronization

/// A Hugging Face `tokenizer.json` loaded for encoding and decoding.
///
/// It reproduces the ids of the Hugging Face `tokenizers` library for byte-level BPE tokenizers of
/// the Llama 3 / GPT-2 family, so that a model checkpoint sees exactly the token ids it was trained
/// on. Components it does not implement are rejected at load time with `TokenizerError.unsupported`
/// instead of being approximated. Instances are immutable apart from an internal pre-token cache
/// behind a lock (a caller finding it busy uses a private cache), so one tokenizer can be shared
/// across tasks.
public final class Tokenizer: Sendable {
    let model: BPEModel
    let steps: [PreTokenizerStep]
    let addedMatcher: AddedTokenMatcher
    /// Ids the post-processor puts before and after the text when special tokens are requested.
    let templatePrefix: [Int]
    let templateSuffix: [Int]
    let decoderIsByteLevel: Bool
    /// Token text by id (model vocabulary overlaid with added tokens); nil for holes.
    let tokens: [String?]
    /// Bytes each id decodes to, as `decodeArena[decodeStart[id]..<decodeStart[id + 1]]`.
    let decodeArena: [UInt8]
    let decodeStart: [Int32]
    let specialIDs: [Bool]
    let addedByContent: [String: AddedToken]
    /// Every token from `added_tokens`, in file order.
    public let addedTokens: [AddedToken]
    private let cache = Mutex(WordCache())

    /// Loads a `tokenizer.json` file.
    ///
    /// A path that is not a regular file (a directory, a device such as `/dev/zero`, a FIFO) is
    /// refused by name before it is opened.
    public convenience init(contentsOf url: URL) throws(TokenizerError) {
        let path = url.resolvingSymlinksInPath().path
        if let type = try? FileManager.default.attributesOfItem(atPath: path)[.type] as? FileAttributeType, type != .typeRegular {
            let kind: String
            switch type {
            case .typeDirectory: kind = "a directory"
            case .typeCharacterSpecial: kind = "a character device"
            case .typeBlockSpecial: kind = "a block device"
            case .typeSocket: kind = "a socket"
            default: kind = "not a regular file"
            }
            throw .io("\(url.path) is \(kind), expected a tokenizer.json file")
        }
        let data: Data
        do { data = try Data(contentsOf: url) } catch { throw .io("\(url.path): \(error.localizedDescription)") }
        try self.init(data: data)
    }

    /// Parses the contents of a `tokenizer.json` file.
    ///
    /// A `Split` pre-tokenizer whose regex is not the Llama 3 or GPT-2 pattern runs on Swift's
    /// backtracking `Regex`, without a step limit: a crafted pattern such as `(a+)+$` can make
    /// `encode` take exponential time. Load tokenizers from sources you trust.
    public init(data: Data) throws(TokenizerError) {
        let root = try JSON.parse([UInt8](data))
        guard case .object = root else { throw .invalidTokenizer("top level is not an object") }

        if let n = root["normalizer"], !n.isNull {
            let type = n["type"]?.string ?? "?"
            if !(type == "Sequence" && (n["normalizers"]?.array?.isEmpty ?? false)) {
                throw .unsupported(component: "normalizer", type: type)
            }
        }
        var steps: [PreTokenizerStep] = []
        if let p = root["pre_tokenizer"], !p.isNull { try Tokenizer.parsePreTokenizer(p, into: &steps) }
        var sawByteLevel = false
        for s in steps {
            if case .byteLevel = s { sawByteLevel = true } else if sawByteLevel {
                throw .unsupported(component: "pre_tokenizer", type: "Split after ByteLevel")
            }
        }
        self.steps = steps
        let byteLevel = sawByteLevel
        guard let modelJSON = root["model"] else { throw .invalidTokenizer("no model") }
        model = try BPEModel(json: modelJSON, byteLevel: byteLevel)

        // Added tokens.
        var added: [AddedToken] = []
        for (k, t) in (root["added_tokens"]?.array ?? []).enumerated() {
            guard let content = t["content"]?.string, let id = t["id"]?.int, id >= 0, id < BPEModel.maxID else {
                throw .invalidTokenizer("added_tokens[\(k)] needs a content string and an id in 0..<\(BPEModel.maxID)")
            }
            let special = t["special"]?.bool ?? false
            added.append(AddedToken(content: content, id: id, special: special,
                                    singleWord: t["single_word"]?.bool ?? false, lstrip: t["lstrip"]?.bool ?? false,
                                    rstrip: t["rstrip"]?.bool ?? false, normalized: t["normalized"]?.bool ?? !special))
        }
        addedTokens = added
        addedMatcher = AddedTokenMatcher(added)
        var byContent: [String: AddedToken] = [:]
        for t in added { byContent[t.content] = t }
        addedByContent = byContent

        // Id → token table.
        var maxID = model.tokenTexts.count - 1
        for t in added { maxID = max(maxID, t.id) }
        var tokens = model.tokenTexts
        if tokens.count < maxID + 1 { tokens += [String?](repeating: nil, count: maxID + 1 - tokens.count) }
        var special = [Bool](repeating: false, count: maxID + 1)
        for t in added { tokens[t.id] = t.content; special[t.id] = t.special }
        self.tokens = tokens
        specialIDs = special

        // Decoder.
        var byteLevelDecoder = false
        if let d = root["decoder"], !d.isNull {
            let type = d["type"]?.string ?? "?"
            if type == "ByteLevel" {
                byteLevelDecoder = true
            } else if type == "Sequence", let list = d["decoders"]?.array,
                      list.allSatisfy({ $0["type"]?.string == "ByteLevel" }), !list.isEmpty {
                byteLevelDecoder = true
            } else {
                throw .unsupported(component: "decoder", type: type)
            }
        }
        decoderIsByteLevel = byteLevelDecoder
        var arena: [UInt8] = []
        var starts = [Int32](repeating: 0, count: tokens.count + 1)
        for (id, t) in tokens.enumerated() {
            starts[id] = Int32(arena.count)
            guard let t else { continue }
            if !(byteLevelDecoder && ByteLevelMap.append(t, to: &arena)) { arena.append(contentsOf: t.utf8) }
        }
        starts[tokens.count] = Int32(arena.count)
        decodeArena = arena
        decodeStart = starts

        // Post-processor.
        var prefix: [Int] = [], suffix: [Int] = []
        if let p = root["post_processor"], !p.isNull { try Tokenizer.parsePostProcessor(p, &prefix, &suffix) }
        for id in prefix + suffix where id < 0 || id >= tokens.count || tokens[id] == nil {
            throw .invalidTokenizer("post_processor adds id \(id), which is not in the vocabulary")
        }
        templatePrefix = prefix
        templateSuffix = suffix
    }

    private static func parsePreTokenizer(_ p: JSON, into steps: inout [PreTokenizerStep]) throws(TokenizerError) {
        let type = p["type"]?.string ?? "?"
        switch type {
        case "Sequence":
            guard let list = p["pretokenizers"]?.array else { throw .invalidTokenizer("Sequence pre_tokenizer without pretokenizers") }
            for q in list { try parsePreTokenizer(q, into: &steps) }
        case "ByteLevel":
            steps.append(.byteLevel(addPrefixSpace: p["add_prefix_space"]?.bool ?? true, useRegex: p["use_regex"]?.bool ?? true))
        case "Split":
            let behaviorName = p["behavior"]?.string ?? "Isolated"
            guard let behavior = SplitBehavior(rawValue: behaviorName) else {
                throw .unsupported(component: "pre_tokenizer", type: "Split behavior '\(behaviorName)'")
            }
            let matcher: SplitMatcher
            if let source = p["pattern"]?["Regex"]?.string {
                if let known = KnownPattern(source: source) {
                    matcher = .known(known)
                } else {
                    do { matcher = .regex(RegexBox(regex: try Regex(source)), source: source) } catch {
                        throw .unsupported(component: "pre_tokenizer", type: "Split regex '\(source)' (Swift Regex cannot compile it)")
                    }
                }
            } else if let literal = p["pattern"]?["String"]?.string {
                matcher = .literal(Array(literal.utf8))
            } else {
                throw .invalidTokenizer("Split pre_tokenizer without a Regex or String pattern")
            }
            steps.append(.split(matcher, behavior, invert: p["invert"]?.bool ?? false))
        default:
            throw .unsupported(component: "pre_tokenizer", type: type)
        }
    }

    private static func parsePostProcessor(_ p: JSON, _ prefix: inout [Int], _ suffix: inout [Int]) throws(TokenizerError) {
        let type = p["type"]?.string ?? "?"
        switch type {
        case "ByteLevel":
            break  // only adjusts offsets
        case "Sequence":
            for q in p["processors"]?.array ?? [] { try parsePostProcessor(q, &prefix, &suffix) }
        case "TemplateProcessing":
            guard let single = p["single"]?.array else { throw .invalidTokenizer("TemplateProcessing without 'single'") }
            let specials = p["special_tokens"] ?? .null
            var before: [Int] = [], after: [Int] = []
            var seenSequence = false
            for item in single {
                if let name = item["SpecialToken"]?["id"]?.string {
                    guard let ids = specials[name]?["ids"]?.array?.compactMap({ $0.int }) else {
                        throw .invalidTokenizer("TemplateProcessing special token '\(name)' has no ids")
                    }
                    if seenSequence { after += ids } else { before += ids }
                } else if item["Sequence"] != nil {
                    if seenSequence { throw .unsupported(component: "post_processor", type: "TemplateProcessing with two sequences in 'single'") }
                    seenSequence = true
                } else {
                    throw .invalidTokenizer("TemplateProcessing item is neither SpecialToken nor Sequence")
                }
            }
            // A later processor wraps around the result of an earlier one.
            prefix = before + prefix
            suffix = suffix + after
        default:
            throw .unsupported(component: "post_processor", type: type)
        }
    }

    // MARK: Lookup

    /// One more than the largest id, i.e. the number of rows an embedding matrix needs.
    public var vocabularySize: Int { tokens.count }

    /// The id of a token given by its vocabulary text (byte-level form, e.g. "Ġthe"), or of an
    /// added token such as `<|eot_id|>`; nil when absent. Runtimes use this to find stop ids.
    public func id(for token: String) -> Int? {
        if let t = addedByContent[token] { return t.id }
        if let id = model.id(for: token) { return Int(id) }
        return nil
    }

    /// The vocabulary text of an id, or nil.
    public func token(for id: Int) -> String? {
        guard id >= 0 && id < tokens.count else { return nil }
        return tokens[id]
    }

    /// Whether the id is a special added token (skipped by `decode(_:skipSpecialTokens: true)`).
    public func isSpecial(_ id: Int) -> Bool { id >= 0 && id < specialIDs.count && specialIDs[id] }

    /// The added token with this exact text (special or not), if any.
    public func addedToken(_ content: String) -> AddedToken? { addedByContent[content] }

    /// Ids that end a generation when sampled: whichever of `<|eot_id|>`, `<|end_of_text|>`,
    /// `<|eom_id|>` and `<|endoftext|>` exist, in that order.
    public var stopTokenIDs: [Int] {
        ["<|eot_id|>", "<|end_of_text|>", "<|eom_id|>", "<|endoftext|>"].compactMap { addedByContent[$0]?.id }
    }

    // MARK: Encoding

    /// Token ids of `text`, with the post-processor's special tokens (Llama 3: `<|begin_of_text|>`)
    /// when `addSpecialTokens` is true. Added tokens written in the text are always recognised.
    public func encode(_ text: String, addSpecialTokens: Bool = true) -> [Int] {
        var out: [Int32] = []
        out.reserveCapacity(text.utf8.count / 3 + 4)
        let bytes = Array(text.utf8)
        // A concurrent caller that finds the shared cache busy uses a private one instead of waiting.
        let shared: Void? = cache.withLockIfAvailable { cache in encodeBody(bytes, into: &out, cache: &cache) }
        if shared == nil {
            var local = WordCache()
            encodeBody(bytes, into: &out, cache: &local)
        }
        var result: [Int] = []
        result.reserveCapacity(out.count + templatePrefix.count + templateSuffix.count)
        if addSpecialTokens { result += templatePrefix }
        for id in out { result.append(Int(id)) }
        if addSpecialTokens { result += templateSuffix }
        return result
    }

    private func encodeBody(_ text: [UInt8], into out: inout [Int32], cache: inout WordCache) {
        var buf = text
        var scratch = Scratch()
        var symbols: [Int32] = []
        for seg in addedMatcher.split(text) {
            if seg.id >= 0 { out.append(seg.id); continue }
            if seg.end <= seg.start { continue }
            var pieces = [Piece(start: Int32(seg.start), end: Int32(seg.end))]
            for step in steps { pieces = step.apply(&buf, pieces, &scratch) }
            buf.withUnsafeBufferPointer { b in
                for p in pieces where p.end > p.start {
                    let word = UnsafeBufferPointer(rebasing: b[Int(p.start)..<Int(p.end)])
                    cache.encode(word, model: model, into: &out, symbols: &symbols)
                }
            }
        }
    }

    // MARK: Decoding

    /// The text of `ids`, as Hugging Face's `decode` produces it (invalid UTF-8 becomes U+FFFD).
    /// Throws `TokenizerError.unknownTokenID` for an id the tokenizer does not have.
    public func decode(_ ids: [Int], skipSpecialTokens: Bool = false) throws(TokenizerError) -> String {
        var bytes: [UInt8] = []
        var first = true
        for id in ids {
            guard id >= 0 && id < tokens.count, tokens[id] != nil else { throw .unknownTokenID(id) }
            if skipSpecialTokens && specialIDs[id] { continue }
            appendBytes(of: id, to: &bytes, first: &first)
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    /// Appends the decoded bytes of one id (caller has validated it); without a decoder tokens are
    /// joined with spaces, as Hugging Face does.
    func appendBytes(of id: Int, to bytes: inout [UInt8], first: inout Bool) {
        if !decoderIsByteLevel && !first { bytes.append(0x20) }
        first = false
        bytes.append(contentsOf: decodeArena[Int(decodeStart[id])..<Int(decodeStart[id + 1])])
    }

    /// An incremental decoder for generated ids.
    public func streamingDecoder(skipSpecialTokens: Bool = false) -> StreamingDecoder {
        StreamingDecoder(tokenizer: self, skipSpecialTokens: skipSpecialTokens)
    }
}

/// Pre-token → ids cache. Text repeats its words, so most pre-tokens skip BPE entirely.
struct WordCache: ~Copyable {
    var table = ByteTable(capacity: 4096)
    var ids: [Int32] = []
    var starts: [Int32] = [0]
    static let limit = 262_144

    mutating func encode(_ word: UnsafeBufferPointer<UInt8>, model: BPEModel, into out: inout [Int32], symbols: inout [Int32]) {
        if let e = table.find(word) {
            let k = Int(e)
            out.append(contentsOf: ids[Int(starts[k])..<Int(starts[k + 1])])
            return
        }
        let before = out.count
        model.encodeWord(word, into: &out, symbols: &symbols)
        if word.count > 256 { return }
        if table.count >= WordCache.limit {
            table = ByteTable(capacity: 4096); ids.removeAll(keepingCapacity: true); starts = [0]
        }
        table.insert(word, value: Int32(starts.count - 1))
        ids.append(contentsOf: out[before...])
        starts.append(Int32(ids.count))
    }
}
