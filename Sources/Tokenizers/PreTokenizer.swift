/// A half-open byte range of the working buffer that later stages treat as one unit.
struct Piece {
    var start: Int32
    var end: Int32
}

/// Which of the two well-known split expressions a hand-written scanner replaces.
enum KnownPattern: Sendable {
    case llama3
    case gpt2

    static let llama3Source = #"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}{1,3}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"#
    static let gpt2Source = #"'s|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+"#

    init?(source: String) {
        switch source {
        case KnownPattern.llama3Source: self = .llama3
        case KnownPattern.gpt2Source: self = .gpt2
        default: return nil
        }
    }
}

/// A compiled Swift `Regex` for split patterns without a hand-written scanner.
///
/// `Regex` values are immutable once built; the wrapper only exists because `Regex<AnyRegexOutput>`
/// is not declared `Sendable`.
struct RegexBox: @unchecked Sendable {
    let regex: Regex<AnyRegexOutput>
}

/// How a split pattern finds its matches.
enum SplitMatcher: Sendable {
    case known(KnownPattern)
    case regex(RegexBox, source: String)
    case literal([UInt8])
}

/// Hugging Face `SplitDelimiterBehavior`.
enum SplitBehavior: String, Sendable {
    case removed = "Removed"
    case isolated = "Isolated"
    case mergedWithPrevious = "MergedWithPrevious"
    case mergedWithNext = "MergedWithNext"
    case contiguous = "Contiguous"
}

/// One pre-tokenization stage, in `tokenizer.json` order.
enum PreTokenizerStep: Sendable {
    case split(SplitMatcher, SplitBehavior, invert: Bool)
    /// ByteLevel: the byte → character mapping itself is implicit (the model runs on bytes).
    case byteLevel(addPrefixSpace: Bool, useRegex: Bool)
}

/// Reusable per-call scratch space, so that splitting a long text allocates a handful of arrays
/// instead of one per piece.
struct Scratch {
    var scalars: [UInt32] = []
    var classes: [UInt8] = []
    var offsets: [Int32] = []
    var matches: [Piece] = []
    var flags: [Bool] = []
}

enum Scanner {
    /// Decodes `buf[piece]` (valid UTF-8) into scalars, their classes and byte offsets (one extra
    /// offset for the end).
    static func decode(_ buf: UnsafeBufferPointer<UInt8>, _ piece: Piece, into s: inout Scratch) {
        s.scalars.removeAll(keepingCapacity: true)
        s.classes.removeAll(keepingCapacity: true)
        s.offsets.removeAll(keepingCapacity: true)
        var i = Int(piece.start)
        let end = Int(piece.end)
        while i < end {
            let b0 = UInt32(buf[i])
            var v: UInt32
            var n: Int
            if b0 < 0x80 { v = b0; n = 1 } else if b0 < 0xE0 {
                v = (b0 & 0x1F) << 6 | (UInt32(buf[i &+ 1]) & 0x3F); n = 2
            } else if b0 < 0xF0 {
                v = (b0 & 0x0F) << 12 | (UInt32(buf[i &+ 1]) & 0x3F) << 6 | (UInt32(buf[i &+ 2]) & 0x3F); n = 3
            } else {
                v = (b0 & 0x07) << 18 | (UInt32(buf[i &+ 1]) & 0x3F) << 12 | (UInt32(buf[i &+ 2]) & 0x3F) << 6
                    | (UInt32(buf[i &+ 3]) & 0x3F)
                n = 4
            }
            s.scalars.append(v)
            s.classes.append(ScalarClass.of(v))
            s.offsets.append(Int32(i))
            i &+= n
        }
        s.offsets.append(Int32(end))
    }

