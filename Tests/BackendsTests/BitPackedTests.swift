import Dispatch
import Testing
import Backends
import TensorCore

/// The `bitpacked` backend: every C variant this machine supports (not only the one dispatch
/// picks) against the naive reference, the packing itself, and the Int32 bounds.
@Suite struct BitPackedTests {
    static let variants = BitPackedVariant.supported

    /// Widths around every boundary of the layout: the 128-weight half group, the 256-weight
    /// group, the 64-weight fields, and the AVX2 32-byte halves.
    static let widths = [1, 3, 31, 63, 64, 65, 127, 128, 129, 200, 255, 256, 257, 300, 384, 385, 511, 512, 640, 1000]

    @Test func dispatchPicksASupportedVariant() {
        #expect(BitPackedVariant.supported.contains(.portable))
        #expect(BitPackedVariant.best.isSupported)
        #expect(BitPackedVariant.supported.last == BitPackedVariant.best)
        let features = CPUFeatures.detected
        #expect(BitPackedVariant.avx512vnni.isSupported == (features.avx512f && features.avx512bw && features.avx512vl && features.avx512vnni))
    }

    @Test func unsupportedVariantsAreRefused() throws {
        let w = try TernaryMatrix(outFeatures: 1, inFeatures: 1, values: [1])
        for v in BitPackedVariant.allCases where !v.isSupported {
            #expect(throws: TernaryKitError.self) { try BitPackedBackend(variant: v).prepare(w, context: .singleThreaded) }
        }
    }

