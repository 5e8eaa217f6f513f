import Testing
import Backends
import TensorCore

/// Properties every registered backend must have, checked against the naive reference.
@Suite struct AllBackendsTests {
    static let names = BackendRegistry.names

    @Test func naiveMatchesTheDefinition() throws {
        var g = SeededGenerator(seed: 1)
        for (out, inn) in oddShapes {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &g)
            for batch in [1, 3] {
                let x = g.int8s(count: batch * inn)
                let y = try referenceInt(w, x)
                #expect(y.map(Int64.init) == definitionProduct(w, x, batch: batch), "\(out)x\(inn) batch \(batch)")
            }
        }
    }

    @Test(arguments: names)
    func int8PathIsExactOnRandomShapes(name: String) throws {
        let backend = try BackendRegistry.backend(named: name)
        var g = SeededGenerator(seed: 0xB0 ^ UInt64(name.utf8.count))
        var shapes = oddShapes
        for _ in 0..<6 { shapes.append((Int.random(in: 1...300, using: &g), Int.random(in: 1...700, using: &g))) }
        for (out, inn) in shapes {
            let zeroFraction = [0.0, 1.0 / 3.0, 0.9][Int.random(in: 0..<3, using: &g)]
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, zeroFraction: zeroFraction, using: &g)
            for threads in [1, 2] {
                let kernel = try backend.prepare(w, context: ComputeContext(threads: threads))
                #expect(kernel.outFeatures == out && kernel.inFeatures == inn && kernel.storageBytes > 0)
                for batch in [1, 2, 5, 9] {
                    let x = g.int8s(count: batch * inn)
                    let y = try kernel.apply(x)
                    let mismatch = KernelCheck.firstMismatch(y, try referenceInt(w, x), outFeatures: out)
                    #expect(mismatch == nil, "\(name) \(out)x\(inn) batch \(batch) threads \(threads): \(mismatch ?? "")")
                }
            }
        }
    }

    @Test(arguments: names)
    func binaryMatricesAreExactToo(name: String) throws {
        let backend = try BackendRegistry.backend(named: name)
        var g = SeededGenerator(seed: 77)
        for (out, inn) in oddShapes {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, zeroFraction: 0.5, binary: true, using: &g)
            let kernel = try backend.prepare(w, context: .singleThreaded)
            let x = g.int8s(count: 3 * inn)
            #expect(try kernel.apply(x) == referenceInt(w, x), "\(name) binary \(out)x\(inn)")
        }
    }

    /// Integer-valued Float inputs and a power-of-two scale make every partial sum exact, so the
    /// Float path must agree exactly whatever the summation order.
    @Test(arguments: names)
    func floatPathIsExactOnIntegerValuedInput(name: String) throws {
        let backend = try BackendRegistry.backend(named: name)
        var g = SeededGenerator(seed: 5)
        for (out, inn) in oddShapes {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, scale: 0.25, using: &g)
            for batch in [1, 4] {
                let xi = g.int8s(count: batch * inn, in: -16...16)
                let x = xi.map(Float.init)
                let kernel = try backend.prepare(w, context: ComputeContext(threads: 2))
                let expected = try referenceInt(w, xi).map { Float($0) * 0.25 }
                #expect(try kernel.apply(x) == expected, "\(name) \(out)x\(inn) batch \(batch)")
            }
        }
    }

    @Test(arguments: names)
    func floatPathAgreesWithinTolerance(name: String) throws {
        let backend = try BackendRegistry.backend(named: name)
        var g = SeededGenerator(seed: 6)
        for (out, inn) in [(1, 1), (37, 1023), (200, 2048), (9, 4097)] {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, scale: 0.37, using: &g)
            let batch = 3
            let x = g.floats(count: batch * inn)
            let reference = try NaiveBackend().prepare(w, context: .singleThreaded).apply(x)
            let y = try backend.prepare(w, context: .singleThreaded).apply(x)
            let tol = KernelCheck.floatTolerances(weights: w, x: x, batch: batch)
            let mismatch = KernelCheck.firstMismatch(y, reference, tolerances: tol, outFeatures: out)
            #expect(mismatch == nil, "\(name) \(out)x\(inn): \(mismatch ?? "")")
        }
    }

    /// All activations at -128 or 127 with all weights +1 or -1: the largest sums an Int8
    /// product can make, over in = 65536.
    @Test(arguments: names)
    func int8ExtremesAreExact(name: String) throws {
        let backend = try BackendRegistry.backend(named: name)
        try expectExtremesExact(inFeatures: 65536, outFeatures: 3, batches: [2], name) { w, _ in
            try backend.prepare(w, context: .singleThreaded)
        }
    }

    @Test(arguments: names)
    func tensorConvenienceChecksShapes(name: String) throws {
        let backend = try BackendRegistry.backend(named: name)
        var g = SeededGenerator(seed: 8)
        let w = try TernaryMatrix.random(outFeatures: 4, inFeatures: 6, using: &g)
        let kernel = try backend.prepare(w, context: .singleThreaded)
        let x = try Tensor(shape: [2, 3, 6], scalars: (0..<36).map { Float($0 % 5) })
        let y = try kernel(x)
        #expect(y.shape == [2, 3, 4])
        #expect(throws: TernaryKitError.self) { try kernel(Tensor(shape: [2, 5], repeating: 1)) }
        #expect(throws: TernaryKitError.self) { try kernel.apply([Int8](repeating: 1, count: 7)) }
    }
}

@Suite struct RegistryAndLimitsTests {
    @Test func unknownBackendListsValidNames() throws {
        #expect(throws: TernaryKitError.unknownBackend(name: "fast", valid: BackendRegistry.names)) {
            try BackendRegistry.backend(named: "fast")
        }
        let message = (try? BackendRegistry.backend(named: "fast")).map { _ in "" }
            ?? "\(TernaryKitError.unknownBackend(name: "fast", valid: BackendRegistry.names))"
        #expect(message.contains("naive") && message.contains("blas") && message.contains("'fast'"))
        #expect(throws: TernaryKitError.self) { try BackendRegistry.backends(list: "naive,nope") }
        #expect(throws: TernaryKitError.self) { try BackendRegistry.backends(list: " , ") }
        #expect(try BackendRegistry.backends(list: "blas, naive").map(\.name) == ["blas", "naive"])
    }

    @Test func registryHasTheFoundationBackends() {
        #expect(BackendRegistry.names.contains("naive"))
        #expect(BackendRegistry.names.contains("blas"))
    }

    @Test func blasRefusesShapesBeyondExactFloatSums() throws {
        #expect(BLASBackend.maxExactInFeatures == 131_072)
        let ok = try TernaryMatrix(outFeatures: 1, inFeatures: 131_072, values: [Int8](repeating: 1, count: 131_072))
        let kernel = try BLASBackend().prepare(ok, context: .singleThreaded)
        #expect(try kernel.apply([Int8](repeating: -128, count: 131_072)) == [-16_777_216])
        let tooWide = try TernaryMatrix(outFeatures: 1, inFeatures: 131_073, values: [Int8](repeating: 1, count: 131_073))
        #expect(throws: TernaryKitError.self) { try BLASBackend().prepare(tooWide, context: .singleThreaded) }
    }

    @Test func storageIsReported() throws {
        var g = SeededGenerator(seed: 2)
        let w = try TernaryMatrix.random(outFeatures: 8, inFeatures: 16, using: &g)
        #expect(try NaiveBackend().prepare(w, context: .singleThreaded).storageBytes == 8 * 16 + 4)
        #expect(try BLASBackend().prepare(w, context: .singleThreaded).storageBitsPerWeight >= 32)
    }
}