    /// Appends the matches of the Llama 3 expression over scalars `0..<n` as scalar index ranges.
    ///
    /// Each branch mirrors one alternative of the expression, tried in the same order, including the
    /// backtracking of `\s*[\r\n]+` and `\s+(?!\S)`. Every scalar is covered by some match.
    static func llama3(_ sc: UnsafeBufferPointer<UInt32>, _ cl: UnsafeBufferPointer<UInt8>, _ out: inout [Piece]) {
        let n = sc.count
        let L = ScalarClass.letter, N = ScalarClass.number, W = ScalarClass.space, NL = ScalarClass.newline
        var i = 0
        while i < n {
            let c = cl[i]
            var end = -1
            // (?i:'s|'t|'re|'ve|'m|'ll|'d)
            if sc[i] == 0x27 && i &+ 1 < n {
                let a = foldASCII(sc[i &+ 1])
                if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { end = i &+ 2 } else if i &+ 2 < n {
                    let b = foldASCII(sc[i &+ 2])
                    if (a == 0x72 || a == 0x76) && b == 0x65 { end = i &+ 3 } else if a == 0x6C && b == 0x6C { end = i &+ 3 }
                }
            }
            if end < 0 {
                if c & L != 0 {
                    // [^\r\n\p{L}\p{N}]?\p{L}+ with the optional part empty
                    end = i &+ 1
                    while end < n && cl[end] & L != 0 { end &+= 1 }
                } else if c & (L | N | NL) == 0 && i &+ 1 < n && cl[i &+ 1] & L != 0 {
                    end = i &+ 2
                    while end < n && cl[end] & L != 0 { end &+= 1 }
                } else if c & N != 0 {
                    // \p{N}{1,3}
                    end = i &+ 1
                    if end < n && cl[end] & N != 0 { end &+= 1; if end < n && cl[end] & N != 0 { end &+= 1 } }
                } else if c & (W | L | N) == 0 || (sc[i] == 0x20 && i &+ 1 < n && cl[i &+ 1] & (W | L | N) == 0) {
                    //  ?[^\s\p{L}\p{N}]+[\r\n]*
                    end = i &+ 1
                    while end < n && cl[end] & (W | L | N) == 0 { end &+= 1 }
                    while end < n && cl[end] & NL != 0 { end &+= 1 }
                } else {
                    // c is whitespace: \s*[\r\n]+ | \s+(?!\S) | \s+
                    var j = i
                    var lastNewline = -1
                    while j < n && cl[j] & W != 0 {
                        if cl[j] & NL != 0 { lastNewline = j }
                        j &+= 1
                    }
                    if lastNewline >= 0 { end = lastNewline &+ 1 } else if j == n || j &- i == 1 { end = j } else { end = j &- 1 }
                }
            }
            out.append(Piece(start: Int32(i), end: Int32(end)))
            i = end
        }
    }

    /// Appends the matches of the GPT-2 expression over scalars `0..<n` as scalar index ranges.
    static func gpt2(_ sc: UnsafeBufferPointer<UInt32>, _ cl: UnsafeBufferPointer<UInt8>, _ out: inout [Piece]) {
        let n = sc.count
        let L = ScalarClass.letter, N = ScalarClass.number, W = ScalarClass.space
        var i = 0
        while i < n {
            var end = -1
            if sc[i] == 0x27 && i &+ 1 < n {
                let a = sc[i &+ 1]
                if a == 0x73 || a == 0x74 || a == 0x6D || a == 0x64 { end = i &+ 2 } else if i &+ 2 < n {
                    let b = sc[i &+ 2]
                    if (a == 0x72 || a == 0x76) && b == 0x65 { end = i &+ 3 } else if a == 0x6C && b == 0x6C { end = i &+ 3 }
                }
            }
            if end < 0 {
                var k = i
                if sc[i] == 0x20 && i &+ 1 < n && cl[i &+ 1] & W == 0 { k = i &+ 1 }
                let d = cl[k]
                if k == i && d & W != 0 {
                    // \s+(?!\S) | \s+
                    var j = i
                    while j < n && cl[j] & W != 0 { j &+= 1 }
                    end = (j == n || j &- i == 1) ? j : j &- 1
                } else if d & L != 0 {
                    end = k &+ 1
                    while end < n && cl[end] & L != 0 { end &+= 1 }
                } else if d & N != 0 {
                    end = k &+ 1
                    while end < n && cl[end] & N != 0 { end &+= 1 }
                } else {
                    end = k &+ 1
                    while end < n && cl[end] & (W | L | N) == 0 { end &+= 1 }
                }
            }
            out.append(Piece(start: Int32(i), end: Int32(end)))
            i = end
        }
    }

    /// ASCII lower-casing plus U+017F (long s), which case-folds to "s" under `(?i)`.
    @inline(__always)
    static func foldASCII(_ v: UInt32) -> UInt32 {
        if v >= 0x41 && v <= 0x5A { return v | 0x20 }
        if v == 0x17F { return 0x73 }
        return v
    }
}

