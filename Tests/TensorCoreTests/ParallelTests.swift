import Dispatch
import Synchronization
import Testing
@testable import TensorCore

/// `Parallel` on the worker pool: every item exactly once, distinct chunk indices, nested and
/// concurrent fork-joins (which fall back to Dispatch) included.
@Suite struct ParallelTests {
    /// Runs a fork-join over `count` items and checks the coverage and the chunk indices.
    static func check(count: Int, threads: Int, granularity: Int = 1, nested: Bool = false) -> Bool {
        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
        hits.initialize(repeating: 0)
        defer { hits.deallocate() }
        let chunks = Parallel.maximumChunks(count: count, threads: threads, granularity: granularity)
        let seen = UnsafeMutableBufferPointer<Int>.allocate(capacity: chunks)
        seen.initialize(repeating: 0)
        defer { seen.deallocate() }
        let h = SendablePointer(hits), s = SendablePointer(seen)
        Parallel.forEachIndexedChunk(count: count, threads: threads, granularity: granularity, minimumWork: 0) { chunk, range in
            s.base[chunk] += 1
            for i in range { h.base[i] += 1 }
            if nested { _ = check(count: 64, threads: 2) }
        }
        return hits.allSatisfy { $0 == 1 } && seen.allSatisfy { $0 <= 1 }
    }

    @Test func everyItemOnceAcrossThreadCounts() {
        for threads in [1, 2, 3, 4, 8] {
            for count in [1, 2, 5, 64, 1000, 4099] {
                for _ in 0..<20 { #expect(ParallelTests.check(count: count, threads: threads, granularity: count % 3 + 1)) }
            }
        }
    }

    /// `chunksPerThread`: every item exactly once, ranges that start on the granularity, no more
    /// than `threads · chunksPerThread` of them, and more than `threads` when there is room.
    @Test func severalChunksPerThreadCoverEveryItemOnce() {
        for threads in [1, 2, 3] {
            for perThread in [1, 2, 4, 300] {
                for count in [1, 7, 64, 1000, 4099] {
                    for granularity in [1, 4, 12] {
                        let hits = UnsafeMutableBufferPointer<Int>.allocate(capacity: count)
                        hits.initialize(repeating: 0)
                        defer { hits.deallocate() }
                        let ranges = Mutex<[Range<Int>]>([])
                        let h = SendablePointer(hits)
                        Parallel.forEachChunk(count: count, threads: threads, granularity: granularity, minimumWork: 0,
                                              chunksPerThread: perThread) { range in
                            ranges.withLock { $0.append(range) }
                            for i in range { h.base[i] += 1 }
                        }
                        let all = ranges.withLock { $0 }
                        let units = (count + granularity - 1) / granularity
                        let expected = threads == 1 || units == 1 ? 1 : min(min(threads, units) * perThread, units, 255)
                        #expect(hits.allSatisfy { $0 == 1 }, "threads \(threads) × \(perThread), count \(count)")
                        #expect(all.allSatisfy { $0.lowerBound % granularity == 0 })
                        #expect(all.count == expected, "threads \(threads) × \(perThread), count \(count), g \(granularity)")
                    }
                }
            }
        }
    }

    @Test func nestedAndConcurrentForkJoinsComplete() {
        let failures = Atomic<Int>(0)
        DispatchQueue.concurrentPerform(iterations: 8) { i in
            for _ in 0..<200 {
                if !ParallelTests.check(count: 500 + i, threads: 2 + i % 3, nested: i % 2 == 0) { failures.add(1, ordering: .relaxed) }
            }
        }
        #expect(failures.load(ordering: .relaxed) == 0)
    }
}
