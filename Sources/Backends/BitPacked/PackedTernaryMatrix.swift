import TensorCore

/// A ternary matrix at 2 bits per weight, in the layout the `bitpacked` C kernels read.
///
/// Layout (also in `Sources/CKernels/include/bitpacked.h` and `docs/performance/bitpacked.md`):
/// a row's weights form `groups` full groups of 256 weights (64 bytes) and, when
/// `hasHalfGroup`, one half group of 128 weights (32 bytes), so each row takes `rowBytes`.
/// - Full group `g`: bits `2k..2k+1` of its byte `j` (`j < 64`, `k < 4`) are the code of
///   weight `256g + 64k + j`.
/// - The half group: bits `2k..2k+1` of its byte `j` (`j < 32`) are the code of weight
///   `256G + 32k + j` (`G = groups`).
/// - A code is `weight + 1` (0 → -1, 1 → 0, 2 → +1); padding weights past `inFeatures` are code 1.
/// - Rows are stored in tiles of 4 (the last tile holds `outFeatures % 4` rows when that is not
///   0); tile `t` starts at byte `4t · rowBytes`; inside a tile of `h` rows, group `g` of row `r`
///   is at `64 · (h·g + r)` and the half group of row `r` at `64·h·G + 32·r`. The buffer starts
///   on a 64-byte boundary.
///
/// Why this layout: one 64-byte load gives four runs of 64 consecutive weights, one per 2-bit
/// field, so a field is unpacked with a single mask (or a shift and a mask) and lines up with a
/// plain 64-byte load of the activations: no shuffles anywhere. Codes are unsigned because the
/// byte dot-product instructions (`vpdpbusd`, `vpmaddubsw`) take one unsigned operand; the
/// kernels subtract `Σx` once per row to undo the `+1`. The 4-row kernels read a tile as one
/// sequential stream, which the prefetchers follow better than four separate rows (measured
/// ~25% faster from L3). The tail of a row is a half group when at most 128 weights remain, so
/// padding costs at most 31 bytes per row (none when `inFeatures` is a multiple of 256, as in
/// every BitNet b1.58 shape), and tiles add no padding rows.
public final class PackedTernaryMatrix: @unchecked Sendable {
    // Immutable after init; the raw buffer is only read after that, so sharing is safe.

    /// Rows (output features).
    public let outFeatures: Int
    /// Columns (input features).
    public let inFeatures: Int
    /// Full 64-byte groups per row (`inFeatures / 256`, plus one when more than 128 remain).
    public let groups: Int
    /// True when each row ends in a 32-byte half group (1 ... 128 weights left after the groups).
    public let hasHalfGroup: Bool
    /// Bytes per row: `64 · groups + 32 · (hasHalfGroup ? 1 : 0)`.
    public let rowBytes: Int
    /// Activations the kernels read per row: `256 · groups + 128 · (hasHalfGroup ? 1 : 0)`.
    public let paddedInFeatures: Int
    /// The packed rows.
    let bytes: UnsafeMutableRawPointer

    /// The packed bytes: `outFeatures · rowBytes`.
    public var byteCount: Int { outFeatures * rowBytes }

