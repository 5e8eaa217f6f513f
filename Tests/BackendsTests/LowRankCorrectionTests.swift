import Backends
import Testing
import TensorCore

/// The low-rank correction kernel (`LowRankCorrection.apply`, `LowRankVariant`): accuracy against
/// a double-precision reference, and batch invariance, the property batched decoding relies on.
@Suite struct LowRankCorrectionTests {
    /// (out, in, rank): 1×1×1, ranks 1, 3, 16, 17, 64, widths that are no multiple of 4, 8 or 16,
    /// out > in and in > out.
    static let shapes: [(Int, Int, Int)] = [
        (1, 1, 1), (7, 5, 1), (5, 300, 3), (37, 19, 16), (19, 37, 17), (130, 67, 64), (67, 130, 17), (33, 200, 3),
        (129, 17, 64),
    ]

    static func correction(_ out: Int, _ inn: Int, _ rank: Int, seed: UInt64) throws -> LowRankCorrection {
        var g = SeededGenerator(seed: seed)
        return try LowRankCorrection(outFeatures: out, inFeatures: inn, rank: rank,
                                     a: g.floats(count: out * rank), b: g.floats(count: rank * inn))
    }

    /// `y0 + A·(B·x)` in Double.
    static func reference(_ c: LowRankCorrection, _ x: [Float], batch: Int, _ y0: [Float]) -> [Double] {
        var y = y0.map(Double.init)
        for row in 0..<batch {
            var t = [Double](repeating: 0, count: c.rank)
            for j in 0..<c.rank {
                for i in 0..<c.inFeatures { t[j] += Double(c.b[j * c.inFeatures + i]) * Double(x[row * c.inFeatures + i]) }
            }
            for o in 0..<c.outFeatures {
                for j in 0..<c.rank { y[row * c.outFeatures + o] += Double(c.a[o * c.rank + j]) * t[j] }
            }
        }
        return y
    }

    /// Runs the pointer form with a NaN-filled scratch (the kernel must not read it before writing).
    static func run(_ c: LowRankCorrection, _ x: [Float], batch: Int, _ y0: [Float], threads: Int,
                    variant: LowRankVariant) throws -> [Float] {
        var y = y0
        var scratch = [Float](repeating: .nan, count: c.scratchCount(batch: batch))
        try x.withUnsafeBufferPointer { px in
            try y.withUnsafeMutableBufferPointer { py in
                try scratch.withUnsafeMutableBufferPointer { ps in
                    try c.apply(px, batch: batch, into: py, scratch: ps, context: ComputeContext(threads: threads), variant: variant)
                }
            }
        }
        return y
    }

    /// Every supported variant within 1e-5 of the Double reference, relative to the root mean
    /// square of the row's correction plus |y0| (Float sums over `in` and `rank` terms).
    @Test(arguments: LowRankVariant.supported)
    func matchesDoubleReference(variant: LowRankVariant) throws {
        for (s, (out, inn, rank)) in Self.shapes.enumerated() {
            let c = try Self.correction(out, inn, rank, seed: UInt64(100 + s))
            var g = SeededGenerator(seed: UInt64(s))
            let batch = 5
            let x = g.floats(count: batch * inn)
            let y0 = g.floats(count: batch * out)
            let expected = Self.reference(c, x, batch: batch, y0)
            for threads in [1, 2] {
                let y = try Self.run(c, x, batch: batch, y0, threads: threads, variant: variant)
                for row in 0..<batch {
                    let range = (row * out)..<((row + 1) * out)
                    let delta = range.map { expected[$0] - Double(y0[$0]) }
                    let scale = (delta.map { $0 * $0 }.reduce(0, +) / Double(out)).squareRoot() + 1
                    let err = range.map { abs(Double(y[$0]) - expected[$0]) }.max()!
                    #expect(err <= 1e-5 * scale, "\(variant) \(out)×\(inn) r\(rank) row \(row) threads \(threads): \(err) vs scale \(scale)")
                }
            }
        }
    }

