import Testing
import TensorCore
@testable import Layers

/// The Int8 LM head: its C GEMV variants against a plain product, its logits against the
/// Float32 head within the bound its two quantizations allow.
@Suite struct LMHeadTests {
    @Test func everyGemvVariantIsExact() {
        var g = SeededGenerator(seed: 4)
        for (rows, cols) in [(1, 1), (3, 31), (5, 32), (9, 33), (64, 100), (7, 2560)] {
            let w = g.int8s(count: rows * cols, in: -127...127)
            let x = g.int8s(count: cols)
            var expected = [Int32](repeating: 0, count: rows)
            for r in 0..<rows {
                var s: Int32 = 0
                for c in 0..<cols { s += Int32(w[r * cols + c]) * Int32(x[c]) }
                expected[r] = s
            }
            // Extremes: every x = -128 against w = ±127.
            let wx = (0..<(rows * cols)).map { $0 % 2 == 0 ? Int8(127) : Int8(-127) }
            let xx = [Int8](repeating: -128, count: cols)
            for (name, f) in GemvKernelVariant.supported.map({ ($0.rawValue, $0.gemvI8) }) {
                var y = [Int32](repeating: 0, count: rows)
                f(w, x, Int64(rows), Int64(cols), &y)
                #expect(y == expected, "\(name) \(rows)x\(cols)")
                var yx = [Int32](repeating: 0, count: rows)
                var ex = [Int32](repeating: 0, count: rows)
                tk_reference(wx, xx, rows, cols, &ex)
                f(wx, xx, Int64(rows), Int64(cols), &yx)
                #expect(yx == ex, "\(name) extremes \(rows)x\(cols)")
            }
        }
    }

    @Test func everyGemmVariantEqualsTheGemvRowByRow() {
        var g = SeededGenerator(seed: 5)
        for (rows, cols, batch) in [(1, 1, 2), (3, 31, 5), (70, 64, 4), (9, 100, 9), (131, 130, 3), (5, 2560, 8)] {
            let w = g.int8s(count: rows * cols, in: -127...127)
            let x = g.int8s(count: batch * cols)
            let extremes = (0..<(rows * cols)).map { $0 % 2 == 0 ? Int8(127) : Int8(-127) }
            let minus = [Int8](repeating: -128, count: batch * cols)
            for variant in GemvKernelVariant.supported {
                for (wv, xv) in [(w, x), (extremes, minus)] {
                    var expected = [Int32](repeating: 0, count: batch * rows)
                    for t in 0..<batch {
                        var y = [Int32](repeating: 0, count: rows)
                        variant.gemvI8(wv, Array(xv[(t * cols)..<((t + 1) * cols)]), Int64(rows), Int64(cols), &y)
                        expected.replaceSubrange((t * rows)..<((t + 1) * rows), with: y)
                    }
                    var out = [Int32](repeating: 7, count: batch * rows)
                    variant.gemmI8(wv, Int64(rows), Int64(cols), xv, Int64(batch), &out, Int64(rows))
                    #expect(out == expected, "\(variant.rawValue) \(rows)x\(cols) batch \(batch)")
                }
            }
        }
    }

    @Test func everyQ4VariantAgreesWithTheDefinition() {
        var g = SeededGenerator(seed: 6)
        for (rows, cols) in [(1, 32), (3, 64), (9, 96), (5, 2560)] {
            let groups = cols / 32
            let w = (0..<(rows * groups * 16)).map { _ in UInt8(truncatingIfNeeded: g.next()) }
            let scales = g.floats(count: rows * groups, magnitude: 2)
            let x = g.int8s(count: cols)
            var expected = [Double](repeating: 0, count: rows)
            for r in 0..<rows {
                for gi in 0..<groups {
                    var dot = 0
                    for j in 0..<16 {
                        let b = w[(r * groups + gi) * 16 + j]
                        dot += (Int(b & 15) - 8) * Int(x[gi * 32 + j]) + (Int(b >> 4) - 8) * Int(x[gi * 32 + 16 + j])
                    }
                    expected[r] += Double(dot) * Double(scales[r * groups + gi])
                }
            }
            for (name, f) in GemvKernelVariant.supported.map({ ($0.rawValue, $0.gemvQ4) }) {
                var y = [Float](repeating: 0, count: rows)
                f(w, scales, x, Int64(rows), Int64(cols), &y)
                for r in 0..<rows {
                    let magnitude = Double(groups) * 32 * 128 * 8 * 2
                    #expect(abs(Double(y[r]) - expected[r]) <= 1e-6 * magnitude, "\(name) \(rows)x\(cols) row \(r)")
                }
            }
        }
    }

