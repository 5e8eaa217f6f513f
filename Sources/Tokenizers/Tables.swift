/// GPT-2's reversible byte ↔ printable character mapping used by byte-level BPE.
///
/// Vocabularies of byte-level tokenizers store tokens as strings of these characters; the library
/// converts them back to raw bytes once at load time so that encoding runs directly on UTF-8 bytes.
enum ByteLevelMap {
    /// `scalarForByte[b]` is the vocabulary character standing for byte `b`.
    static let scalarForByte: [UInt32] = {
        var table = [UInt32](repeating: 0, count: 256)
        var n: UInt32 = 0
        for b in 0..<256 {
            if (33...126).contains(b) || (161...172).contains(b) || (174...255).contains(b) {
                table[b] = UInt32(b)
            } else {
                table[b] = 256 + n
                n += 1
            }
        }
        return table
    }()

    /// Inverse of `scalarForByte` for scalars below 512 (all of them are), -1 elsewhere.
    static let byteForScalar: [Int16] = {
        var table = [Int16](repeating: -1, count: 512)
        for b in 0..<256 { table[Int(scalarForByte[b])] = Int16(b) }
        return table
    }()

    /// Appends the raw bytes a vocabulary token stands for; false (and `out` unchanged) if some
    /// character is outside the mapping.
    static func append(_ token: String, to out: inout [UInt8]) -> Bool {
        let mark = out.count
        for s in token.unicodeScalars {
            let v = Int(s.value)
            guard v < 512, byteForScalar[v] >= 0 else { out.removeSubrange(mark...); return false }
            out.append(UInt8(byteForScalar[v]))
        }
        return true
    }

    /// The raw bytes a vocabulary token stands for, or nil if some character is outside the mapping.
    static func bytes(of token: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(token.utf8.count)
        for s in token.unicodeScalars {
            let v = Int(s.value)
            guard v < 512, byteForScalar[v] >= 0 else { return nil }
            out.append(UInt8(byteForScalar[v]))
        }
        return out
    }
}

/// Character classes the pre-tokenizer regular expressions ask about, one byte per scalar.
enum ScalarClass {
    static let letter: UInt8 = 1      // \p{L}
    static let number: UInt8 = 2      // \p{N}
    static let space: UInt8 = 4       // \s (Unicode White_Space)
    static let newline: UInt8 = 8     // \r or \n

    /// Classes of the Basic Multilingual Plane, computed once (64 KiB) so the scanner never asks the
    /// Unicode property tables in its loop.
    static let bmp: [UInt8] = {
        var t = [UInt8](repeating: 0, count: 0x10000)
        for v in 0..<0x10000 {
            if let s = Unicode.Scalar(UInt32(v)) { t[v] = compute(s) }
        }
        return t
    }()

    static func compute(_ s: Unicode.Scalar) -> UInt8 {
        var c: UInt8 = 0
        switch s.properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter: c |= letter
        case .decimalNumber, .letterNumber, .otherNumber: c |= number
        default: break
        }
        if s.properties.isWhitespace { c |= space }
        if s.value == 0x0A || s.value == 0x0D { c |= newline }
        return c
    }

    @inline(__always)
    static func of(_ v: UInt32) -> UInt8 {
        if v < 0x10000 { return bmp[Int(v)] }
        guard let s = Unicode.Scalar(v) else { return 0 }
        return compute(s)
    }
}

/// An open-addressing hash table from byte strings to `Int32`, with keys stored in one arena.
///
/// Looking up a pre-token must not allocate: `Dictionary<[UInt8], _>` would need a fresh array per
/// lookup, and pre-tokens are looked up once each (vocabulary for `ignore_merges`, then the cache).
struct ByteTable: Sendable {
    private(set) var arena: [UInt8] = []
    private var keyStart: [Int32] = []
    private var keyLength: [Int32] = []
    private(set) var values: [Int32] = []
    /// Per slot: `(hash tag << 32) | (entry + 1)`, 0 when empty; the tag rejects most mismatches
    /// without touching the entry arrays (one cache miss per probe instead of four).
    private var slots: [UInt64]
    private var mask: Int

    init(capacity: Int = 1024) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        slots = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    var count: Int { values.count }

    @inline(__always)
    static func hash(_ p: UnsafeBufferPointer<UInt8>) -> UInt64 {
        var h: UInt64 = 0xcbf2_9ce4_8422_2325
        for b in p { h = (h ^ UInt64(b)) &* 0x100_0000_01b3 }
        return h &* 0x9E37_79B9_7F4A_7C15
    }

