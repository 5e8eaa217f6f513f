import TensorCore

/// The output projection from hidden states to vocabulary logits, `logits = E · h`.
///
/// It is not ternary. With tied embeddings it reads the embedding table itself (shared, not
/// copied) in the `float32` format, or a smaller copy of it: per-row Int8 (`int8`) or 4-bit
/// groups of 32 (`int4`); see `LMHeadFormat`.
public final class LMHead: Module {
    /// Logits per position: one per token id.
    public let vocabularySize: Int
    /// Values per hidden state: the model's hidden size.
    public let dimensions: Int
    /// The weight format the products read (`float32`, `int8` or `int4`): trades bytes per token for logit accuracy.
    public private(set) var format: LMHeadFormat
    /// True when the weight is the embedding table (no `lm_head.weight` in a checkpoint).
    public let tied: Bool
    /// Threads the vocabulary rows of a product are split across (changed by the model's `setContext`).
    public var threads: Int
    /// `vocabularySize × dimensions` Float32 (the embedding table when tied).
    public private(set) var weight: [Float]
    /// The `int8` form: values in [-127, 127] and one scale per row (`w ≈ q · rowScale`).
    private(set) var quantizedWeight: [Int8] = []
    private(set) var rowScales: [Float] = []
    /// The `int4` form: 16 bytes per group of 32 (see `tk_gemv_q4_*`) and one scale per group.
    private(set) var packedWeight: [UInt8] = []
    private(set) var groupScales: [Float] = []
    /// Whether the quantized copy matches `weight` and `format`. Changing either only clears it:
    /// the copy is built once, by ``prepareForUse()`` or the first product, so a model that
    /// replaces its (tied) table while loading quantizes it once, not once per replacement.
    private var isBuilt = false
    /// Weights per scale in the `int4` format.
    public static let int4GroupSize = 32
    /// Scratch shared with the rest of the model.
    public let workspace: Workspace

    /// A head from its Float32 weight (`vocabularySize × dimensions`, row-major), building the
    /// quantized copy that `format` needs.
    /// - Parameters:
    ///   - weight: `vocabularySize × dimensions` Float32 values, row-major.
    ///   - vocabularySize: rows (logits per position).
    ///   - dimensions: columns (the hidden size).
    ///   - format: the weight format products read.
    ///   - tied: true when `weight` is the token embedding (no `lm_head.weight` parameter then).
    ///   - threads: threads the vocabulary rows of a product are split across.
    ///   - workspace: scratch to share with the other layers of the model (a new one if nil).
    /// - Throws: `.invalidShape` / `.lengthMismatch` for inconsistent sizes; `.invalidArgument`
    ///   for `int4` with a width that is not a multiple of 32.
    public convenience init(weight: [Float], vocabularySize: Int, dimensions: Int, format: LMHeadFormat = .float32,
                            tied: Bool = false, threads: Int = 1, workspace: Workspace? = nil) throws {
        guard vocabularySize > 0, dimensions > 0 else { throw TernaryKitError.invalidShape("LM head \(vocabularySize)×\(dimensions)") }
        // The quantized forms are built next to the Float weight: check their size first.
        let count = try SizeLimits.product([vocabularySize, dimensions], what: "LM head \(vocabularySize)×\(dimensions)")
        try SizeLimits.bytes(count: count, elementSize: format == .float32 ? 0 : 1, what: "LM head \(vocabularySize)×\(dimensions)")
        guard weight.count == vocabularySize * dimensions else {
            throw TernaryKitError.lengthMismatch(expected: vocabularySize * dimensions, actual: weight.count, what: "LM head weight")
        }
        guard format != .int4 || dimensions % LMHead.int4GroupSize == 0 else {
            throw TernaryKitError.invalidArgument("int4 LM head needs a width that is a multiple of \(LMHead.int4GroupSize), got \(dimensions)")
        }
        self.init(validWeight: weight, vocabularySize: vocabularySize, dimensions: dimensions, format: format, tied: tied,
                  threads: max(1, threads), workspace: workspace ?? Workspace())
    }

