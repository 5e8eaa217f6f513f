import CKernels
import Testing
@testable import Backends
import TensorCore

/// RSR / RSR++: the index, the block products and the kernels against the naive reference.
@Suite struct RSRTests {
    // MARK: The worked example of docs/RSR.md (k = 2)

    static let exampleW: [Int8] = [0, 1, 1, 0, 1, 1, 0, 0,
                                   0, 0, 1, 1, 0, 1, 1, 1]
    static let exampleX: [Int8] = [3, 4, 1, 0, 3, 9, 8, 4]

    @Test func workedExampleIndexAndSegmentSums() throws {
        let w = try TernaryMatrix(outFeatures: 2, inFeatures: 8, values: Self.exampleW)
        #expect(w.isBinary)
        let index = try RSRIndex(weights: w, k: 2, digits: .positive)
        #expect(index.blockCount == 1 && index.codeCount == 4 && !index.usesWidePermutation)
        #expect(index.permutation(ofBlock: 0) == [0, 3, 6, 7, 1, 4, 2, 5])
        #expect(index.segmentStarts(ofBlock: 0) == [0, 1, 4, 6, 8])
        // Summing every segment gives u = [3, 12, 7, 10]; pattern 0's segment (3) is never summed.
        let u = RSRReference.segmentSums(Self.exampleX.map(Int.init), index: index, block: 0)
        #expect(u == [0, 12, 7, 10])
        // Both block products, with or without u[0] (it reaches no output).
        for u0 in [0, 3] {
            let full = [u0, 12, 7, 10]
            #expect(RSRReference.enumerationProduct(full, k: 2, radix: 2) == [17, 22])
            #expect(RSRReference.fold(full, k: 2, radix: 2) == [17, 22])
        }
    }

    @Test(arguments: [RSRBackend.Variant.rsr, .rsrPlusPlus])
    func workedExampleOutputs(variant: RSRBackend.Variant) throws {
        let w = try TernaryMatrix(outFeatures: 2, inFeatures: 8, values: Self.exampleW)
        for form in [RSRBackend.Form.twoPart, .fused] {
            let kernel = try RSRBackend(variant: variant, k: .fixed(2), form: form).prepareKernel(w, context: .singleThreaded)
            #expect(kernel.k == 2 && kernel.indexes.count == 1)
            #expect(try kernel.apply(Self.exampleX) == [17, 22])
            #expect(try kernel.apply(Self.exampleX.map(Float.init)) == [17, 22])
            // Batch > 1 takes the transposed path.
            #expect(try kernel.apply(Self.exampleX + Self.exampleX.map { -$0 }) == [17, 22, -17, -22])
        }
    }

    // MARK: Block products

    @Test func foldEqualsEnumerationProductForEveryK() {
        var g = SeededGenerator(seed: 11)
        for k in 1...12 {
            let u = (0..<(1 << k)).map { _ in Int(g.next() % 2001) - 1000 }
            #expect(RSRReference.fold(u, k: k, radix: 2) == RSRReference.enumerationProduct(u, k: k, radix: 2), "k \(k)")
        }
        for k in 1...8 {
            var n = 1
            for _ in 0..<k { n *= 3 }
            let u = (0..<n).map { _ in Int(g.next() % 2001) - 1000 }
            #expect(RSRReference.fold(u, k: k, radix: 3) == RSRReference.enumerationProduct(u, k: k, radix: 3), "k \(k) radix 3")
        }
    }

    /// The C folds and enumeration products (portable and, where the CPU has it, AVX-512), on
    /// one vector and on batch tiles, against the Swift enumeration product. Integer-valued
    /// Floats keep the Float comparison exact.
    @Test func cBlockProductsMatchTheReference() {
        var g = SeededGenerator(seed: 12)
        let isas = RSROps.avx512 ? [0, 1] : [0]
        for isa in isas {
            for integer in [0, 1] {
                let ops = tk_rsr_select(Int32(integer), 0, Int32(isa))
                for radix in [2, 3] {
                    for k in 1...(radix == 2 ? 12 : 7) {
                        var codes = 1
                        for _ in 0..<k { codes *= radix }
                        for width in [1, 16, 48] {
                            // u[c · width + lane]
                            let u = (0..<(codes * width)).map { _ in Int(g.next() % 201) - 100 }
                            var expected = [Int](repeating: 0, count: k * width)
                            for lane in 0..<width {
                                let column = (0..<codes).map { u[$0 * width + lane] }
                                let y = RSRReference.enumerationProduct(column, k: k, radix: radix)
                                for r in 0..<k { expected[r * width + lane] = y[r] }
                            }
                            let table = RSRReference.enumerationTable(k: k, radix: radix)
                            for useFold in [true, false] {
                                let got: [Int]
                                if integer == 1 {
                                    var uu = u.map(Int32.init)
                                    var y = [Int32](repeating: 7, count: k * width)
                                    let t = table.map(Int32.init)
                                    run(ops, useFold, radix, k, codes, width, &uu, &y, t)
                                    got = y.map(Int.init)
                                } else {
                                    var uu = u.map(Float.init)
                                    var y = [Float](repeating: 7, count: k * width)
                                    let t = table.map(Float.init)
                                    run(ops, useFold, radix, k, codes, width, &uu, &y, t)
                                    got = y.map { Int($0) }
                                }
                                #expect(got == expected, "isa \(isa) int \(integer) radix \(radix) k \(k) width \(width) fold \(useFold)")
                            }
                        }
                    }
                }
            }
        }
    }