    /// The value for the key, or nil.
    func find(_ key: UnsafeBufferPointer<UInt8>) -> Int32? {
        let h = ByteTable.hash(key)
        let tag = h >> 32
        var slot = Int(truncatingIfNeeded: h >> 20) & mask
        return arena.withUnsafeBufferPointer { a -> Int32? in
            while true {
                let v = slots[slot]
                if v == 0 { return nil }
                if v >> 32 == tag {
                    let e = Int(truncatingIfNeeded: v & 0xFFFF_FFFF) &- 1
                    let len = Int(keyLength[e])
                    if len == key.count {
                        let start = Int(keyStart[e])
                        var equal = true
                        var k = 0
                        while k < len {
                            if a[start &+ k] != key[k] { equal = false; break }
                            k &+= 1
                        }
                        if equal { return values[e] }
                    }
                }
                slot = (slot &+ 1) & mask
            }
        }
    }

    func find(_ key: [UInt8]) -> Int32? { key.withUnsafeBufferPointer { find($0) } }

    /// Inserts or replaces.
    mutating func insert(_ key: UnsafeBufferPointer<UInt8>, value: Int32) {
        if (values.count + 1) * 2 > slots.count { grow() }
        let h = ByteTable.hash(key)
        let tag = h >> 32
        var slot = Int(truncatingIfNeeded: h >> 20) & mask
        while true {
            let v = slots[slot]
            if v == 0 { break }
            let e = Int(truncatingIfNeeded: v & 0xFFFF_FFFF) - 1
            if v >> 32 == tag && Int(keyLength[e]) == key.count
                && arena[Int(keyStart[e])..<Int(keyStart[e]) + key.count].elementsEqual(key) {
                values[e] = value
                return
            }
            slot = (slot &+ 1) & mask
        }
        slots[slot] = tag << 32 | UInt64(values.count + 1)
        keyStart.append(Int32(arena.count))
        keyLength.append(Int32(key.count))
        arena.append(contentsOf: key)
        values.append(value)
    }

    mutating func insert(_ key: [UInt8], value: Int32) { key.withUnsafeBufferPointer { insert($0, value: value) } }

    private mutating func grow() {
        let size = slots.count * 2
        slots = [UInt64](repeating: 0, count: size)
        mask = size - 1
        arena.withUnsafeBufferPointer { a in
            for e in 0..<values.count {
                let start = Int(keyStart[e])
                let h = ByteTable.hash(UnsafeBufferPointer(rebasing: a[start..<start + Int(keyLength[e])]))
                var slot = Int(truncatingIfNeeded: h >> 20) & mask
                while slots[slot] != 0 { slot = (slot &+ 1) & mask }
                slots[slot] = (h >> 32) << 32 | UInt64(e + 1)
            }
        }
    }
}

/// Open-addressing table from a pair of token ids to (merge rank, merged id).
struct PairTable: Sendable {
    private var keys: [UInt64]
    private var payload: [UInt64]
    private var mask: Int
    private(set) var count = 0

    init(capacity: Int) {
        var size = 16
        while size < capacity * 2 { size <<= 1 }
        keys = [UInt64](repeating: UInt64.max, count: size)
        payload = [UInt64](repeating: 0, count: size)
        mask = size - 1
    }

    @inline(__always)
    private static func slot(_ k: UInt64, _ mask: Int) -> Int {
        Int(truncatingIfNeeded: (k &* 0x9E37_79B9_7F4A_7C15) >> 32) & mask
    }

    /// A repeated pair keeps its last rank, as Hugging Face's merge map (built by collecting into a
    /// hash map) does.
    mutating func insert(_ a: Int32, _ b: Int32, rank: Int32, merged: Int32) {
        let k = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
        var s = PairTable.slot(k, mask)
        while keys[s] != UInt64.max {
            if keys[s] == k { break }
            s = (s &+ 1) & mask
        }
        if keys[s] != k { count += 1 }
        keys[s] = k
        payload[s] = UInt64(UInt32(bitPattern: rank)) << 32 | UInt64(UInt32(bitPattern: merged))
    }

    /// `(rank << 32) | merged`, or `UInt64.max` when the pair has no merge.
    @inline(__always)
    func lookup(_ a: Int32, _ b: Int32) -> UInt64 {
        let k = UInt64(UInt32(bitPattern: a)) << 32 | UInt64(UInt32(bitPattern: b))
        var s = PairTable.slot(k, mask)
        while true {
            let key = keys[s]
            if key == k { return payload[s] }
            if key == UInt64.max { return UInt64.max }
            s = (s &+ 1) & mask
        }
    }
}