    /// Every row of a batch of 1…9 or 64 rows, on one or two threads, has exactly the bits it
    /// gets applied alone on one thread, at whatever position it sits.
    @Test(arguments: LowRankVariant.supported)
    func everyRowMatchesItselfAlone(variant: LowRankVariant) throws {
        // Shapes large enough that two threads really split the work (above Parallel's minimum).
        let shapes = Self.shapes + [(300, 260, 17), (260, 1030, 64), (1000, 129, 3)]
        for (s, (out, inn, rank)) in shapes.enumerated() {
            let c = try Self.correction(out, inn, rank, seed: UInt64(200 + s))
            var g = SeededGenerator(seed: UInt64(300 + s))
            let maxBatch = 64
            let x = g.floats(count: maxBatch * inn)
            let y0 = g.floats(count: maxBatch * out)
            let alone = try (0..<maxBatch).map { row in
                try Self.run(c, Array(x[(row * inn)..<((row + 1) * inn)]), batch: 1,
                             Array(y0[(row * out)..<((row + 1) * out)]), threads: 1, variant: variant)
            }
            for batch in Array(1...9) + [64] {
                // Batches start at different rows so that a row meets several positions.
                let first = (batch * 7) % (maxBatch - batch + 1)
                let xs = Array(x[(first * inn)..<((first + batch) * inn)])
                let ys = Array(y0[(first * out)..<((first + batch) * out)])
                for threads in [1, 2] {
                    let y = try Self.run(c, xs, batch: batch, ys, threads: threads, variant: variant)
                    for i in 0..<batch {
                        #expect(Array(y[(i * out)..<((i + 1) * out)]) == alone[first + i],
                                "\(variant) \(out)×\(inn) r\(rank) batch \(batch) row \(i) threads \(threads)")
                    }
                }
                // Alone on two threads (the batch-1 split over t's lanes) is the same too.
                if batch == 1 {
                    let y = try Self.run(c, xs, batch: 1, ys, threads: 2, variant: variant)
                    #expect(y == alone[first], "\(variant) \(out)×\(inn) r\(rank) alone on two threads")
                }
            }
        }
    }

    /// The AVX2 and AVX-512 kernels compute every value as the same chain of FMAs: same bits.
    @Test func simdVariantsAgreeBitForBit() throws {
        guard LowRankVariant.avx2.isSupported, LowRankVariant.avx512.isSupported else { return }
        for (s, (out, inn, rank)) in Self.shapes.enumerated() {
            let c = try Self.correction(out, inn, rank, seed: UInt64(400 + s))
            var g = SeededGenerator(seed: UInt64(500 + s))
            let x = g.floats(count: 6 * inn), y0 = g.floats(count: 6 * out)
            #expect(try Self.run(c, x, batch: 6, y0, threads: 1, variant: .avx2)
                    == Self.run(c, x, batch: 6, y0, threads: 1, variant: .avx512), "\(out)×\(inn) r\(rank)")
        }
    }

    /// Rank 0 leaves y alone; short buffers, a bad batch and the transposes' bookkeeping.
    @Test func edgeCasesAndErrors() throws {
        let zero = try LowRankCorrection(outFeatures: 3, inFeatures: 2, rank: 0, a: [], b: [])
        var y: [Float] = [1, 2, 3]
        try zero.apply([4, 5], batch: 1, to: &y)
        #expect(y == [1, 2, 3])
        #expect(zero.storageBytes == 0)

        let c = try Self.correction(5, 7, 3, seed: 9)
        #expect(c.storageBytes == 2 * 4 * 3 * (5 + 7))
        #expect(c == (try LowRankCorrection(outFeatures: 5, inFeatures: 7, rank: 3, a: c.a, b: c.b)))
        #expect(c.scratchCount(batch: 4) == 12)
        var y2 = [Float](repeating: 0, count: 2 * 5)
        let x = [Float](repeating: 1, count: 2 * 7)
        #expect(throws: TernaryKitError.self) { try c.apply(x, batch: 0, to: &y2) }
        #expect(throws: TernaryKitError.self) { try c.apply(x, batch: -1, to: &y2) }
        #expect(throws: TernaryKitError.self) { try c.apply(Array(x.dropLast()), batch: 2, to: &y2) }
        var short = [Float](repeating: 0, count: 2 * 5 - 1)
        #expect(throws: TernaryKitError.self) { try c.apply(x, batch: 2, to: &short) }
        var scratch = [Float](repeating: 0, count: c.scratchCount(batch: 2) - 1)
        do {
            try x.withUnsafeBufferPointer { px in
                try y2.withUnsafeMutableBufferPointer { py in
                    try scratch.withUnsafeMutableBufferPointer { ps in try c.apply(px, batch: 2, into: py, scratch: ps) }
                }
            }
            Issue.record("a short scratch did not throw")
        } catch let e as TernaryKitError {
            guard case .lengthMismatch = e else { Issue.record("expected lengthMismatch, got \(e)"); return }
        }
        do {
            try LowRankCorrection(outFeatures: 5, inFeatures: 7, rank: 3, a: c.a, b: Array(c.b.dropLast())).apply(x, batch: 2, to: &y2)
            Issue.record("a short factor did not throw")
        } catch let e as TernaryKitError {
            guard case .lengthMismatch = e else { Issue.record("expected lengthMismatch, got \(e)"); return }
        }
        #expect(throws: TernaryKitError.self) { try c.apply(x, batch: Int.max / 2, to: &y2) }
    }
}
