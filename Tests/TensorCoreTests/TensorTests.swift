import Testing
@testable import TensorCore

@Suite struct TensorTests {
    @Test func shapeAndElementAccess() throws {
        var t = try Tensor(shape: [2, 3], scalars: [0, 1, 2, 3, 4, 5])
        #expect(t.count == 6 && t.rank == 2 && t.rowCount == 2 && t.rowLength == 3)
        #expect(t[1, 2] == 5)
        t[0, 1] = 10
        #expect(t.scalars == [0, 10, 2, 3, 4, 5])
        #expect(Array(t.row(1)) == [3, 4, 5])
    }

    @Test func badShapesThrow() {
        #expect(throws: TernaryKitError.self) { try Tensor(shape: [2, 3], scalars: [1, 2]) }
        #expect(throws: TernaryKitError.self) { try Tensor(shape: [-1, 3]) }
        #expect(throws: TernaryKitError.self) { try Tensor(shape: [Int.max, 3]) }
        #expect(throws: TernaryKitError.self) { try Tensor(shape: [2, 3]).reshaped([4, 2]) }
    }

    @Test func copyOnWriteKeepsValueSemantics() throws {
        let a = try Tensor(shape: [4], scalars: [1, 2, 3, 4])
        var b = a
        b[0] = 100
        #expect(a[0] == 1)
        #expect(b[0] == 100)
        var c = a
        c.withUnsafeMutableBufferPointer { $0[3] = -1 }
        #expect(a[3] == 4 && c[3] == -1)
    }

    @Test func reshapeKeepsOrder() throws {
        let t = try Tensor(shape: [2, 3], scalars: [0, 1, 2, 3, 4, 5]).reshaped([3, 2])
        #expect(t.shape == [3, 2])
        #expect(t[2, 0] == 4)
    }

    @Test func elementWiseAndRowWiseHelpers() throws {
        let a = try Tensor(shape: [2, 2], scalars: [1, 2, 3, 4])
        let b = try Tensor(shape: [2, 2], scalars: [10, 20, 30, 40])
        #expect(try a.adding(b).scalars == [11, 22, 33, 44])
        #expect(try a.multiplying(b).scalars == [10, 40, 90, 160])
        #expect(a.scaled(by: 0.5).scalars == [0.5, 1, 1.5, 2])
        #expect(try a.multiplyingRows(by: [2, 3]).scalars == [2, 6, 6, 12])
        #expect(try a.addingToRows([1, -1]).scalars == [2, 1, 4, 3])
        var c = a
        try c.add(b)
        #expect(c.scalars == [11, 22, 33, 44])
        #expect(throws: TernaryKitError.self) { try a.adding(Tensor(shape: [4], scalars: [1, 2, 3, 4])) }
        #expect(throws: TernaryKitError.self) { try a.multiplyingRows(by: [1, 2, 3]) }
        var d = a
        d.withMutableRow(1) { $0[0] = 7 }
        #expect(d.scalars == [1, 2, 7, 4])
        #expect(d.withRow(1) { Array($0) } == [7, 4])
    }
}

@Suite struct SeededGeneratorTests {
    @Test func sameSeedSameStreamDifferentSeedDifferentStream() {
        var a = SeededGenerator(seed: 7), b = SeededGenerator(seed: 7), c = SeededGenerator(seed: 8)
        let xa = (0..<16).map { _ in a.next() }, xb = (0..<16).map { _ in b.next() }, xc = (0..<16).map { _ in c.next() }
        #expect(xa == xb)
        #expect(xa != xc)
    }

    @Test func floatsStayInRange() {
        var g = SeededGenerator(seed: 1)
        let f = g.floats(count: 10_000, magnitude: 2)
        #expect(f.allSatisfy { $0 >= -2 && $0 < 2 })
        let mean = f.reduce(0, +) / Float(f.count)
        #expect(abs(mean) < 0.1)
        let gs = g.gaussians(count: 10_001)
        #expect(gs.count == 10_001)
        let variance = gs.map { $0 * $0 }.reduce(0, +) / Float(gs.count)
        #expect(abs(variance - 1) < 0.1)
    }
}

@Suite struct ComputeAndParallelTests {
    @Test func threadCountMustBePositive() throws {
        #expect(throws: TernaryKitError.self) { try ComputeContext(threads: 0) }
        #expect(try ComputeContext(threads: 3).threads == 3)
        #expect(ComputeContext.allCores.threads >= 1)
    }

    @Test(arguments: [1, 2, 3, 7], [1, 5, 64, 1000, 100_003])
    func chunksCoverEveryIndexOnce(threads: Int, count: Int) {
        let hits = UnsafeMutableBufferPointer<Int32>.allocate(capacity: count)
        hits.initialize(repeating: 0)
        defer { hits.deallocate() }
        let p = SendablePointer(hits)
        Parallel.forEachChunk(count: count, threads: threads, granularity: 4, minimumWork: 0) { range in
            #expect(range.lowerBound % 4 == 0)
            for i in range { p.base[i] += 1 }
        }
        #expect(hits.allSatisfy { $0 == 1 })
    }
}