    init(validWeight weight: [Float], vocabularySize: Int, dimensions: Int, format: LMHeadFormat, tied: Bool,
         threads: Int, workspace: Workspace) {
        self.weight = weight
        self.vocabularySize = vocabularySize
        self.dimensions = dimensions
        self.format = format
        self.tied = tied
        self.threads = threads
        self.workspace = workspace
        super.init()
    }

    /// Replaces the Float weight; the current format's copy is rebuilt before the next product
    /// (a model calls this when the tied embedding changes).
    /// - Throws: `.lengthMismatch` for a wrong count.
    public func setWeight(_ w: [Float]) throws {
        guard w.count == vocabularySize * dimensions else {
            throw TernaryKitError.lengthMismatch(expected: vocabularySize * dimensions, actual: w.count, what: "LM head weight")
        }
        weight = w
        invalidate()
    }

    /// Switches the format; the quantized copy is built (or dropped) before the next product.
    /// - Throws: `.invalidArgument` for `int4` when the width is not a multiple of 32.
    public func setFormat(_ f: LMHeadFormat) throws {
        guard f != .int4 || dimensions % LMHead.int4GroupSize == 0 else {
            throw TernaryKitError.invalidArgument("int4 LM head needs a width that is a multiple of \(LMHead.int4GroupSize), got \(dimensions)")
        }
        format = f
        invalidate()
    }

    /// Drops the quantized copy; the next ``prepareForUse()`` or product builds it.
    private func invalidate() {
        quantizedWeight = []
        rowScales = []
        packedWeight = []
        groupScales = []
        isBuilt = false
    }

    /// Builds the current format's quantized copy of `weight` now (Int8 rows or 4-bit groups;
    /// nothing for `float32`), so that the first product does not pay for it.
    public override func prepareForUse() throws { buildIfNeeded() }

    private func buildIfNeeded() {
        guard !isBuilt else { return }
        isBuilt = true
        if format == .int4 { buildInt4() }
        guard format == .int8 else { return }
        let n = dimensions
        // Every row is written below; the pages are advised for huge pages before the first write.
        var q = [Int8](unsafeUninitializedCapacity: vocabularySize * n) { buffer, initialized in
            HugePages.advise(UnsafeMutableRawBufferPointer(buffer))
            initialized = vocabularySize * n
        }
        var s = [Float](repeating: 0, count: vocabularySize)
        weight.withUnsafeBufferPointer { wb in
            q.withUnsafeMutableBufferPointer { qb in
                s.withUnsafeMutableBufferPointer { sb in
                    let w = SendableConstPointer(wb), qp = SendablePointer(qb), sp = SendablePointer(sb)
                    // Each row quantized like an activation row: s = 127 / max|w|, q ∈ [-127, 127].
                    let quantizeRow = LayerKernels.quantizeRow
                    Parallel.forEachChunk(count: vocabularySize, threads: max(threads, 2), costPerItem: n) { rows in
                        for r in rows { sp.base[r] = 1 / quantizeRow(w.base + r * n, Int64(n), qp.base + r * n) }
                    }
                }
            }
        }
        quantizedWeight = q
        rowScales = s
    }

    /// Groups of 32: scale `max|w| / 7`, values `round(w / scale)` in −7…7 stored as `value + 8`,
    /// element `j` in the low nibble of byte `j` and element `j + 16` in its high nibble.
    private func buildInt4() {
        let n = dimensions, gs = LMHead.int4GroupSize
        precondition(n % gs == 0, "int4 LM head needs a multiple of \(gs) features")
        let groups = vocabularySize * n / gs
        var packed = [UInt8](repeating: 0, count: groups * 16)
        var scales = [Float](repeating: 0, count: groups)
        weight.withUnsafeBufferPointer { wb in
            packed.withUnsafeMutableBufferPointer { pb in
                scales.withUnsafeMutableBufferPointer { sb in
                    let w = SendableConstPointer(wb), p = SendablePointer(pb), s = SendablePointer(sb)
                    Parallel.forEachChunk(count: groups, threads: max(threads, 2), costPerItem: gs) { range in
                        var q = [Int32](repeating: 0, count: gs)
                        for g in range {
                            let src = w.base + g * gs
                            var amax: Float = 0
                            for i in 0..<gs { amax = max(amax, abs(src[i])) }
                            let scale = amax / 7
                            s.base[g] = scale
                            let inv: Float = amax > 0 ? 7 / amax : 0
                            for i in 0..<gs {
                                let v = min(max(src[i] * inv, -7), 7)
                                q[i] = Int32((v + 0x1.8p23) - 0x1.8p23) + 8     // round half to even
                            }
                            for j in 0..<16 { p.base[g * 16 + j] = UInt8(q[j] | (q[j + 16] << 4)) }
                        }
                    }
                }
            }
        }
        packedWeight = packed
        groupScales = scales
    }

