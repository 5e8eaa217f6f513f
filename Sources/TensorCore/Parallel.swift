#if canImport(CDispatch)
import CDispatch
#else
import Dispatch
#endif

/// A pointer wrapped so that it can be captured by the closures of `Parallel.forEachChunk`.
/// The caller guarantees that concurrent users touch disjoint elements.
public struct SendablePointer<Pointee>: @unchecked Sendable {
    /// The wrapped pointer, to use inside the closure (offset by the chunk's range).
    public let base: UnsafeMutablePointer<Pointee>
    /// Wraps a pointer whose memory outlives the `Parallel.forEachChunk` call.
    @inlinable public init(_ base: UnsafeMutablePointer<Pointee>) { self.base = base }
    /// Wraps the base address of a non-empty buffer.
    @inlinable public init(_ buffer: UnsafeMutableBufferPointer<Pointee>) { self.base = buffer.baseAddress! }
}

/// A read-only pointer that may cross into `Parallel.forEachChunk` closures.
public struct SendableConstPointer<Pointee>: @unchecked Sendable {
    /// The wrapped pointer, to read inside the closure.
    public let base: UnsafePointer<Pointee>
    /// Wraps a pointer whose memory outlives the `Parallel.forEachChunk` call.
    @inlinable public init(_ base: UnsafePointer<Pointee>) { self.base = base }
    /// Wraps the base address of a non-empty buffer.
    @inlinable public init(_ buffer: UnsafeBufferPointer<Pointee>) { self.base = buffer.baseAddress! }
}

/// Fork-join over disjoint ranges: on TensorCore's persistent worker pool (workers poll briefly
/// between fork-joins, then park), or with libdispatch's `dispatch_apply_f` when the pool is
/// already running another fork-join (nested or concurrent calls).
public enum Parallel {
    /// Splits `0..<count` into at most `threads` contiguous, disjoint, near-equal ranges whose
    /// starts are multiples of `granularity`, and calls `body` once per range, concurrently.
    ///
    /// Runs inline on the caller's thread when `threads == 1`, when there is a single range, or
    /// when `count · costPerItem < minimumWork` (a second thread costs more than it saves on
    /// small products; measured below roughly 256×256 weights for a GEMV).
    ///
    /// With `chunksPerThread > 1` the work is cut into up to `threads · chunksPerThread` ranges
    /// that the threads claim as they finish, so a thread that starts late or runs slower (another
    /// process on its core, a later wake-up) takes fewer of them instead of keeping the others
    /// waiting at the join. Use it for long, evenly divisible loops such as the rows of a large
    /// product; each range must cost the same whichever thread runs it.
    public static func forEachChunk(
        count: Int, threads: Int, granularity: Int = 1, costPerItem: Int = 1,
        minimumWork: Int = 1 << 16, chunksPerThread: Int = 1, _ body: (Range<Int>) -> Void
    ) {
        run(count: count, threads: threads, granularity: granularity, costPerItem: costPerItem,
            minimumWork: minimumWork, chunksPerThread: max(1, chunksPerThread)) { _, range in body(range) }
    }

    /// The number of ranges ``forEachIndexedChunk(count:threads:granularity:costPerItem:minimumWork:_:)``
    /// uses at most: scratch sized for this many chunks is enough.
    public static func maximumChunks(count: Int, threads: Int, granularity: Int = 1) -> Int {
        let g = max(1, granularity)
        return max(1, min(max(1, threads), (count + g - 1) / g))
    }

    /// ``forEachChunk(count:threads:granularity:costPerItem:minimumWork:chunksPerThread:_:)`` with
    /// one range per thread that also passes each range's chunk index (`0 ..< maximumChunks(...)`),
    /// so a caller can give every concurrent chunk its own slice of preallocated scratch instead of
    /// allocating inside.
    public static func forEachIndexedChunk(
        count: Int, threads: Int, granularity: Int = 1, costPerItem: Int = 1,
        minimumWork: Int = 1 << 16, _ body: (_ chunk: Int, _ range: Range<Int>) -> Void
    ) {
        run(count: count, threads: threads, granularity: granularity, costPerItem: costPerItem,
            minimumWork: minimumWork, chunksPerThread: 1, body)
    }

    /// The split and the fork-join: up to `threads · chunksPerThread` ranges (each a multiple of
    /// `granularity` but the last) on up to `threads` threads.
    private static func run(
        count: Int, threads: Int, granularity: Int, costPerItem: Int, minimumWork: Int, chunksPerThread: Int,
        _ body: (_ chunk: Int, _ range: Range<Int>) -> Void
    ) {
        guard count > 0 else { return }
        let g = max(1, granularity)
        let units = (count + g - 1) / g
        let threadCount = min(max(1, threads), units)
        if threadCount == 1 || count.multipliedReportingOverflow(by: costPerItem).partialValue < minimumWork {
            body(0, 0..<count)
            return
        }
        // The pool packs a job's chunk count into 8 bits.
        let chunks = min(threadCount &* chunksPerThread, units, 255)
        withoutActuallyEscaping(body) { body in
            // The job lives on this stack frame and is reached through a pointer by a C function,
            // so handing it to the pool (or to libdispatch) allocates nothing.
            var job = ChunkJob(body: body, count: count, granularity: g, units: units, chunks: chunks)
            withUnsafeMutablePointer(to: &job) { pointer in
                let context = UnsafeRawPointer(pointer)
                if WorkerPool.shared.tryRun(chunks: chunks, threads: threadCount, context: context, ChunkJob.run) { return }
                dispatch_apply_f(chunks, nil, UnsafeMutableRawPointer(pointer)) { context, c in ChunkJob.run(context!, c) }
            }
        }
    }
}

/// One fork-join of `Parallel.forEachIndexedChunk`: the body and the split, read (never written)
/// by every chunk.
private struct ChunkJob {
    let body: (Int, Range<Int>) -> Void
    let count: Int, granularity: Int, units: Int, chunks: Int

    /// Runs chunk `c` of the job at `context`.
    static let run: @convention(c) (UnsafeRawPointer, Int) -> Void = { context, c in
        let job = context.assumingMemoryBound(to: ChunkJob.self)
        let units = job.pointee.units, chunks = job.pointee.chunks, g = job.pointee.granularity
        let lo = (units &* c / chunks) &* g
        let hi = min(job.pointee.count, (units &* (c &+ 1) / chunks) &* g)
        if lo < hi { job.pointee.body(c, lo..<hi) }
    }
}