    @Test(arguments: variants)
    func int8PathMatchesNaive(variant: BitPackedVariant) throws {
        let backend = BitPackedBackend(variant: variant)
        var g = SeededGenerator(seed: 0xB17 &+ UInt64(variant.rawValue.utf8.count))
        var shapes = oddShapes
        for n in Self.widths { shapes.append((Int.random(in: 1...11, using: &g), n)) }
        shapes += [(9, 700), (700, 9)]
        for (out, inn) in shapes {
            let zeroFraction = [0.0, 1.0 / 3.0, 0.9][Int.random(in: 0..<3, using: &g)]
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, zeroFraction: zeroFraction, using: &g)
            let kernel = try backend.prepare(w, context: ComputeContext(threads: 1 + out % 2))
            for batch in 1...9 {
                let x = g.int8s(count: batch * inn)
                let mismatch = KernelCheck.firstMismatch(try kernel.apply(x), try referenceInt(w, x), outFeatures: out)
                #expect(mismatch == nil, "\(variant) \(out)x\(inn) batch \(batch): \(mismatch ?? "")")
            }
        }
    }

    @Test(arguments: variants)
    func threadsSplitRowsWithoutChangingResults(variant: BitPackedVariant) throws {
        var g = SeededGenerator(seed: 31)
        // Large enough that Parallel.forEachChunk really uses two threads.
        let w = try TernaryMatrix.random(outFeatures: 203, inFeatures: 777, using: &g)
        let one = try BitPackedBackend(variant: variant).prepare(w, context: .singleThreaded)
        let two = try BitPackedBackend(variant: variant).prepare(w, context: ComputeContext(threads: 2))
        for batch in [1, 6] {
            let x = g.int8s(count: batch * 777)
            let reference = try referenceInt(w, x)
            #expect(try one.apply(x) == reference)
            #expect(try two.apply(x) == reference)
        }
    }

    /// A prepared kernel is immutable: concurrent calls (each with its own buffers, one of them
    /// padding x internally) give the same results as one call.
    @Test func concurrentCallsAgree() throws {
        var g = SeededGenerator(seed: 41)
        let w = try TernaryMatrix.random(outFeatures: 66, inFeatures: 300, using: &g)
        let kernel = try BitPackedBackend().prepare(w, context: ComputeContext(threads: 2))
        let x = g.int8s(count: 3 * 300)
        let expected = try referenceInt(w, x)
        let results = ResultsBox(count: 8)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            results.set(i, (try? kernel.apply(x)) ?? [])
        }
        for i in 0..<8 { #expect(results.get(i) == expected, "call \(i)") }
    }

    @Test(arguments: variants)
    func floatPathMatchesNaive(variant: BitPackedVariant) throws {
        let backend = BitPackedBackend(variant: variant)
        var g = SeededGenerator(seed: 0xF10A7)
        for (out, inn) in [(1, 1), (7, 129), (5, 300), (37, 1023), (9, 4097), (6, 128)] {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, scale: 0.37, using: &g)
            let kernel = try backend.prepare(w, context: .singleThreaded)
            for batch in [1, 2, 3, 4, 5, 9] {
                // Random floats: within the rounding tolerance of naive.
                let x = g.floats(count: batch * inn)
                let reference = try NaiveBackend().prepare(w, context: .singleThreaded).apply(x)
                let tol = KernelCheck.floatTolerances(weights: w, x: x, batch: batch)
                let mismatch = KernelCheck.firstMismatch(try kernel.apply(x), reference, tolerances: tol, outFeatures: out)
                #expect(mismatch == nil, "\(variant) \(out)x\(inn) batch \(batch): \(mismatch ?? "")")
                // Small integers and a power-of-two scale: every partial sum is exact.
                let xi = g.int8s(count: batch * inn, in: -16...16)
                let wExact = try TernaryMatrix(outFeatures: out, inFeatures: inn, values: w.values, scale: 0.25)
                let expected = try referenceInt(wExact, xi).map { Float($0) * 0.25 }
                let y = try backend.prepare(wExact, context: .singleThreaded).apply(xi.map(Float.init))
                #expect(y == expected, "\(variant) exact \(out)x\(inn) batch \(batch)")
            }
        }
    }

    /// The largest sums an Int8 product can make: all activations -128 or 127, all weights +1
    /// or -1, in = 65536 (|y| = 2^23), through every block shape of the kernels (5 rows: one
    /// 4-row block and a single row; batches 1 ... 5, 8: every token remainder).
    @Test(arguments: variants)
    func int8ExtremesAreExact(variant: BitPackedVariant) throws {
        try expectExtremesExact(inFeatures: 65536, outFeatures: 5, batches: [1, 2, 3, 4, 5, 8], "\(variant)") { w, _ in
            try BitPackedBackend(variant: variant).prepare(w, context: .singleThreaded)
        }
    }

    /// Rows longer than the AVX-512 kernel's fold interval (4096 groups = 1,048,576 weights),
    /// with a half group at the end: the scaled accumulators are folded twice. All weights ±1 in
    /// alternating runs and extreme activations, against naive.
    @Test(arguments: variants)
    func veryLongRowsAreExact(variant: BitPackedVariant) throws {
        let n = 4097 * 256 + 100, out = 2
        var g = SeededGenerator(seed: 99)
        var values = [Int8](repeating: 1, count: out * n)
        for i in 0..<values.count where (i / 1000) % 3 == 1 { values[i] = -1 }
        let w = try TernaryMatrix(outFeatures: out, inFeatures: n, values: values)
        let kernel = try BitPackedBackend(variant: variant).prepare(w, context: .singleThreaded)
        for batch in [1, 4] {
            var x = [Int8](repeating: -128, count: batch * n)
            for i in 0..<x.count where g.next() % 4 == 0 { x[i] = 127 }
            #expect(try kernel.apply(x) == referenceInt(w, x), "\(variant) batch \(batch)")
        }
        let allMin = try kernel.apply([Int8](repeating: -128, count: n))
        let rowSums = (0..<out).map { o in values[o * n ..< (o + 1) * n].reduce(Int32(0)) { $0 + Int32($1) } }
        #expect(allMin == rowSums.map { -128 * $0 }, "\(variant) all -128")
    }

    @Test func packingRoundTrips() throws {
        var g = SeededGenerator(seed: 4)
        for (out, inn) in oddShapes + Self.widths.map({ (3, $0) }) {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &g)
            let packed = PackedTernaryMatrix(w)
            #expect(packed.unpacked() == w.values, "\(out)x\(inn)")
            #expect(packed.paddingCodesAreZeroWeights(), "\(out)x\(inn)")
            #expect(packed.paddedInFeatures >= inn && packed.paddedInFeatures - inn < 256)
            #expect(packed.rowBytes * 4 == packed.paddedInFeatures)
        }
    }

    @Test func storageIsTwoBitsPerWeightPlusSmallPadding() throws {
        var g = SeededGenerator(seed: 5)
        for (out, inn) in [(8, 256), (3, 4096), (5, 2560), (2, 6912), (7, 1), (4, 129), (6, 300), (3, 385)] {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &g)
            let kernel = try BitPackedBackend().prepare(w, context: .singleThreaded)
            let exact = (inn + 3) / 4  // bytes per row at exactly 2 bits per weight
            let rowBytes = (kernel.storageBytes - 4) / out
            #expect(kernel.storageBytes == out * rowBytes + 4)
            #expect(rowBytes >= exact && rowBytes - exact < 32, "\(out)x\(inn): \(rowBytes) bytes per row")
            if inn % 256 == 0 { #expect(kernel.storageBitsPerWeight == 2 + 32 / Double(out * inn)) }
        }
    }
}

/// Results written from several threads (each index by one thread), read after they join.
private final class ResultsBox: @unchecked Sendable {
    private var values: [[Int32]]
    private let lock = SemaphoreLock()
    init(count: Int) { values = Array(repeating: [], count: count) }
    func set(_ i: Int, _ v: [Int32]) { lock.withLock { values[i] = v } }
    func get(_ i: Int) -> [Int32] { lock.withLock { values[i] } }
}

/// A minimal lock built on a Dispatch semaphore.
private struct SemaphoreLock: Sendable {
    private let semaphore = DispatchSemaphore(value: 1)
    func withLock<T>(_ body: () -> T) -> T {
        semaphore.wait()
        defer { semaphore.signal() }
        return body()
    }
}