    /// Packs `matrix` (values already validated to be in {-1, 0, 1}).
    public init(_ matrix: TernaryMatrix) {
        let m = matrix.outFeatures, n = matrix.inFeatures
        outFeatures = m
        inFeatures = n
        let full = n / 256, rest = n % 256
        groups = full + (rest > 128 ? 1 : 0)
        hasHalfGroup = rest > 0 && rest <= 128
        rowBytes = 64 * groups + (hasHalfGroup ? 32 : 0)
        paddedInFeatures = 256 * groups + (hasHalfGroup ? 128 : 0)
        // 2 MiB-aligned and advised for transparent huge pages when at least 2 MiB (`HugePages`).
        bytes = HugePages.allocate(byteCount: m * rowBytes)
        let out = bytes.bindMemory(to: UInt8.self, capacity: m * rowBytes)
        out.initialize(repeating: 0, count: m * rowBytes)
        let groups = self.groups, rowBytes = self.rowBytes, half = hasHalfGroup
        matrix.values.withUnsafeBufferPointer { v in
            let v = v.baseAddress!
            // Each byte is built from its four weights at once: one store per 4 weights.
            for o in 0..<m {
                let tile = o >> 2, r = o & 3, h = min(4, m &- 4 &* tile)
                let base = out + 4 &* tile &* rowBytes
                let row = v + o &* n
                @inline(__always) func code(_ i: Int) -> UInt8 {
                    i < n ? UInt8(truncatingIfNeeded: row[i] &+ 1) : 1
                }
                for g in 0..<groups {
                    let dst = base + 64 &* (h &* g &+ r)
                    let first = 256 &* g
                    if first &+ 256 <= n {
                        let src = row + first
                        for j in 0..<64 {
                            let c0 = UInt8(truncatingIfNeeded: src[j] &+ 1)
                            let c1 = UInt8(truncatingIfNeeded: src[j &+ 64] &+ 1)
                            let c2 = UInt8(truncatingIfNeeded: src[j &+ 128] &+ 1)
                            let c3 = UInt8(truncatingIfNeeded: src[j &+ 192] &+ 1)
                            dst[j] = c0 | c1 << 2 | c2 << 4 | c3 << 6
                        }
                    } else {
                        for j in 0..<64 {
                            let i = first &+ j
                            dst[j] = code(i) | code(i &+ 64) << 2 | code(i &+ 128) << 4 | code(i &+ 192) << 6
                        }
                    }
                }
                if half {
                    let dst = base + (64 &* h &* groups &+ 32 &* r)
                    let first = 256 &* groups
                    for j in 0..<32 {
                        let i = first &+ j
                        dst[j] = code(i) | code(i &+ 32) << 2 | code(i &+ 64) << 4 | code(i &+ 96) << 6
                    }
                }
            }
        }
    }

    deinit { HugePages.deallocate(bytes) }

    /// The sizes that place a code.
    var geometry: Geometry { Geometry(rows: outFeatures, groups: groups, rowBytes: rowBytes) }

    /// Where each code lives (see the layout above).
    struct Geometry {
        let rows: Int, groups: Int, rowBytes: Int

        /// The byte offset (in the whole buffer) and bit shift of (`row`, `column`)'s code.
        @inline(__always)
        func position(row o: Int, column i: Int) -> (byte: Int, shift: UInt8) {
            let tile = o >> 2, r = o & 3
            let h = min(4, rows &- 4 &* tile)
            let base = 4 &* tile &* rowBytes
            let g = i >> 8
            if g < groups {
                let j = i & 255
                return (base &+ 64 &* (h &* g &+ r) &+ (j & 63), UInt8(truncatingIfNeeded: 2 &* (j >> 6)))
            }
            let j = i &- 256 &* groups  // < 128: the half group
            return (base &+ 64 &* h &* groups &+ 32 &* r &+ (j & 31), UInt8(truncatingIfNeeded: 2 &* (j >> 5)))
        }
    }

    /// The weight at (`row`, `column`), read back from the packed bytes.
    public subscript(row: Int, column: Int) -> Int8 {
        precondition(row >= 0 && row < outFeatures && column >= 0 && column < inFeatures,
                     "(\(row), \(column)) out of bounds for \(outFeatures)×\(inFeatures)")
        let (byte, shift) = geometry.position(row: row, column: column)
        let b = bytes.load(fromByteOffset: byte, as: UInt8.self)
        return Int8((b >> shift) & 3) - 1
    }

    /// All weights, row-major, unpacked (the inverse of packing; for tests and tools).
    public func unpacked() -> [Int8] {
        var values = [Int8](repeating: 0, count: outFeatures * inFeatures)
        for o in 0..<outFeatures {
            for i in 0..<inFeatures { values[o * inFeatures + i] = self[o, i] }
        }
        return values
    }

    /// The 2-bit codes of the padding positions of every row (all must be 1: weight 0).
    /// For tests: the kernels rely on padding activations being zero, not on these codes, but
    /// a zero weight keeps the padding harmless either way.
    public func paddingCodesAreZeroWeights() -> Bool {
        let geometry = geometry
        for o in 0..<outFeatures {
            for i in inFeatures..<paddedInFeatures {
                let (byte, shift) = geometry.position(row: o, column: i)
                if (bytes.load(fromByteOffset: byte, as: UInt8.self) >> shift) & 3 != 1 { return false }
            }
        }
        return true
    }
}
