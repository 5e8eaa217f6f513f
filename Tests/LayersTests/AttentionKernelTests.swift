import Foundation
import Testing
import TensorCore
@testable import Layers

/// The blocked attention kernel (`tk_attention_f32_*` behind `GroupedQueryAttention.attend`) and
/// its exponential, for every variant this CPU runs: against a double-precision reference, bit
/// for bit across groupings of rows (prefill vs. decode, threads, scratch contents), and causal
/// even when later positions hold NaN.
@Suite struct AttentionKernelTests {
    /// One attention problem: `count` new tokens after `start` cached ones, keys and values of
    /// `start + count` positions in a store of `stride` positions per KV head (the rest NaN).
    struct Problem {
        let heads: Int, kvHeads: Int, d: Int, start: Int, count: Int, stride: Int
        var q: [Float], keys: [Float], values: [Float]

        init(heads: Int, kvHeads: Int, d: Int, start: Int, count: Int, seed: UInt64) {
            self.heads = heads; self.kvHeads = kvHeads; self.d = d; self.start = start; self.count = count
            stride = start + count + 3
            var g = SeededGenerator(seed: seed)
            q = g.floats(count: count * heads * d, magnitude: 1)
            keys = [Float](repeating: .nan, count: kvHeads * stride * d)
            values = keys
            for gi in 0..<kvHeads {
                for j in 0..<(start + count) {
                    for c in 0..<d {
                        keys[(gi * stride + j) * d + c] = g.nextSignedUnitFloat()
                        values[(gi * stride + j) * d + c] = g.nextSignedUnitFloat()
                    }
                }
            }
        }

        /// `attend` with `kernel` for tokens `first ..< first + n` (positions `start + first ...`),
        /// the scratch filled with `garbage` first.
        func run(_ variant: VectorKernelVariant, threads: Int = 1, first: Int = 0, n: Int? = nil,
                 garbage: Float = .nan) -> [Float] {
            let n = n ?? count
            let count = scratchCount(n: n, first: first, threads: threads)
            var scratch = [Float](repeating: garbage, count: max(1, count))
            var out = [Float](repeating: .nan, count: n * heads * d)
            q.withUnsafeBufferPointer { qp in keys.withUnsafeBufferPointer { kp in values.withUnsafeBufferPointer { vp in
                scratch.withUnsafeMutableBufferPointer { sp in out.withUnsafeMutableBufferPointer { op in
                    GroupedQueryAttention.attend(
                        queries: qp.baseAddress! + first * heads * d, count: n, heads: heads, kvHeads: kvHeads,
                        headDimension: d, keys: kp.baseAddress!, values: vp.baseAddress!, keyStride: stride,
                        startPosition: start + first, threads: threads, scratch: sp, into: op.baseAddress!,
                        kernel: variant.attention)
                }}
            }}}
            return out
        }

        func scratchCount(n: Int, first: Int, threads: Int) -> Int {
            GroupedQueryAttention.scratchCount(count: n, heads: heads, kvHeads: kvHeads, headDimension: d,
                                               startPosition: start + first, threads: threads)
        }

        /// softmax(q·kᵀ/√d) · v in Double, token `t`, head `h`.
        func reference(t: Int, h: Int) -> [Double] {
            let gi = h / (heads / kvHeads), visible = start + t + 1
            var s = [Double](repeating: 0, count: visible)
            for j in 0..<visible {
                var acc = 0.0
                for c in 0..<d { acc += Double(q[(t * heads + h) * d + c]) * Double(keys[(gi * stride + j) * d + c]) }
                s[j] = acc / Double(d).squareRoot()
            }
            let m = s.max()!
            var z = 0.0
            for j in 0..<visible { s[j] = exp(s[j] - m); z += s[j] }
            var o = [Double](repeating: 0, count: d)
            for j in 0..<visible {
                let p = s[j] / z
                for c in 0..<d { o[c] += p * Double(values[(gi * stride + j) * d + c]) }
            }
            return o
        }
    }

    static func bits(_ x: [Float]) -> [UInt32] { x.map(\.bitPattern) }