    /// `weight` when untied; nothing when tied (the embedding's table is loaded instead).
    public override var parameterSpecs: [(name: String, spec: ParameterSpec)] {
        tied ? [] : [("weight", .floats(shape: [vocabularySize, dimensions]))]
    }

    /// The Float32 weight of an untied head as a `.floats` value.
    public override func parameter(_ name: String) -> ParameterValue? { !tied && name == "weight" ? .floats(weight) : nil }

    /// Replaces an untied head's weight with a `.floats` value of `vocabularySize × dimensions` values; the current format is rebuilt before the next product.
    /// - Throws: `.invalidArgument` when tied or for another name or kind, `.lengthMismatch` for a wrong count.
    public override func setParameter(_ name: String, _ value: ParameterValue) throws {
        guard !tied, name == "weight", case .floats(let w) = value else {
            throw TernaryKitError.invalidArgument("LMHead\(tied ? " (tied to the embedding)" : "") takes no parameter '\(name)' of this kind")
        }
        try setWeight(w)
    }

    /// Bytes this head reads per token (and keeps beyond a tied embedding), from the format's
    /// layout (the same whether or not the copy is built yet).
    public var bytesPerToken: Int {
        let n = vocabularySize * dimensions
        switch format {
        case .float32: return n * 4
        case .int8: return n + vocabularySize * 4
        case .int4: return n / 2 + n / LMHead.int4GroupSize * 4
        }
    }

    /// Bytes kept beyond the embedding: 0 for a tied `float32` head (it shares the table), else the format's bytes.
    public override var parameterBytes: Int { tied && format == .float32 ? 0 : bytesPerToken }

    /// Shape, format (with the C variant of quantized formats), tying and bytes read per token.
    public override var summary: String {
        let variant = format == .int8 ? " " + LayerKernels.gemv.rawValue : (format == .int4 ? " " + LayerKernels.gemv.rawValue : "")
        return "LMHead \(vocabularySize)x\(dimensions) [\(format.rawValue)\(variant)\(tied ? ", tied" : "")] \(formatBytes(bytesPerToken)) read per token"
    }

    /// Vocabulary rows per tile when several hidden states share a product: a tile's weights
    /// (64 rows: 160 KiB of Int8 at 2560 wide) stay in L2 while every hidden state reads them,
    /// so the head is streamed from memory once per product, not once per row.
    static let tileRows = 64

    /// Calls `body(tile, r)` for every tile of `range` and every row `r`, tile by tile; one row
    /// gets the whole range at once. Each logit is computed by the same code either way.
    @inline(__always)
    static func forEachTile(_ range: Range<Int>, rows: Int, _ body: (Range<Int>, Int) -> Void) {
        if rows == 1 { body(range, 0); return }
        var lo = range.lowerBound
        while lo < range.upperBound {
            let hi = min(range.upperBound, lo &+ tileRows)
            for r in 0..<rows { body(lo..<hi, r) }
            lo = hi
        }
    }

