/// The `BPE` model of `tokenizer.json`, running on raw bytes.
///
/// In byte-level mode (a `ByteLevel` pre-tokenizer is present) vocabulary keys are converted back to
/// the bytes they stand for, so a pre-token's UTF-8 is looked up and merged without ever building
/// the GPT-2 character string. Without `ByteLevel`, the initial symbols are Unicode scalars.
struct BPEModel: Sendable {
    let byteLevel: Bool
    /// Token bytes → id (byte-level: raw bytes; otherwise the token's UTF-8).
    let vocab: ByteTable
    let merges: PairTable
    /// Id of each single byte (byte-level mode), -1 when absent.
    let byteIDs: [Int32]
    /// Ids of the `<0xXX>` tokens for `byte_fallback`, -1 when absent.
    let fallbackIDs: [Int32]
    let byteFallback: Bool
    let ignoreMerges: Bool
    let unkID: Int32?
    let fuseUnk: Bool

    init(json model: JSON, byteLevel: Bool) throws(TokenizerError) {
        let type = model["type"]?.string ?? "BPE"
        guard type == "BPE" else { throw .unsupported(component: "model", type: type) }
        for key in ["continuing_subword_prefix", "end_of_word_suffix"] {
            if let v = model[key], !v.isNull, v.string != "" {
                throw .unsupported(component: "model", type: "BPE with \(key)")
            }
        }
        if let d = model["dropout"], !d.isNull, case .number(let p) = d, p > 0 {
            throw .unsupported(component: "model", type: "BPE with dropout")
        }
        guard let vocabJSON = model["vocab"]?.object else { throw .invalidTokenizer("model.vocab is missing or not an object") }
        self.byteLevel = byteLevel
        var table = ByteTable(capacity: vocabJSON.count)
        var text = ByteTable(capacity: vocabJSON.count)
        var maxID = -1
        // Model-space bytes of each id: arena[start[id] ..< start[id] + length[id]], length -1 if none.
        var arena: [UInt8] = []
        arena.reserveCapacity(vocabJSON.count * 8)
        var entries: [(id: Int32, start: Int32, length: Int32)] = []
        entries.reserveCapacity(vocabJSON.count)
        for (token, value) in vocabJSON {
            guard let id = value.int, id >= 0, id < BPEModel.maxID else {
                throw .invalidTokenizer("model.vocab entry '\(token)' has no valid id (0..<\(BPEModel.maxID))")
            }
            maxID = max(maxID, id)
            var utf8 = token
            utf8.withUTF8 { text.insert($0, value: Int32(id)) }
            let mark = arena.count
            let ok = byteLevel ? ByteLevelMap.append(token, to: &arena) : { arena.append(contentsOf: token.utf8); return true }()
            entries.append((Int32(id), Int32(mark), ok ? Int32(arena.count - mark) : -1))
        }
        var texts = [String?](repeating: nil, count: maxID + 1)
        var byteStart = [Int32](repeating: 0, count: maxID + 1)
        var byteLength = [Int32](repeating: -1, count: maxID + 1)
        arena.withUnsafeBufferPointer { a in
            for (k, e) in entries.enumerated() {
                texts[Int(e.id)] = vocabJSON[k].key
                byteStart[Int(e.id)] = e.start
                byteLength[Int(e.id)] = e.length
                if e.length >= 0 {
                    table.insert(UnsafeBufferPointer(rebasing: a[Int(e.start)..<Int(e.start + e.length)]), value: e.id)
                }
            }
        }
        vocab = table
        textTable = text
        tokenTexts = texts
        func lookup(_ s: Substring) -> Int32? {
            var sub = s
            return sub.withUTF8 { text.find($0) }
        }
        var pairs = PairTable(capacity: max(16, (model["merges"]?.array?.count ?? 0)))
        var joined: [UInt8] = []
        if let list = model["merges"]?.array {
            for (rank, entry) in list.enumerated() {
                let a: Substring, b: Substring
                if let s = entry.string {
                    let parts = s.split(separator: " ", omittingEmptySubsequences: false)
                    guard parts.count == 2 else { throw .invalidTokenizer("merge \(rank) '\(s)' is not two tokens separated by one space") }
                    a = parts[0]; b = parts[1]
                } else if let arr = entry.array, arr.count == 2, let x = arr[0].string, let y = arr[1].string {
                    a = Substring(x); b = Substring(y)
                } else {
                    throw .invalidTokenizer("merge \(rank) is neither \"a b\" nor [\"a\", \"b\"]")
                }
                guard let ia = lookup(a), let ib = lookup(b) else {
                    throw .invalidTokenizer("merge \(rank) '\(a) \(b)' uses a token missing from the vocabulary")
                }
                // The merged token: its model-space bytes are the two parts' bytes concatenated.
                var merged: Int32?
                if byteLength[Int(ia)] >= 0 && byteLength[Int(ib)] >= 0 {
                    joined.removeAll(keepingCapacity: true)
                    joined.append(contentsOf: arena[Int(byteStart[Int(ia)])..<Int(byteStart[Int(ia)] + byteLength[Int(ia)])])
                    joined.append(contentsOf: arena[Int(byteStart[Int(ib)])..<Int(byteStart[Int(ib)] + byteLength[Int(ib)])])
                    merged = table.find(joined)
                } else {
                    merged = lookup(Substring(String(a) + String(b)))
                }
                guard let im = merged else {
                    throw .invalidTokenizer("merge \(rank) '\(a) \(b)': the merged token is missing from the vocabulary")
                }
                pairs.insert(ia, ib, rank: Int32(rank), merged: im)
            }
        } else if let m = model["merges"], !m.isNull {
            throw .invalidTokenizer("model.merges is not an array")
        }
        merges = pairs
        var bytes = [Int32](repeating: -1, count: 256)
        var fallback = [Int32](repeating: -1, count: 256)
        for b in 0..<256 {
            if let id = table.find([UInt8(b)]) { bytes[b] = id }
            let hex = String(b, radix: 16, uppercase: true)
            if let id = lookup(Substring("<0x" + (hex.count == 1 ? "0" + hex : hex) + ">")) { fallback[b] = id }
        }
        byteIDs = bytes
        fallbackIDs = fallback
        byteFallback = model["byte_fallback"]?.bool ?? false
        ignoreMerges = model["ignore_merges"]?.bool ?? false
        fuseUnk = model["fuse_unk"]?.bool ?? false
        if let unk = model["unk_token"]?.string {
            guard let id = lookup(Substring(unk)) else { throw .invalidTokenizer("unk_token '\(unk)' is not in the vocabulary") }
            unkID = id
        } else { unkID = nil }
    }