    /// Every variant against the Double reference: head dims 1 … 128, groups 1, 2, 4, 5, prompt
    /// lengths around the vector widths and key-chunk sizes, cached prefixes of several lengths.
    /// Values lie in [-1, 1], so outputs do too; tolerance 1e-5 absolute (≈ relative to the values' scale).
    @Test func kernelMatchesDoublePrecisionReference() {
        let dims = [1, 3, 16, 64, 100, 128], groups = [1, 2, 4, 5], counts = [1, 2, 15, 16, 17, 33, 130]
        let starts = [0, 1, 7, 31, 40]
        var shapes: [(d: Int, group: Int, count: Int, start: Int)] = []
        for (i, d) in dims.enumerated() {
            for (j, group) in groups.enumerated() {
                // Every count with every head dimension; groups and starts rotate.
                for (k, count) in counts.enumerated() where (i + j + k) % 2 == 0 || d == 16 {
                    shapes.append((d, group, count, starts[(i + 2 * j + k) % starts.count]))
                }
            }
        }
        shapes.append((128, 4, 130, 0))
        shapes.append((128, 4, 33, 97))
        for variant in VectorKernelVariant.supported {
            var worst = 0.0
            for (n, s) in shapes.enumerated() {
                let kvHeads = s.group == 5 ? 1 : 2
                let p = Problem(heads: kvHeads * s.group, kvHeads: kvHeads, d: s.d, start: s.start, count: s.count,
                                seed: UInt64(100 + n))
                let out = p.run(variant, threads: 2)
                // Check every row of small problems, a spread of rows of large ones.
                let rows = p.count * p.heads
                let step = rows * p.d * (p.start + p.count) > 400_000 ? 7 : 1
                for row in Swift.stride(from: 0, to: rows, by: step) {
                    let t = row / p.heads, h = row % p.heads
                    let e = p.reference(t: t, h: h)
                    for c in 0..<p.d {
                        let err = abs(Double(out[row * p.d + c]) - e[c])
                        worst = max(worst, err.isNaN ? .infinity : err)
                    }
                }
                #expect(worst <= 1e-5, "\(variant) d \(s.d) group \(s.group) count \(s.count) start \(s.start): error \(worst)")
                if worst > 1e-5 { break }
            }
        }
    }

    /// One prefill call, the same tokens one (or three) at a time, two threads and any scratch
    /// contents give the same bits; the variants agree with each other within 1e-5.
    @Test func rowsAreBitIdenticalHoweverTheyAreGrouped() {
        for (heads, kvHeads, d, start, count) in [(8, 2, 64, 0, 37), (20, 5, 128, 3, 40), (5, 1, 100, 17, 19), (2, 2, 3, 0, 9)] {
            let p = Problem(heads: heads, kvHeads: kvHeads, d: d, start: start, count: count, seed: UInt64(heads * 1000 + d))
            var outs: [VectorKernelVariant: [Float]] = [:]
            for variant in VectorKernelVariant.supported {
                let whole = p.run(variant, threads: 1)
                #expect(whole.allSatisfy { $0.isFinite })
                #expect(Self.bits(p.run(variant, threads: 2, garbage: 1e30)) == Self.bits(whole), "\(variant) 2 threads")
                var single: [Float] = [], triples: [Float] = []
                for t in 0..<count { single += p.run(variant, threads: 1, first: t, n: 1, garbage: 0) }
                for t in Swift.stride(from: 0, to: count, by: 3) { triples += p.run(variant, threads: 2, first: t, n: min(3, count - t)) }
                #expect(Self.bits(single) == Self.bits(whole), "\(variant) \(heads)/\(kvHeads)×\(d): one token at a time")
                #expect(Self.bits(triples) == Self.bits(whole), "\(variant) \(heads)/\(kvHeads)×\(d): three tokens at a time")
                outs[variant] = whole
            }
            let best = outs[VectorKernelVariant.best]!
            for (variant, out) in outs {
                let diff = zip(out, best).map { abs($0 - $1) }.max()!
                #expect(diff <= 1e-5, "\(variant) vs \(VectorKernelVariant.best): \(diff)")
            }
        }
    }

