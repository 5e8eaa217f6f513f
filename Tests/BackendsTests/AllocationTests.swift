import Dispatch
import Synchronization
import Testing
import Backends
import TensorCore

/// The pointer forms allocate nothing in steady state: after warm-up calls (which may grow the
/// per-thread scratch of the calling thread and of the worker threads), repeated products make
/// no heap allocation, counted by `MallocCounter` (every `malloc`-family call of the calling
/// thread: other suites run concurrently in this process and allocate on their own threads).
/// At one thread all of a product runs on the caller; at two, the worker threads' share is
/// measured by the malloc-counter benchmark in `Benchmarks/` instead.
///
/// A case passes when one of several windows of calls stayed within the bound; a backend that
/// allocates per call never does.
///
/// Exception, at two threads when a product is split: `Parallel`'s fork-join makes 1 allocation
/// per call (Swift's `withoutActuallyEscaping` conversion of the body), and OpenBLAS's threaded
/// `sgemm` 1; those cases are held to that bound (`perCallBound`), which still catches any
/// allocation per block or row.
@Suite(.serialized) struct AllocationTests {
    /// The tests that count allocations; AddressSanitizer replaces the malloc family, so they are
    /// skipped under `swift test --sanitize=address` (the others still run).
    static let counting = Testing.ConditionTrait.enabled(if: !MallocCounter.underAddressSanitizer,
                                                         "AddressSanitizer replaces the malloc family; counting needs glibc's")

    static let names = BackendRegistry.names

    /// Shapes: `in` a multiple of 256 (bitpacked reads `x` in place) and not (it pads a copy).
    static let shapes: [(out: Int, in: Int)] = [(256, 1024), (260, 1000)]

    @Test(counting) func theCounterSeesAllocations() {
        #expect(MallocCounter.isActive, "the interposed malloc is not the process's: these tests would prove nothing")
    }

    @Test(counting, arguments: names, [1, 2])
    func steadyStateInt8ProductsDoNotAllocate(name: String, threads: Int) throws {
        try #require(MallocCounter.isActive)
        let backend = try BackendRegistry.backend(named: name)
        var g = SeededGenerator(seed: 0xA110C)
        for (out, inn) in Self.shapes {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &g)
            let kernel = try backend.prepare(w, context: ComputeContext(threads: threads))
            for batch in [1, 5, 64] {
                let x = UnsafeMutableBufferPointer<Int8>.allocate(capacity: batch * inn)
                let y = UnsafeMutableBufferPointer<Int32>.allocate(capacity: batch * out)
                defer { x.deallocate(); y.deallocate() }
                for i in x.indices { x[i] = Int8.random(in: -128...127, using: &g) }
                let fewest = Self.fewestAllocations(within: Self.perCallBound(threads: threads) * 10) {
                    kernel.apply(UnsafeBufferPointer(x), batch: batch, into: y)
                }
                #expect(fewest <= Self.perCallBound(threads: threads) * 10, "\(name) Int8 \(out)x\(inn) batch \(batch) threads \(threads): \(fewest) allocations in every window")
                // Still the right answer after all those reuses of the scratch.
                let reference = try referenceInt(w, Array(x))
                #expect(Array(y) == reference, "\(name) \(out)x\(inn) batch \(batch) threads \(threads)")
            }
        }
    }

    @Test(counting, arguments: names, [1, 2])
    func steadyStateFloatProductsDoNotAllocate(name: String, threads: Int) throws {
        try #require(MallocCounter.isActive)
        let backend = try BackendRegistry.backend(named: name)
        var g = SeededGenerator(seed: 0xF10A7)
        for (out, inn) in Self.shapes {
            let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &g)
            let kernel = try backend.prepare(w, context: ComputeContext(threads: threads))
            for batch in [1, 5, 64] {
                let x = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * inn)
                let y = UnsafeMutableBufferPointer<Float>.allocate(capacity: batch * out)
                defer { x.deallocate(); y.deallocate() }
                for i in x.indices { x[i] = Float.random(in: -1...1, using: &g) }
                let fewest = Self.fewestAllocations(within: Self.perCallBound(threads: threads) * 10) {
                    kernel.apply(UnsafeBufferPointer(x), batch: batch, into: y)
                }
                #expect(fewest <= Self.perCallBound(threads: threads) * 10, "\(name) Float \(out)x\(inn) batch \(batch) threads \(threads): \(fewest) allocations in every window")
            }
        }
    }

    /// Scratch is per thread: one kernel called from several threads at once (each also running
    /// its own chunks on worker threads) still matches the reference.
    @Test(arguments: names)
    func concurrentCallersOfOneKernelAgree(name: String) throws {
        let backend = try BackendRegistry.backend(named: name)
        var g = SeededGenerator(seed: 0xC0C0)
        let (out, inn) = (130, 1000)
        let w = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &g)
        let kernel = try backend.prepare(w, context: ComputeContext(threads: 2))
        let batches = [1, 3, 17, 64, 1, 9, 33, 2]
        let inputs = batches.map { g.int8s(count: $0 * inn) }
        let expected = try inputs.map { try referenceInt(w, $0) }
        let wrong = Atomic<Int>(0)  // bit c: case c gave a wrong product
        DispatchQueue.concurrentPerform(iterations: batches.count * 4) { i in
            let c = i % batches.count
            let y = try? kernel.apply(inputs[c])
            if y != expected[c] { wrong.bitwiseOr(1 << c, ordering: .relaxed) }
        }
        #expect(wrong.load(ordering: .relaxed) == 0, "\(name): wrong products (case bits \(wrong.load(ordering: .relaxed)))")
    }

    /// The calling thread's scratch is kept between products and given back on request.
    @Test(counting) func scratchIsKeptAndReleased() throws {
        var g = SeededGenerator(seed: 5)
        let w = try TernaryMatrix.random(outFeatures: 64, inFeatures: 300, using: &g)
        let kernel = try BackendRegistry.backend(named: "rsr++").prepare(w, context: .singleThreaded)
        let x = g.int8s(count: 8 * 300)
        // Swift Testing may move this test between threads only at suspension points: none here.
        BackendScratch.releaseCurrentThread()
        #expect(BackendScratch.currentThreadBytes == 0)
        _ = try kernel.apply(x)
        let kept = BackendScratch.currentThreadBytes
        #expect(kept >= 300 * 16)
        _ = try kernel.apply(x)
        #expect(BackendScratch.currentThreadBytes == kept)
        BackendScratch.releaseCurrentThread()
        #expect(BackendScratch.currentThreadBytes == 0)
    }

    /// Allocations per steady-state call allowed: none on one thread; at two threads, the 1 of
    /// `Parallel`'s fork-join plus the 1 of OpenBLAS's threaded `sgemm`.
    static func perCallBound(threads: Int) -> Int { threads == 1 ? 0 : 2 }

    /// Warm-up, then the fewest allocations seen in a window of 10 calls, over up to 40 windows
    /// (stops at the first window within `bound`, so a passing case costs one window). Worker
    /// threads that join later warm up in the first windows.
    static func fewestAllocations(within bound: Int, _ call: () -> Void) -> Int {
        for _ in 0..<3 { call() }
        var fewest = Int.max
        for _ in 0..<40 {
            fewest = min(fewest, MallocCounter.allocations { for _ in 0..<10 { call() } })
            if fewest <= bound { break }
        }
        return fewest
    }
}
