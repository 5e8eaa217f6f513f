/// A token from `tokenizer.json`'s `added_tokens`, recognised in raw text before pre-tokenization.
///
/// Chat formats rely on these (`<|eot_id|>`, `<|start_header_id|>`): they must come out as one id
/// even though the BPE merges would split their text.
public struct AddedToken: Sendable, Equatable {
    /// The token text.
    public let content: String
    /// The id it encodes to.
    public let id: Int
    /// Special tokens are dropped by `decode(_:skipSpecialTokens: true)`.
    public let special: Bool
    /// Only matches when not inside a word (Hugging Face's `\w` test on both sides).
    public let singleWord: Bool
    /// Also swallows the whitespace before the match.
    public let lstrip: Bool
    /// Also swallows the whitespace after the match.
    public let rstrip: Bool
    /// Whether it is matched against normalized text (second pass) or raw text (first pass).
    public let normalized: Bool
}

/// Splits text at added tokens exactly as Hugging Face's `AddedVocabulary` does: leftmost-longest
/// matches of non-normalized tokens first, then normalized tokens inside the remaining gaps.
struct AddedTokenMatcher: Sendable {
    struct Entry: Sendable {
        let bytes: [UInt8]
        let token: AddedToken
    }

    /// Per group (raw, normalized) and first byte: entries, longest first.
    private let buckets: [[[Entry]]]
    let isEmpty: Bool

    init(_ tokens: [AddedToken]) {
        var groups = [[[Entry]]](repeating: [[Entry]](repeating: [], count: 256), count: 2)
        for t in tokens where !t.content.isEmpty {
            let bytes = Array(t.content.utf8)
            groups[t.normalized ? 1 : 0][Int(bytes[0])].append(Entry(bytes: bytes, token: t))
        }
        for g in 0..<2 { for b in 0..<256 { groups[g][b].sort { $0.bytes.count > $1.bytes.count } } }
        buckets = groups
        isEmpty = tokens.isEmpty
    }

    /// A segment of the input: either an added token's id or a byte range to pre-tokenize.
    struct Segment {
        var start: Int
        var end: Int
        var id: Int32
    }

    func split(_ text: [UInt8]) -> [Segment] {
        var segments = [Segment(start: 0, end: text.count, id: -1)]
        if isEmpty { return segments }
        for group in 0..<2 {
            var next: [Segment] = []
            for s in segments {
                if s.id >= 0 || s.end == s.start { next.append(s); continue }
                splitOne(text, s.start, s.end, buckets[group], &next)
            }
            segments = next
        }
        return segments
    }

    private func splitOne(_ text: [UInt8], _ lo: Int, _ hi: Int, _ bucket: [[Entry]], _ out: inout [Segment]) {
        var startOffset = lo
        var i = lo
        while i < hi {
            let candidates = bucket[Int(text[i])]
            var matched: Entry?
            if !candidates.isEmpty {
                for e in candidates where e.bytes.count <= hi - i {
                    var equal = true
                    for k in 1..<e.bytes.count where text[i + k] != e.bytes[k] { equal = false; break }
                    if equal { matched = e; break }
                }
            }
            guard let m = matched else { i += 1; continue }
            var start = i
            var stop = i + m.bytes.count
            let t = m.token
            if t.singleWord {
                let before = start == lo || !AddedTokenMatcher.isWord(lastScalar(text, lo, start))
                let after = stop == hi || !AddedTokenMatcher.isWord(firstScalar(text, stop, hi))
                if !before || !after { i = stop; continue }
            }
            if t.lstrip {
                var s = start
                while s > lo {
                    let (v, len) = lastScalarWithLength(text, lo, s)
                    if !AddedTokenMatcher.isSpace(v) { break }
                    s -= len
                }
                start = max(s, startOffset)
            }
            if t.rstrip {
                while stop < hi {
                    let (v, len) = firstScalarWithLength(text, stop, hi)
                    if !AddedTokenMatcher.isSpace(v) { break }
                    stop += len
                }
            }
            if startOffset < start { out.append(Segment(start: startOffset, end: start, id: -1)) }
            out.append(Segment(start: start, end: stop, id: Int32(t.id)))
            startOffset = stop
            i = stop
        }
        if startOffset < hi { out.append(Segment(start: startOffset, end: hi, id: -1)) }
    }

    private func lastScalar(_ t: [UInt8], _ lo: Int, _ end: Int) -> UInt32 { lastScalarWithLength(t, lo, end).0 }
    private func firstScalar(_ t: [UInt8], _ start: Int, _ hi: Int) -> UInt32 { firstScalarWithLength(t, start, hi).0 }

    private func lastScalarWithLength(_ t: [UInt8], _ lo: Int, _ end: Int) -> (UInt32, Int) {
        var s = end - 1
        while s > lo && t[s] & 0xC0 == 0x80 { s -= 1 }
        return firstScalarWithLength(t, s, end)
    }

    private func firstScalarWithLength(_ t: [UInt8], _ start: Int, _ hi: Int) -> (UInt32, Int) {
        let b0 = UInt32(t[start])
        if b0 < 0x80 || start + 1 >= hi { return (b0, 1) }
        if b0 < 0xE0 { return ((b0 & 0x1F) << 6 | UInt32(t[start + 1] & 0x3F), 2) }
        if b0 < 0xF0 { return ((b0 & 0x0F) << 12 | UInt32(t[start + 1] & 0x3F) << 6 | UInt32(t[start + 2] & 0x3F), 3) }
        return ((b0 & 0x07) << 18 | UInt32(t[start + 1] & 0x3F) << 12 | UInt32(t[start + 2] & 0x3F) << 6
            | UInt32(t[start + 3] & 0x3F), 4)
    }

    /// Rust regex `\w`: Alphabetic, marks, decimal digits, connector punctuation, join controls.
    static func isWord(_ v: UInt32) -> Bool {
        guard let s = Unicode.Scalar(v) else { return false }
        let p = s.properties
        if p.isAlphabetic || p.isJoinControl { return true }
        switch p.generalCategory {
        case .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .connectorPunctuation: return true
        default: return false
        }
    }

    static func isSpace(_ v: UInt32) -> Bool { Unicode.Scalar(v)?.properties.isWhitespace ?? false }
}