    /// A NaN (or inf) in the key or value of a later position never reaches a token that cannot
    /// see it: its output is the bits it has with clean data, in one prefill call and with two threads.
    @Test func nonFiniteLaterPositionsDoNotLeakIntoEarlierTokens() {
        let clean = Problem(heads: 8, kvHeads: 2, d: 64, start: 0, count: 40, seed: 77)
        for variant in VectorKernelVariant.supported {
            let expected = clean.run(variant)
            for (what, bad) in [("value NaN", Float.nan), ("value inf", .infinity), ("key NaN", .nan), ("key inf", -.infinity)] {
                var p = clean
                let position = 21
                for gi in 0..<p.kvHeads {
                    for c in [0, 5, 63] {
                        if what.hasPrefix("key") { p.keys[(gi * p.stride + position) * p.d + c] = bad }
                        else { p.values[(gi * p.stride + position) * p.d + c] = bad }
                    }
                }
                for threads in [1, 2] {
                    let out = p.run(variant, threads: threads)
                    let earlier = position * p.heads * p.d   // tokens 0 ..< position see positions < position
                    #expect(Self.bits(Array(out[..<earlier])) == Self.bits(Array(expected[..<earlier])), "\(variant) \(what) threads \(threads)")
                    #expect(out[earlier...].contains { !$0.isFinite } || what.hasPrefix("key"), "\(variant) \(what): later tokens see it")
                }
            }
        }
    }

    /// Through the layer: the attention output (before `o_proj`) of a 40-token prompt is the same
    /// bits in one prefill call, one token at a time, with two threads, and in the batched decode
    /// step next to other sequences.
    @Test func layerPathsGiveTheSameAttentionBits() throws {
        let hidden = 128, heads = 8, kvHeads = 2, d = 16, n = 40
        var g = SeededGenerator(seed: 21)
        let rotary = try RotaryEmbedding(headDimension: d, theta: 10_000, maxPositions: 64)
        let attention = try GroupedQueryAttention(hiddenSize: hidden, heads: heads, kvHeads: kvHeads, rotary: rotary)
        for (key, spec) in attention.namedParameterSpecs() {
            if case .ternary(let o, let i) = spec {
                try attention.setParameter(key: key, .ternary(TernaryMatrix.random(outFeatures: o, inFeatures: i, using: &g)))
            }
        }
        let x = g.floats(count: n * hidden, magnitude: 1)
        /// Rows `first ..< first + rows` of `x` into `cache`; returns the attention output of those rows.
        func step(_ first: Int, _ rows: Int, _ cache: KVCache) throws -> [Float] {
            var y = [Float](repeating: 0, count: rows * hidden)
            try x.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { yp in
                try attention(UnsafeBufferPointer(rebasing: xp[(first * hidden)..<((first + rows) * hidden)]), rows: rows,
                              cache: cache, into: yp)
            }}
            return Array(attention.workspace.floats(.attention, count: rows * heads * d))
        }
        attention.threads = 1
        let whole = try step(0, n, attention.makeCache(capacity: 64))
        var single: [Float] = []
        let c1 = try attention.makeCache(capacity: 64)
        for t in 0..<n { single += try step(t, 1, c1) }
        attention.threads = 2
        let twoThreads = try step(0, n, attention.makeCache(capacity: 64))
        #expect(Self.bits(single) == Self.bits(whole))
        #expect(Self.bits(twoThreads) == Self.bits(whole))

