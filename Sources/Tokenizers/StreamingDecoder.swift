/// Turns generated ids into text as they arrive, never splitting a UTF-8 character.
///
/// A byte-level token can end in the middle of a multi-byte character (emoji, CJK). Printing each
/// token's decode on its own would show U+FFFD where the next token completes the character, so
/// bytes that could still become a valid character wait for the next id. Bytes that can no longer
/// complete are replaced with U+FFFD exactly where a full `decode` would replace them, so the
/// concatenated output always equals `Tokenizer.decode` of all ids.
public struct StreamingDecoder: Sendable {
    let tokenizer: Tokenizer
    let skipSpecialTokens: Bool
    private var pending: [UInt8] = []
    private var first = true

    /// A decoder for one generation; `skipSpecialTokens` drops special added tokens (e.g. `<|eot_id|>`)
    /// from the text, as `Tokenizer.decode(_:skipSpecialTokens:)` does.
    public init(tokenizer: Tokenizer, skipSpecialTokens: Bool = false) {
        self.tokenizer = tokenizer
        self.skipSpecialTokens = skipSpecialTokens
    }

    /// Adds one id and returns the text that became complete (possibly empty).
    public mutating func append(_ id: Int) throws(TokenizerError) -> String {
        guard id >= 0 && id < tokenizer.tokens.count, tokenizer.tokens[id] != nil else { throw .unknownTokenID(id) }
        if skipSpecialTokens && tokenizer.specialIDs[id] { return "" }
        tokenizer.appendBytes(of: id, to: &pending, first: &first)
        let keep = StreamingDecoder.incompleteTail(pending)
        if keep == pending.count { return "" }
        let ready = String(decoding: pending[0..<(pending.count - keep)], as: UTF8.self)
        pending.removeFirst(pending.count - keep)
        return ready
    }

    /// Flushes what is left (an incomplete character becomes U+FFFD) and resets the decoder.
    public mutating func finish() -> String {
        let rest = String(decoding: pending, as: UTF8.self)
        pending.removeAll()
        first = true
        return rest
    }

    /// Length of the trailing bytes that form a proper prefix of some valid UTF-8 sequence.
    static func incompleteTail(_ b: [UInt8]) -> Int {
        let n = b.count
        var k = 1
        while k <= 3 && k <= n {
            let lead = b[n - k]
            if lead & 0xC0 == 0x80 { k += 1; continue }  // continuation: look further back
            let need: Int
            switch lead {
            case 0xC2...0xDF: need = 2
            case 0xE0...0xEF: need = 3
            case 0xF0...0xF4: need = 4
            default: return 0
            }
            if k >= need { return 0 }
            // The continuation bytes so far must be allowed after this lead.
            for j in 1..<k {
                let c = b[n - k + j]
                var lo: UInt8 = 0x80, hi: UInt8 = 0xBF
                if j == 1 {
                    switch lead {
                    case 0xE0: lo = 0xA0
                    case 0xED: hi = 0x9F
                    case 0xF0: lo = 0x90
                    case 0xF4: hi = 0x8F
                    default: break
                    }
                }
                if c < lo || c > hi { return 0 }
            }
            return k
        }
        return 0
    }
}