    private func run<T>(_ ops: tk_rsr_ops, _ useFold: Bool, _ radix: Int, _ k: Int, _ codes: Int, _ width: Int,
                        _ u: inout [T], _ y: inout [T], _ table: [T]) {
        u.withUnsafeMutableBytes { ub in
            y.withUnsafeMutableBytes { yb in
                table.withUnsafeBytes { tb in
                    if useFold {
                        let fold = radix == 2 ? ops.fold2! : ops.fold3!
                        fold(ub.baseAddress, Int64(k), Int64(width), yb.baseAddress, 0)
                    } else {
                        ops.enumerate!(ub.baseAddress, tb.baseAddress, Int64(codes), Int64(k), Int64(codes),
                                       Int64(width), yb.baseAddress, 0)
                    }
                }
            }
        }
    }

    /// The C segment-sum loops (batch-1 prefix sums + differences, batch-tile sums over a
    /// length order), portable and AVX-512, against the Swift segment sums of a real index.
    @Test func cSegmentSumsMatchTheReference() throws {
        var g = SeededGenerator(seed: 20)
        let inn = 1000
        let w = try TernaryMatrix.random(outFeatures: 9, inFeatures: inn, zeroFraction: 0.6, using: &g)
        let isas = RSROps.avx512 ? [0, 1] : [0]
        for digits in [RSRIndex.Digits.positive, .ternary] {
            let index = try RSRIndex(weights: w, k: 4, digits: digits)
            let x = g.int8s(count: inn)
            for t in 0..<index.blockCount {
                let codes = index.codes(ofBlock: t)
                let expected = RSRReference.segmentSums(x.map(Int.init), index: index, block: t)
                let starts = index.startsPointer(block: t)
                let perm = index.permutationPointer(block: t)
                var order = [UInt16](repeating: 0, count: codes - 1)
                tk_rsr_segment_order(starts, Int64(codes), &order)
                #expect(Set(order) == Set((1..<codes).map(UInt16.init)))
                let lengths = order.map { starts[Int($0) + 1] - starts[Int($0)] }
                #expect(lengths.map { min($0, 63) } == lengths.map { min($0, 63) }.sorted())
                for isa in isas {
                    for integer in [0, 1] {
                        let ops = tk_rsr_select(Int32(integer), 0, Int32(isa))
                        // Batch 1: prefix sums, then differences at the segment starts.
                        let skip = Int(starts[1])
                        var got = [Int](repeating: 0, count: codes)
                        if integer == 1 {
                            let xi = x.map(Int32.init)
                            var prefix = [Int32](repeating: 99, count: inn + 1)
                            var u = [Int32](repeating: 99, count: codes)
                            xi.withUnsafeBytes { xb in prefix.withUnsafeMutableBytes { pb in u.withUnsafeMutableBytes { ub in
                                ops.prefix!(xb.baseAddress, perm + skip * 2, Int64(inn - skip), pb.baseAddress! + skip * 4)
                                ops.diff!(pb.baseAddress, starts, Int64(codes), ub.baseAddress)
                            } } }
                            got = u.map(Int.init)
                        } else {
                            let xf = x.map(Float.init)
                            var prefix = [Float](repeating: 99, count: inn + 1)
                            var u = [Float](repeating: 99, count: codes)
                            xf.withUnsafeBytes { xb in prefix.withUnsafeMutableBytes { pb in u.withUnsafeMutableBytes { ub in
                                ops.prefix!(xb.baseAddress, perm + skip * 2, Int64(inn - skip), pb.baseAddress! + skip * 4)
                                ops.diff!(pb.baseAddress, starts, Int64(codes), ub.baseAddress)
                            } } }
                            got = u.map { Int($0) }
                        }
                        #expect(got == expected, "batch 1 isa \(isa) int \(integer) \(digits) block \(t)")
                        // A batch tile of 16 lanes: lane b holds x · (b + 1) − 3b.
                        let lanes = 16
                        var tileGot = [[Int]](repeating: [], count: lanes)
                        if integer == 1 {
                            var xt = [Int8](repeating: 0, count: inn * lanes)
                            for i in 0..<inn { for b in 0..<lanes { xt[i * lanes + b] = Int8(clamping: Int(x[i]) / 2 + b) } }
                            var u = [Int32](repeating: 99, count: codes * lanes)
                            xt.withUnsafeBytes { xb in u.withUnsafeMutableBytes { ub in
                                ops.segsum!(xb.baseAddress, Int64(lanes), perm, starts, order, Int64(codes - 1), Int64(lanes), ub.baseAddress)
                            } }
                            for b in 0..<lanes { tileGot[b] = (0..<codes).map { Int(u[$0 * lanes + b]) } }
                        } else {
                            var xt = [Float](repeating: 0, count: inn * lanes)
                            for i in 0..<inn { for b in 0..<lanes { xt[i * lanes + b] = Float(Int(x[i]) / 2 + b) } }
                            var u = [Float](repeating: 99, count: codes * lanes)
                            xt.withUnsafeBytes { xb in u.withUnsafeMutableBytes { ub in
                                ops.segsum!(xb.baseAddress, Int64(lanes), perm, starts, order, Int64(codes - 1), Int64(lanes), ub.baseAddress)
                            } }
                            for b in 0..<lanes { tileGot[b] = (0..<codes).map { Int(u[$0 * lanes + b]) } }
                        }
                        for b in 0..<lanes {
                            let xb = x.map { Int($0) / 2 + b }
                            #expect(tileGot[b] == RSRReference.segmentSums(xb, index: index, block: t),
                                    "tile isa \(isa) int \(integer) \(digits) block \(t) lane \(b)")
                        }
                    }
                }
            }
        }
    }

    // MARK: The index

    @Test func indexIsAStableSortByCode() throws {
        var g = SeededGenerator(seed: 13)
        let w = try TernaryMatrix.random(outFeatures: 11, inFeatures: 300, using: &g)
        for (k, digits) in [(3, RSRIndex.Digits.positive), (4, .negative), (3, .ternary), (5, .ternary)] {
            let index = try RSRIndex(weights: w, k: k, digits: digits)
            #expect(index.blockCount == (11 + k - 1) / k)
            for t in 0..<index.blockCount {
                let rows = index.rows(ofBlock: t)
                #expect(rows == min(k, 11 - t * k))
                let sigma = index.permutation(ofBlock: t)
                let starts = index.segmentStarts(ofBlock: t)
                #expect(sigma.sorted() == Array(0..<300))
                #expect(starts.first == 0 && starts.last == 300 && starts.count == index.codes(ofBlock: t) + 1)
                for c in 0..<(starts.count - 1) {
                    let segment = Array(sigma[starts[c]..<starts[c + 1]])
                    #expect(segment == segment.sorted(), "stable")
                    for j in segment {
                        var code = 0
                        for r in 0..<rows {
                            let v = w[t * k + r, j]
                            let d: Int
                            switch digits {
                            case .positive: d = v == 1 ? 1 : 0
                            case .negative: d = v == -1 ? 1 : 0
                            case .ternary: d = v == 1 ? 1 : (v == -1 ? 2 : 0)
                            }
                            code = code * index.radix + d     // first row = most significant digit
                        }
                        #expect(code == c)
                    }
                }
            }
        }
    }

    @Test func storageBytesCountsEverythingKept() throws {
        var g = SeededGenerator(seed: 14)
        let w = try TernaryMatrix.random(outFeatures: 10, inFeatures: 100, using: &g)
        let fused = try RSRBackend(variant: .rsrPlusPlus, k: .fixed(3), form: .fused).prepareKernel(w, context: .singleThreaded)
        // 4 blocks × 100 UInt16 entries + 4 × (27 + 1) UInt32 starts + the scale.
        #expect(fused.storageBytes == 4 * 100 * 2 + 4 * 28 * 4 + 4)
        let twoPart = try RSRBackend(variant: .rsrPlusPlus, k: .fixed(3), form: .twoPart).prepareKernel(w, context: .singleThreaded)
        #expect(twoPart.storageBytes == 2 * (4 * 100 * 2 + 4 * 9 * 4) + 4)
        let rsr = try RSRBackend(variant: .rsr, k: .fixed(3), form: .twoPart).prepareKernel(w, context: .singleThreaded)
        #expect(rsr.storageBytes == twoPart.storageBytes + 2 * 3 * 8 * 4)   // Float and Int32 tables
    }

    // MARK: Kernels against naive

    /// Every k from 1 to 12, both variants, both forms, binary and ternary, odd shapes around
    /// k, batches 1 to 9, both element paths.
    @Test(arguments: Array(1...12))
    func kernelsMatchNaiveForK(k: Int) throws {
        var g = SeededGenerator(seed: 100 + UInt64(k))
        let shapes = [(1, 37), (max(1, k - 1), 50), (k + 1, 33), (2 * k + 1, 1), (k, 129)]
        for (out, inn) in shapes {
            for binary in [false, true] {
                let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, zeroFraction: binary ? 0.5 : 1.0 / 3.0,
                                                 binary: binary, scale: 0.5, using: &g)
                for variant in [RSRBackend.Variant.rsr, .rsrPlusPlus] {
                    for form in [RSRBackend.Form.twoPart, .fused] {
                        let threads = (k + out) % 2 + 1
                        let kernel = try RSRBackend(variant: variant, k: .fixed(k), form: form)
                            .prepare(w, context: ComputeContext(threads: threads))
                        #expect(kernel.k == k)
                        for batch in 1...9 {
                            let x = g.int8s(count: batch * inn)
                            let label = "\(variant) \(form) k \(k) \(out)x\(inn) binary \(binary) batch \(batch)"
                            #expect(try kernel.apply(x) == referenceInt(w, x), "\(label)")
                            // Integer-valued Floats and a power-of-two scale: exact in any order.
                            let xf = g.int8s(count: batch * inn, in: -16...16)
                            let expected = try referenceInt(w, xf).map { Float($0) * 0.5 }
                            #expect(try kernel.apply(xf.map(Float.init)) == expected, "\(label) float")
                        }
                    }
                }
            }
        }
    }

    @Test(arguments: [RSRBackend.Variant.rsr, .rsrPlusPlus])
    func widePermutationsAbove65536Columns(variant: RSRBackend.Variant) throws {
        var g = SeededGenerator(seed: 15)
        let w = try TernaryMatrix.random(outFeatures: 3, inFeatures: 65537, using: &g)
        for (k, form) in [(2, RSRBackend.Form.fused), (3, .twoPart)] {
            let kernel = try RSRBackend(variant: variant, k: .fixed(k), form: form).prepareKernel(w, context: ComputeContext(threads: 2))
            #expect(kernel.indexes.allSatisfy { $0.usesWidePermutation })
            for batch in [1, 2] {
                let x = g.int8s(count: batch * 65537)
                #expect(try kernel.apply(x) == referenceInt(w, x), "k \(k) \(form) batch \(batch)")
            }
        }
    }

    @Test(arguments: [RSRBackend.Variant.rsr, .rsrPlusPlus])
    func int8ExtremesAreExact(variant: RSRBackend.Variant) throws {
        var g = SeededGenerator(seed: 16)
        let inn = 4099
        let matrices = [
            try TernaryMatrix.random(outFeatures: 7, inFeatures: inn, using: &g),
            try TernaryMatrix(outFeatures: 7, inFeatures: inn, values: [Int8](repeating: 1, count: 7 * inn)),
            try TernaryMatrix(outFeatures: 7, inFeatures: inn, values: [Int8](repeating: -1, count: 7 * inn)),
        ]
        for w in matrices {
            for form in [RSRBackend.Form.twoPart, .fused] {
                let kernel = try RSRBackend(variant: variant, k: .fixed(4), form: form).prepare(w, context: .singleThreaded)
                for value in [Int8.min, Int8.max] {
                    for batch in [1, 3] {
                        let x = [Int8](repeating: value, count: batch * inn)
                        #expect(try kernel.apply(x) == referenceInt(w, x), "\(form) x = \(value) batch \(batch)")
                    }
                }
            }
        }
    }

    /// All-zero blocks: every column has code 0, nothing is gathered, the outputs are 0.
    @Test func allZeroWeightsGiveZeros() throws {
        let w = try TernaryMatrix(outFeatures: 7, inFeatures: 40, values: [Int8](repeating: 0, count: 280))
        var g = SeededGenerator(seed: 22)
        for variant in [RSRBackend.Variant.rsr, .rsrPlusPlus] {
            for form in [RSRBackend.Form.twoPart, .fused] {
                let kernel = try RSRBackend(variant: variant, k: .fixed(3), form: form).prepare(w, context: .singleThreaded)
                for batch in [1, 3] {
                    #expect(try kernel.apply(g.int8s(count: batch * 40)) == [Int32](repeating: 0, count: batch * 7))
                    #expect(try kernel.apply(g.floats(count: batch * 40)) == [Float](repeating: 0, count: batch * 7))
                }
            }
        }
    }

    @Test func largerBatchesUseSeveralTiles() throws {
        var g = SeededGenerator(seed: 17)
        let w = try TernaryMatrix.random(outFeatures: 13, inFeatures: 200, using: &g)
        for variant in [RSRBackend.Variant.rsr, .rsrPlusPlus] {
            let kernel = try RSRBackend(variant: variant, k: .fixed(5)).prepare(w, context: ComputeContext(threads: 2))
            for batch in [16, 17, 64, 65, 130] {
                let x = g.int8s(count: batch * 200)
                #expect(try kernel.apply(x) == referenceInt(w, x), "\(variant) batch \(batch)")
            }
        }
    }

    /// A batch of 70 on a wide input: a 64-lane tile and a 16-lane one (80 padded lanes).
    @Test func wideInputWithTwoTiles() throws {
        #expect(RSROps.tileWidth(inFeatures: 9000, elementBytes: 4) == 64)
        var g = SeededGenerator(seed: 21)
        let w = try TernaryMatrix.random(outFeatures: 5, inFeatures: 9000, scale: 0.25, using: &g)
        let kernel = try RSRBackend(variant: .rsrPlusPlus, k: .fixed(3)).prepare(w, context: ComputeContext(threads: 2))
        let x = g.int8s(count: 70 * 9000, in: -16...16)
        let expected = try referenceInt(w, x)
        #expect(try kernel.apply(x) == expected)
        #expect(try kernel.apply(x.map(Float.init)) == expected.map { Float($0) * 0.25 })
    }

    // MARK: k

    @Test func kOutsideItsRangeThrows() throws {
        var g = SeededGenerator(seed: 18)
        let w = try TernaryMatrix.random(outFeatures: 4, inFeatures: 10, using: &g)
        for variant in [RSRBackend.Variant.rsr, .rsrPlusPlus] {
            for k in [0, -1, 17, 100] {
                #expect(throws: TernaryKitError.self) {
                    _ = try RSRBackend(variant: variant, k: .fixed(k)).prepare(w, context: .singleThreaded)
                }
            }
        }
        #expect(throws: TernaryKitError.self) { _ = try RSRIndex(weights: w, k: 11, digits: .ternary) }
        #expect(throws: TernaryKitError.self) { _ = try RSRIndex(weights: w, k: 0, digits: .positive) }
        // The fused form falls back to the two-part form above k = 10.
        let big = try RSRBackend(variant: .rsrPlusPlus, k: .fixed(12), form: .fused).prepareKernel(w, context: .singleThreaded)
        #expect(big.form == .twoPart && big.indexes.count == 2 && big.k == 12)
    }

    @Test func defaultAndAutoKAreValidAndExact() throws {
        var g = SeededGenerator(seed: 19)
        let w = try TernaryMatrix.random(outFeatures: 40, inFeatures: 300, using: &g)
        for variant in [RSRBackend.Variant.rsr, .rsrPlusPlus] {
            for choice in [RSRBackend.KChoice.default, .auto] {
                let kernel = try RSRBackend(variant: variant, k: choice).prepareKernel(w, context: .singleThreaded)
                let k = try #require(kernel.k)
                #expect(k >= 1 && k <= RSRIndex.maxFusedK)
                let x = g.int8s(count: 2 * 300)
                #expect(try kernel.apply(x) == referenceInt(w, x))
            }
        }
        // Tiny matrices keep radix^k below in and k at most out.
        #expect(RSRBackend.defaultK(outFeatures: 1, inFeatures: 5, variant: .rsrPlusPlus, radix: 3) == 1)
        #expect(RSRBackend.defaultK(outFeatures: 3, inFeatures: 1, variant: .rsr, radix: 2) == 1)
    }
}