        // Batched decode: sequences of 5, 17 and 33 prompt tokens, then token 39 for each.
        let lengths = [5, 17, 33]
        let batched = try lengths.map { l in let c = try attention.makeCache(capacity: 64); _ = try step(0, l, c); return c }
        let alone = try lengths.map { l in let c = try attention.makeCache(capacity: 64); _ = try step(0, l, c); return c }
        let next = Array(x[((n - 1) * hidden)...])
        let rows = lengths.count
        let input = (0..<rows).flatMap { _ in next }
        var y = [Float](repeating: 0, count: rows * hidden)
        try input.withUnsafeBufferPointer { xp in try y.withUnsafeMutableBufferPointer { try attention(xp, rows: rows, caches: batched, into: $0) } }
        let together = Array(attention.workspace.floats(.attention, count: rows * heads * d))
        for r in 0..<rows {
            let own = try step(n - 1, 1, alone[r])
            #expect(Self.bits(Array(together[(r * heads * d)..<((r + 1) * heads * d)])) == Self.bits(own), "sequence \(r)")
        }
    }

    /// The softmax's exp against Foundation's over [-100, 0]: where exp(x) is a normal Float
    /// (x ≥ -87.3) the relative error is at most 2 · 2⁻²³ (≈ 2 ulp); below, the result is within
    /// one subnormal step (2⁻¹⁴⁹) plus that relative error. exp(-inf) = 0, exp(0) = 1, NaN stays NaN.
    @Test func vectorExpIsAccurateOverTheSoftmaxRange() {
        var xs: [Float] = []
        let n = 400_001
        for i in 0..<n { xs.append(-100 * Float(i) / Float(n - 1)) }
        xs += [-.infinity, -1000, -104, -103.97, -103.2, -87.34, -87.33, -1e-30, -0.0, 0, -.leastNonzeroMagnitude, .nan]
        for variant in VectorKernelVariant.supported {
            var ys = [Float](repeating: 7, count: xs.count)
            xs.withUnsafeBufferPointer { xp in ys.withUnsafeMutableBufferPointer { yp in
                variant.exp(xp.baseAddress!, yp.baseAddress!, Int64(xs.count))
            }}
            var worst = 0.0
            for (x, y) in zip(xs, ys) where !x.isNaN {
                let e = Foundation.exp(Double(x))
                let err = abs(Double(y) - e)
                let bound = 2 * 0x1p-23 * e + (x < -87.3 ? 0x1p-149 : 0)
                #expect(err <= bound, "\(variant) exp(\(x)) = \(y), expected \(e)")
                if x >= -87.3 { worst = max(worst, err / e) }
                if err > bound { break }
            }
            #expect(ys[xs.count - 1].isNaN, "\(variant) exp(NaN)")
            #expect(ys[n] == 0 && ys[n].sign == .plus, "\(variant) exp(-inf)")
            #expect(ys[n + 1] == 0, "\(variant) exp(-1000)")
            #expect(ys[n + 8] == 1 && ys[n + 9] == 1, "\(variant) exp(0)")
            #expect(worst < 2 * 0x1p-23, "\(variant): worst relative error \(worst)")
        }
    }
}

/// A caller-supplied scratch shorter than `scratchCount` stops the program with a message instead
/// of being overrun (run in a child process by Swift Testing's exit tests).
@Suite struct AttentionScratchTests {
    @Test func tooSmallScratchStopsInsteadOfOverrunning() async {
        await #expect(processExitsWith: .failure) {
            let heads = 4, kvHeads = 2, d = 16, count = 40
            let q = [Float](repeating: 0.5, count: count * heads * d)
            let kv = [Float](repeating: 0.25, count: kvHeads * count * d)
            var out = [Float](repeating: 0, count: count * heads * d)
            let need = GroupedQueryAttention.scratchCount(count: count, heads: heads, kvHeads: kvHeads, headDimension: d,
                                                          startPosition: 0, threads: 1)
            var scratch = [Float](repeating: 0, count: need - 1)
            q.withUnsafeBufferPointer { qp in kv.withUnsafeBufferPointer { kp in
                scratch.withUnsafeMutableBufferPointer { sp in out.withUnsafeMutableBufferPointer { op in
                    GroupedQueryAttention.attend(
                        queries: qp.baseAddress!, count: count, heads: heads, kvHeads: kvHeads, headDimension: d,
                        keys: kp.baseAddress!, values: kp.baseAddress!, keyStride: count, startPosition: 0,
                        threads: 1, scratch: sp, into: op.baseAddress!)
                }}
            }}
        }
    }
}