extension PreTokenizerStep {
    /// Applies this stage to every piece. `buf` may grow (ByteLevel's prefix space appends a copy).
    func apply(_ buf: inout [UInt8], _ pieces: [Piece], _ scratch: inout Scratch) -> [Piece] {
        var out: [Piece] = []
        out.reserveCapacity(pieces.count * 2)
        switch self {
        case .split(let matcher, let behavior, let invert):
            for p in pieces where p.end > p.start {
                scratch.matches.removeAll(keepingCapacity: true)
                scratch.flags.removeAll(keepingCapacity: true)
                buf.withUnsafeBufferPointer { b in findMatches(matcher, b, p, &scratch) }
                if invert { for k in scratch.flags.indices { scratch.flags[k].toggle() } }
                combine(behavior, scratch.matches, scratch.flags, into: &out)
            }
        case .byteLevel(let addPrefixSpace, let useRegex):
            var current = pieces
            if addPrefixSpace {
                current = []
                for p in pieces where p.end > p.start {
                    if buf[Int(p.start)] == 0x20 { current.append(p); continue }
                    let start = Int32(buf.count)
                    buf.append(0x20)
                    buf.append(contentsOf: buf[Int(p.start)..<Int(p.end)])
                    current.append(Piece(start: start, end: Int32(buf.count)))
                }
            }
            if !useRegex { return current.filter { $0.end > $0.start } }
            for p in current where p.end > p.start {
                scratch.matches.removeAll(keepingCapacity: true)
                scratch.flags.removeAll(keepingCapacity: true)
                buf.withUnsafeBufferPointer { b in findMatches(.known(.gpt2), b, p, &scratch) }
                combine(.isolated, scratch.matches, scratch.flags, into: &out)
            }
        }
        return out
    }

    /// Fills `scratch.matches`/`flags` with ranges covering `p`, flagged true for pattern matches.
    private func findMatches(_ matcher: SplitMatcher, _ buf: UnsafeBufferPointer<UInt8>, _ p: Piece, _ s: inout Scratch) {
        var found: [Piece] = []
        switch matcher {
        case .known(let known):
            Scanner.decode(buf, p, into: &s)
            var local: [Piece] = []
            local.reserveCapacity(s.scalars.count / 3 + 1)
            s.scalars.withUnsafeBufferPointer { sc in
                s.classes.withUnsafeBufferPointer { cl in
                    if known == .llama3 { Scanner.llama3(sc, cl, &local) } else { Scanner.gpt2(sc, cl, &local) }
                }
            }
            // Every scalar is covered: translate straight to byte ranges.
            for m in local {
                s.matches.append(Piece(start: s.offsets[Int(m.start)], end: s.offsets[Int(m.end)]))
                s.flags.append(true)
            }
            return
        case .regex(let box, _):
            let text = String(decoding: UnsafeBufferPointer(rebasing: buf[Int(p.start)..<Int(p.end)]), as: UTF8.self)
            let utf8 = text.utf8
            for m in text.matches(of: box.regex.matchingSemantics(.unicodeScalar)) where !m.range.isEmpty {
                let a = utf8.distance(from: utf8.startIndex, to: m.range.lowerBound)
                let b = utf8.distance(from: utf8.startIndex, to: m.range.upperBound)
                found.append(Piece(start: p.start + Int32(a), end: p.start + Int32(b)))
            }
        case .literal(let needle):
            if !needle.isEmpty {
                var i = Int(p.start)
                let end = Int(p.end)
                while i + needle.count <= end {
                    var equal = true
                    for k in 0..<needle.count where buf[i + k] != needle[k] { equal = false; break }
                    if equal { found.append(Piece(start: Int32(i), end: Int32(i + needle.count))); i += needle.count } else { i += 1 }
                }
            }
        }
        var prev = p.start
        for m in found {
            if m.start != prev { s.matches.append(Piece(start: prev, end: m.start)); s.flags.append(false) }
            s.matches.append(m); s.flags.append(true)
            prev = m.end
        }
        if prev != p.end { s.matches.append(Piece(start: prev, end: p.end)); s.flags.append(false) }
    }

    /// Hugging Face's `SplitDelimiterBehavior` applied to flagged ranges; empty results are dropped.
    private func combine(_ behavior: SplitBehavior, _ m: [Piece], _ isMatch: [Bool], into out: inout [Piece]) {
        switch behavior {
        case .isolated:
            out.append(contentsOf: m)
        case .removed:
            for k in m.indices where !isMatch[k] { out.append(m[k]) }
        case .mergedWithPrevious:
            var previousMatch = false
            let first = out.count
            for k in m.indices {
                if isMatch[k] && !previousMatch && out.count > first { out[out.count - 1].end = m[k].end } else { out.append(m[k]) }
                previousMatch = isMatch[k]
            }
        case .mergedWithNext:
            var previousMatch = false
            var acc: [Piece] = []
            for k in m.indices.reversed() {
                if isMatch[k] && !previousMatch && !acc.isEmpty { acc[acc.count - 1].start = m[k].start } else { acc.append(m[k]) }
                previousMatch = isMatch[k]
            }
            out.append(contentsOf: acc.reversed())
        case .contiguous:
            var previousMatch = false
            let first = out.count
            for k in m.indices {
                if isMatch[k] == previousMatch && out.count > first { out[out.count - 1].end = m[k].end } else { out.append(m[k]) }
                previousMatch = isMatch[k]
            }
        }
    }
}