    /// Ids beyond this are refused: id-indexed tables are allocated up to the largest id.
    static let maxID = 1 << 24

    /// Model vocabulary by the UTF-8 of the token text (for `id(for:)` and merges).
    let textTable: ByteTable
    /// Token text by id; nil for ids the model does not define.
    let tokenTexts: [String?]

    func id(for token: String) -> Int32? {
        var t = token
        return t.withUTF8 { textTable.find($0) }
    }

    /// Appends the ids of one pre-token.
    ///
    /// Repeatedly merges the adjacent pair with the lowest merge rank (leftmost on ties), which gives
    /// the same result as Hugging Face's heap-based loop; words are short and cached by the caller.
    func encodeWord(_ w: UnsafeBufferPointer<UInt8>, into out: inout [Int32], symbols: inout [Int32]) {
        if w.isEmpty { return }
        if ignoreMerges, let id = vocab.find(w) { out.append(id); return }
        symbols.removeAll(keepingCapacity: true)
        var pendingUnk = false
        if byteLevel {
            for b in w {
                let id = byteIDs[Int(b)]
                if id >= 0 { symbols.append(id) } else { unknown(CollectionOfOne(b), &symbols, &pendingUnk) }
            }
        } else {
            var i = 0
            while i < w.count {
                let b0 = w[i]
                let n = b0 < 0x80 ? 1 : b0 < 0xE0 ? 2 : b0 < 0xF0 ? 3 : 4
                let unit = UnsafeBufferPointer(rebasing: w[i..<min(i + n, w.count)])
                if let id = vocab.find(unit) {
                    if pendingUnk, let unk = unkID { symbols.append(unk); pendingUnk = false }
                    symbols.append(id)
                } else { unknown(unit, &symbols, &pendingUnk) }
                i += n
            }
        }
        if pendingUnk, let unk = unkID { symbols.append(unk) }
        if symbols.count > 48 {
            mergeLong(&symbols)
            out.append(contentsOf: symbols)
            return
        }
        var count = symbols.count
        symbols.withUnsafeMutableBufferPointer { s in
            while count > 1 {
                var best = UInt64.max
                var at = -1
                var k = 0
                while k &+ 1 < count {
                    let r = merges.lookup(s[k], s[k &+ 1])
                    if r < best { best = r; at = k }
                    k &+= 1
                }
                if at < 0 { break }
                s[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
                var j = at &+ 1
                while j &+ 1 < count { s[j] = s[j &+ 1]; j &+= 1 }
                count &-= 1
            }
        }
        out.append(contentsOf: symbols[0..<count])
    }

    /// The same merge order for long words in O(n log n): a doubly linked list of symbols and a
    /// min-heap of candidate pairs keyed by (rank, position); stale entries are skipped on pop.
    /// Short words use the quadratic scan above, which is faster for them.
    func mergeLong(_ s: inout [Int32]) {
        let n = s.count
        var next = [Int32](repeating: 0, count: n)
        var prev = [Int32](repeating: 0, count: n)
        for i in 0..<n { next[i] = Int32(i &+ 1); prev[i] = Int32(i &- 1) }
        var heap: [UInt64] = []
        heap.reserveCapacity(n)
        func push(_ v: UInt64) {
            heap.append(v)
            var c = heap.count &- 1
            while c > 0 {
                let p = (c &- 1) >> 1
                if heap[p] <= heap[c] { break }
                heap.swapAt(p, c); c = p
            }
        }
        func pop() -> UInt64 {
            let top = heap[0]
            let last = heap.removeLast()
            if !heap.isEmpty {
                heap[0] = last
                var p = 0
                while true {
                    let l = 2 &* p &+ 1, r = l &+ 1
                    var m = p
                    if l < heap.count && heap[l] < heap[m] { m = l }
                    if r < heap.count && heap[r] < heap[m] { m = r }
                    if m == p { break }
                    heap.swapAt(p, m); p = m
                }
            }
            return top
        }
        func candidate(_ i: Int) {
            let j = Int(next[i])
            guard j < n else { return }
            let r = merges.lookup(s[i], s[j])
            if r != UInt64.max { push((r >> 32) << 32 | UInt64(i)) }
        }
        for i in 0..<(n &- 1) { candidate(i) }
        while !heap.isEmpty {
            let top = pop()
            let i = Int(top & 0xFFFF_FFFF)
            let rank = top >> 32
            guard s[i] >= 0 else { continue }
            let j = Int(next[i])
            guard j < n else { continue }
            let r = merges.lookup(s[i], s[j])
            guard r != UInt64.max && r >> 32 == rank else { continue }
            s[i] = Int32(truncatingIfNeeded: r & 0xFFFF_FFFF)
            s[j] = -1
            let k = Int(next[j])
            next[i] = Int32(k)
            if k < n { prev[k] = Int32(i) }
            if prev[i] >= 0 { candidate(Int(prev[i])) }
            candidate(i)
        }
        var w = 0
        for i in 0..<n where s[i] >= 0 { s[w] = s[i]; w &+= 1 }
        s.removeLast(n &- w)
    }

    /// A unit missing from the vocabulary: byte fallback, else the unknown token (fused if asked),
    /// else dropped, as Hugging Face does.
    private func unknown<C: Collection>(_ unit: C, _ symbols: inout [Int32], _ pendingUnk: inout Bool) where C.Element == UInt8 {
        if byteFallback && unit.allSatisfy({ fallbackIDs[Int($0)] >= 0 }) {
            if pendingUnk, let unk = unkID { symbols.append(unk); pendingUnk = false }
            for b in unit { symbols.append(fallbackIDs[Int(b)]) }
            return
        }
        guard let unk = unkID else { return }
        if fuseUnk { pendingUnk = true; return }
        if pendingUnk { symbols.append(unk) }
        pendingUnk = true
    }
}
