#if canImport(CDispatch)
import CDispatch
#else
import Dispatch
#endif
import TensorCore

/// `Parallel.forEachChunk` without its per-call heap allocations, for the kernels' pointer forms.
///
/// Same contract and the same ranges as `Parallel.forEachChunk` (at most `threads` contiguous,
/// disjoint ranges whose starts are multiples of `granularity`; inline on the caller's thread
/// for one range or little work). The difference: the ranges are run by libdispatch's
/// `dispatch_apply_f` with a C function and a pointer to a stack-held job, where
/// `DispatchQueue.concurrentPerform` turns its Swift closure into a heap-allocated block and
/// context on every call (measured: 4–5 allocations per product at two threads).
enum ForkJoin {
    static func forEachChunk(
        count: Int, threads: Int, granularity: Int = 1, costPerItem: Int = 1,
        minimumWork: Int = 1 << 16, _ body: (Range<Int>) -> Void
    ) {
        guard count > 0 else { return }
        let g = max(1, granularity)
        let units = (count + g - 1) / g
        let chunks = min(max(1, threads), units)
        if chunks == 1 || count.multipliedReportingOverflow(by: costPerItem).partialValue < minimumWork {
            body(0..<count)
            return
        }
        withoutActuallyEscaping(body) { body in
            let job = Job(body: body, count: count, granularity: g, units: units, chunks: chunks)
            withUnsafePointer(to: job) { pointer in
                dispatch_apply_f(chunks, nil, UnsafeMutableRawPointer(mutating: pointer)) { context, c in
                    let job = context!.assumingMemoryBound(to: Job.self)
                    let units = job.pointee.units, chunks = job.pointee.chunks, g = job.pointee.granularity
                    let lo = (units &* c / chunks) &* g
                    let hi = min(job.pointee.count, (units &* (c &+ 1) / chunks) &* g)
                    if lo < hi { job.pointee.body(lo..<hi) }
                }
            }
        }
    }

    /// What each `dispatch_apply_f` iteration reads (never writes): the body and the split.
    private struct Job {
        let body: (Range<Int>) -> Void
        let count: Int, granularity: Int, units: Int, chunks: Int
    }
}
