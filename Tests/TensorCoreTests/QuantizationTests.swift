import Testing
@testable import TensorCore

@Suite struct TernaryMatrixTests {
    @Test func rawValuesAreValidated() throws {
        let m = try TernaryMatrix(outFeatures: 2, inFeatures: 3, values: [1, 0, -1, 0, 1, 1], scale: 0.5)
        #expect(m[0, 2] == -1 && m[1, 2] == 1 && !m.isBinary)
        #expect(try TernaryMatrix(outFeatures: 1, inFeatures: 2, values: [1, 0]).isBinary)
        #expect(throws: TernaryKitError.invalidValue("weight 2 at row 1, column 0 is not in {-1, 0, 1}")) {
            try TernaryMatrix(outFeatures: 2, inFeatures: 2, values: [1, 0, 2, 0])
        }
        #expect(throws: TernaryKitError.self) { try TernaryMatrix(outFeatures: 2, inFeatures: 2, values: [1, 0, 1]) }
        #expect(throws: TernaryKitError.self) { try TernaryMatrix(outFeatures: 0, inFeatures: 2, values: []) }
        #expect(throws: TernaryKitError.self) { try TernaryMatrix(outFeatures: 1, inFeatures: 1, values: [1], scale: .nan) }
    }

    @Test func absmeanTernarizationRoundsHalfToEven() throws {
        // mean|W| = 1, so W/γ = W: 0.5 → 0 (tie to even), 1.5 → 2 → clip 1, -0.5 → 0, -2.5 → -2 → clip -1.
        let w: [Float] = [0.5, 1.5, -0.5, -2.5, 0, 1]
        let m = try TernaryMatrix(absmean: w, outFeatures: 2, inFeatures: 3)
        #expect(m.scale == 1)
        #expect(m.values == [0, 1, 0, -1, 0, 1])
    }

    @Test func absmeanScaleIsMeanAbsoluteValue() throws {
        let w: [Float] = [0.2, -0.4, 0.9, -0.1]             // mean|W| = 0.4
        let m = try TernaryMatrix(absmean: w, outFeatures: 1, inFeatures: 4)
        #expect(abs(m.scale - 0.4) < 1e-7)
        #expect(m.values == [0, -1, 1, 0])                   // 0.5 → 0 (tie), -1, 2.25 → 1, -0.25 → 0
        let zero = try TernaryMatrix(absmean: [0, 0], outFeatures: 1, inFeatures: 2)
        #expect(zero.scale == 1e-5 && zero.values == [0, 0])
        #expect(throws: TernaryKitError.self) { try TernaryMatrix(absmean: [1, .infinity], outFeatures: 1, inFeatures: 2) }
    }

    @Test func randomMatricesFollowTheRequestedDensity() throws {
        var g = SeededGenerator(seed: 3)
        let m = try TernaryMatrix.random(outFeatures: 100, inFeatures: 1000, zeroFraction: 0.25, using: &g)
        let zeros = m.values.filter { $0 == 0 }.count, plus = m.values.filter { $0 == 1 }.count
        #expect(abs(Double(zeros) / 1e5 - 0.25) < 0.01)
        #expect(abs(Double(plus) / 1e5 - 0.375) < 0.01)
        let b = try TernaryMatrix.random(outFeatures: 10, inFeatures: 100, zeroFraction: 0.5, binary: true, using: &g)
        #expect(b.isBinary && b.values.allSatisfy { $0 == 0 || $0 == 1 })
        var g1 = SeededGenerator(seed: 9), g2 = SeededGenerator(seed: 9)
        #expect(try TernaryMatrix.random(outFeatures: 5, inFeatures: 7, using: &g1)
                == TernaryMatrix.random(outFeatures: 5, inFeatures: 7, using: &g2))
        #expect(throws: TernaryKitError.self) { try TernaryMatrix.random(outFeatures: 2, inFeatures: 2, zeroFraction: 1.5, using: &g) }
        #expect(try TernaryMatrix.random(outFeatures: 3, inFeatures: 3, zeroFraction: 1, using: &g).values.allSatisfy { $0 == 0 })
    }
}

@Suite struct ActivationQuantizationTests {
    @Test func absmaxRoundsHalfToEven() throws {
        // max|x| = 127 → s = 1, so the products are the values themselves: ties go to even.
        let (q, s) = try ActivationQuantizer.quantize([127, 0.5, 1.5, -0.5, -2.5, 2.5, -127], rows: 1, columns: 7)
        #expect(s == [1])
        #expect(q == [127, 0, 2, 0, -2, 2, -127])
    }

    @Test func largestMagnitudeMapsToPlusMinus127() throws {
        let (q, s) = try ActivationQuantizer.quantize([0.1, -0.3, 0.2, 5, 1, -2], rows: 2, columns: 3)
        #expect(q[1] == -127 && q[3] == 127)
        #expect(abs(s[0] - 127 / 0.3) < 1e-3 && s[1] == 127 / 5)
        #expect(q.allSatisfy { $0 >= -127 })
    }

    @Test func allZeroRowsUseTheFloor() throws {
        let (q, s) = try ActivationQuantizer.quantize([0, 0, 0, 1, 2, 3], rows: 2, columns: 3)
        #expect(q[0..<3].allSatisfy { $0 == 0 })
        #expect(s[0] == 127 / ActivationQuantizer.minimumAbsMax)
        // Tiny values below the floor quantize towards zero instead of blowing up.
        let (q2, _) = try ActivationQuantizer.quantize([1e-7, -1e-7], rows: 1, columns: 2)
        #expect(q2 == [1, -1])
    }

    @Test func nonFiniteRowsDequantizeToNaN() throws {
        let (q, s) = try ActivationQuantizer.quantize([1, .nan, 2, 1, 2, 3, .infinity, 1, 0], rows: 3, columns: 3)
        #expect(s[0].isNaN && s[2].isNaN && s[1].isFinite)
        #expect(q[0..<3].allSatisfy { $0 == 0 })
        let acc: [Int32] = [5, 7, 9]
        var y = [Float](repeating: 0, count: 3)
        acc.withUnsafeBufferPointer { a in s.withUnsafeBufferPointer { sp in y.withUnsafeMutableBufferPointer { yp in
            ActivationQuantizer.dequantize(a, rows: 3, columns: 1, activationScales: sp, weightScale: 0.5, into: yp)
        } } }
        #expect(y[0].isNaN && y[2].isNaN)
        #expect(y[1] == 7 * (0.5 / s[1]))
    }

    @Test func quantizeThenDequantizeApproximatesTheInput() throws {
        var g = SeededGenerator(seed: 11)
        let x = g.floats(count: 64, magnitude: 3)
        let (q, s) = try ActivationQuantizer.quantize(x, rows: 4, columns: 16)
        for r in 0..<4 {
            for c in 0..<16 {
                // |x − x_q / s| ≤ 0.5 / s (one half quantization step).
                #expect(abs(x[r * 16 + c] - Float(q[r * 16 + c]) / s[r]) <= 0.5 / s[r] * 1.0001)
            }
        }
        #expect(throws: TernaryKitError.self) { try ActivationQuantizer.quantize([1, 2, 3], rows: 2, columns: 2) }
    }
}