    @Test func int4HeadIsCloseToFloat32AndSmaller() throws {
        var g = SeededGenerator(seed: 10)
        let v = 200, n = 64
        let table = g.gaussians(count: v * n, standardDeviation: 0.05)
        let ws = Workspace()
        let exact = try LMHead(weight: table, vocabularySize: v, dimensions: n, format: .float32, tied: true, threads: 1, workspace: ws)
        let q4 = try LMHead(weight: table, vocabularySize: v, dimensions: n, format: .int4, tied: true, threads: 2, workspace: ws)
        #expect(q4.bytesPerToken == v * n / 2 + v * n / 32 * 4)
        let h = g.gaussians(count: n)
        var a = [Float](repeating: 0, count: v), b = a
        h.withUnsafeBufferPointer { hp in
            a.withUnsafeMutableBufferPointer { exact(hp, rows: 1, into: $0) }
            b.withUnsafeMutableBufferPointer { q4(hp, rows: 1, into: $0) }
        }
        // Per weight error ≤ ½ · group max / 7, per activation ≤ ½ · max|x| / 127.
        let xmax = h.map { abs($0) }.max()!
        for o in 0..<v {
            var bound: Float = 0
            for gi in 0..<(n / 32) {
                let group = table[(o * n + gi * 32)..<(o * n + gi * 32 + 32)]
                let gmax = group.map { abs($0) }.max()!
                bound += group.reduce(Float(0)) { $0 + abs($1) } * 0.5 * xmax / 127 + 32 * 0.5 * gmax / 7 * xmax * 1.01
            }
            #expect(abs(a[o] - b[o]) <= bound * 1.01 + 1e-5, "row \(o)")
        }
    }

    func tk_reference(_ w: [Int8], _ x: [Int8], _ rows: Int, _ cols: Int, _ out: inout [Int32]) {
        for r in 0..<rows { out[r] = (0..<cols).reduce(Int32(0)) { $0 + Int32(w[r * cols + $1]) * Int32(x[$1]) } }
    }

    @Test func int8LogitsStayWithinTheQuantizationBound() throws {
        var g = SeededGenerator(seed: 8)
        let v = 300, n = 96
        let table = g.gaussians(count: v * n, standardDeviation: 0.05)
        let ws = Workspace()
        let exact = try LMHead(weight: table, vocabularySize: v, dimensions: n, format: .float32, tied: true, threads: 2, workspace: ws)
        let small = try LMHead(weight: table, vocabularySize: v, dimensions: n, format: .int8, tied: true, threads: 2, workspace: ws)
        #expect(small.bytesPerToken < exact.bytesPerToken / 3)
        for _ in 0..<5 {
            let h = g.gaussians(count: n)
            var a = [Float](repeating: 0, count: v), b = a
            h.withUnsafeBufferPointer { hp in
                a.withUnsafeMutableBufferPointer { exact(hp, rows: 1, into: $0) }
                b.withUnsafeMutableBufferPointer { small(hp, rows: 1, into: $0) }
            }
            // |Σ w·x − Σ ŵ·x̂| ≤ Σ |w|·|x − x̂| + Σ |w − ŵ|·|x̂| with |x − x̂| ≤ ½·max|x|/127 and
            // |w − ŵ| ≤ ½·max|w_row|/127 (plus Float rounding).
            let xmax = h.map { abs($0) }.max()!
            for o in 0..<v {
                let row = table[(o * n)..<((o + 1) * n)]
                let wmax = row.map { abs($0) }.max()!
                let bound = row.reduce(Float(0)) { $0 + abs($1) } * 0.5 * xmax / 127 + Float(n) * 0.5 * wmax / 127 * xmax * 1.01
                #expect(abs(a[o] - b[o]) <= bound * 1.01 + 1e-5, "row \(o)")
            }
        }
    }
}

/// The C row quantizer against TensorCore's `ActivationQuantizer`, bit for bit.
@Suite struct QuantizerTests {
    @Test func everyVariantMatchesActivationQuantizer() throws {
        var g = SeededGenerator(seed: 12)
        var rows: [[Float]] = [[0, 0, 0], [1e-7, -1e-7], [127, 0.5, 1.5, 2.5, -2.5, -0.5, -127], [Float](repeating: -3, count: 33)]
        for n in [1, 7, 8, 15, 16, 17, 31, 64, 100, 2560] { rows.append(g.floats(count: n, magnitude: 10)) }
        for bad in [Float.nan, .infinity, -.infinity] {
            var r = g.floats(count: 40)
            r[37] = bad
            rows.append(r)
            var r2 = g.floats(count: 40)
            r2[3] = bad
            rows.append(r2)
        }
        for row in rows {
            let (expected, scales) = try ActivationQuantizer.quantize(row, rows: 1, columns: row.count)
            for (name, f) in VectorKernelVariant.supported.map({ ($0.rawValue, $0.quantizeRow) }) {
                var q = [Int8](repeating: 99, count: row.count)
                let s = f(row, Int64(row.count), &q)
                #expect(q == expected, "\(name) \(row.prefix(4))")
                #expect(s == scales[0] || (s.isNaN && scales[0].isNaN), "\(name): \(s) vs \(scales[0])")
            }
        }
    }
}