    /// Logits for `rows` hidden states `h` (`rows × dimensions`) into `out` (`rows × vocabularySize`).
    public func callAsFunction(_ h: UnsafeBufferPointer<Float>, rows: Int, into out: UnsafeMutableBufferPointer<Float>) {
        precondition(h.count >= rows * dimensions && out.count >= rows * vocabularySize)
        buildIfNeeded()
        let n = dimensions, v = vocabularySize
        let o = SendablePointer(out)
        switch format {
        case .float32:
            let dot = LayerKernels.dot
            weight.withUnsafeBufferPointer { wb in
                let w = SendableConstPointer(wb), x = SendableConstPointer(h)
                Parallel.forEachChunk(count: v, threads: threads, granularity: 64, costPerItem: n &* rows) { range in
                    LMHead.forEachTile(range, rows: rows) { tile, r in
                        for i in tile { o.base[r &* v &+ i] = dot(w.base + i &* n, x.base + r &* n, Int64(n)) }
                    }
                }
            }
        case .int8:
            let qx = workspace.quantized(count: rows * n)
            let qs = workspace.scales(count: rows)
            LayerKernels.quantize(h, rows: rows, columns: n, into: qx, scales: qs, threads: threads)
            let acc = workspace.accumulators(count: v)
            let gemv = LayerKernels.gemv.gemvI8
            let a = SendablePointer(acc)
            quantizedWeight.withUnsafeBufferPointer { wb in
                rowScales.withUnsafeBufferPointer { sb in
                    let w = SendableConstPointer(wb)
                    let s = SendableConstPointer(sb)
                    let x = SendableConstPointer(UnsafeBufferPointer(qx)), xs = SendableConstPointer(UnsafeBufferPointer(qs))
                    let gemm = LayerKernels.gemv.gemmI8
                    Parallel.forEachChunk(count: v, threads: threads, granularity: 64, costPerItem: n &* rows) { range in
                        if rows == 1 {
                            gemv(w.base + range.lowerBound &* n, x.base, Int64(range.count), Int64(n), a.base + range.lowerBound)
                            let inverse = 1 / xs.base[0]
                            for i in range { o.base[i] = Float(a.base[i]) * s.base[i] * inverse }
                            return
                        }
                        // Several rows: the exact Int32 products go into the output's own memory
                        // (4 bytes each, like the Float they become), then are scaled in place.
                        let raw = UnsafeMutableRawPointer(o.base)
                        gemm(w.base + range.lowerBound &* n, Int64(range.count), Int64(n), x.base, Int64(rows),
                             raw.assumingMemoryBound(to: Int32.self) + range.lowerBound, Int64(v))
                        for r in 0..<rows {
                            let inverse = 1 / xs.base[r]
                            for i in range {
                                let k = r &* v &+ i
                                o.base[k] = Float(raw.load(fromByteOffset: k &* 4, as: Int32.self)) * s.base[i] * inverse
                            }
                        }
                    }
                }
            }
        case .int4:
            let qx = workspace.quantized(count: rows * n)
            let qs = workspace.scales(count: rows)
            LayerKernels.quantize(h, rows: rows, columns: n, into: qx, scales: qs, threads: threads)
            let gemv = LayerKernels.gemv.gemvQ4
            let groups = n / LMHead.int4GroupSize
            packedWeight.withUnsafeBufferPointer { wb in
                groupScales.withUnsafeBufferPointer { sb in
                    let w = SendableConstPointer(wb), s = SendableConstPointer(sb)
                    let x = SendableConstPointer(UnsafeBufferPointer(qx)), xs = SendableConstPointer(UnsafeBufferPointer(qs))
                    Parallel.forEachChunk(count: v, threads: threads, granularity: 64, costPerItem: n &* rows) { range in
                        LMHead.forEachTile(range, rows: rows) { tile, r in
                            let out = o.base + (r &* v &+ tile.lowerBound)
                            gemv(w.base + tile.lowerBound &* groups &* 16, s.base + tile.lowerBound &* groups, x.base + r &* n,
                                 Int64(tile.count), Int64(n), out)
                            let inverse = 1 / xs.base[r]
                            for i in 0..<tile.count { out[i] *= inverse }
                        }
                    }
                }
            }
        }
    }
}
