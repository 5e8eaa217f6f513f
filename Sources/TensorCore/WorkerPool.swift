import CKernels
import Foundation
import Synchronization
#if canImport(Glibc)
import Glibc
#endif

/// Persistent worker threads for `Parallel`'s fork-joins: a worker that has just finished a
/// chunk polls for the next one for a short while (``spinSeconds``) before it parks, so the
/// ~200 small products of one decoded token hand work over in well under a microsecond instead
/// of waking a parked Dispatch worker each time (≈ 12 µs measured on this project's VMs).
///
/// Chunks are claimed dynamically, so a worker that is late (parked, or descheduled by another
/// process) leaves its chunk to the caller. Measured on 2B4T decode, 2 threads, side by side with
/// Dispatch: 1.43–1.71× tokens/s on a quiet machine, 0.66–0.95× when other processes kept both
/// vCPUs busy (a polling worker loses the scheduler's wake-up preference); see
/// `docs/performance/decode.md`.
///
/// One fork-join runs at a time: `Parallel` claims the pool with ``tryRun(chunks:threads:context:_:)`` and falls
/// back to `DispatchQueue.concurrentPerform` when the pool is busy (another thread's fork-join,
/// or a fork-join nested inside a chunk).
final class WorkerPool: @unchecked Sendable {
    // The fields below are written only by the thread that holds `busy`, before it publishes a
    // job through the workers' tickets (sequentially consistent stores, acquiring loads).

    /// The pool of the process.
    static let shared = WorkerPool()

    /// How long an idle worker polls before it parks: long enough to span the gaps between the
    /// products of a decode step (norms, rotary, attention), short enough to give the core back
    /// between tokens.
    /// `TERNARYKIT_WORKER_SPIN_US` overrides it (microseconds; 0 parks at once), for A/B runs.
    static let spinSeconds: Double = {
        if let v = ProcessInfo.processInfo.environment["TERNARYKIT_WORKER_SPIN_US"], let us = Double(v), us >= 0 { return us * 1e-6 }
        return 100e-6
    }()

    /// False when the environment sets `TERNARYKIT_NO_WORKER_POOL` (every fork-join then goes to
    /// Dispatch, as before the pool existed): for A/B runs with one binary.
    static let enabled = ProcessInfo.processInfo.environment["TERNARYKIT_NO_WORKER_POOL"] == nil

    /// The most workers the pool creates (chunks beyond this run on Dispatch).
    static let maximumWorkers = 63

    private final class Worker: @unchecked Sendable {
        let ticket = Atomic<Int>(0)
        let sleeping = Atomic<Bool>(false)
    }

    private let busy = Atomic<Bool>(false)
    /// The job being handed out: `generation << 16 | chunks << 8 | next chunk to claim`, so a
    /// late worker can never claim a chunk of a newer job with an older job's bounds.
    private let state = Atomic<Int>(0)
    /// Chunks of the current job that have finished.
    private let done = Atomic<Int>(0)
    private var workers: [Worker] = []
    private var generation = 0
    /// The current job: a C function and its context (`Parallel`'s stack-held chunk job), so
    /// handing a job to the workers allocates nothing.
    private var job: (run: @convention(c) (UnsafeRawPointer, Int) -> Void, context: UnsafeRawPointer)?
    private let mutex = UnsafeMutablePointer<pthread_mutex_t>.allocate(capacity: 1)
    private let condition = UnsafeMutablePointer<pthread_cond_t>.allocate(capacity: 1)

    private init() {
        pthread_mutex_init(mutex, nil)
        pthread_cond_init(condition, nil)
    }

    /// Runs `run(context, c)` for `c` in `0 ..< chunks` on `threads` threads (the caller and
    /// `threads − 1` workers) and returns when all are done. Chunks are claimed dynamically, so a
    /// worker that is slow to start (parked, or descheduled by another process on a busy machine)
    /// leaves its chunks to the others instead of stalling the join; with more chunks than threads
    /// the faster threads take more of them. Returns false without running anything when the pool
    /// is disabled or busy, or `chunks` or `threads` is out of range.
    func tryRun(chunks: Int, threads: Int, context: UnsafeRawPointer,
                _ run: @convention(c) (UnsafeRawPointer, Int) -> Void) -> Bool {
        guard WorkerPool.enabled, threads >= 2, threads <= chunks, chunks <= 255, threads - 1 <= WorkerPool.maximumWorkers,
              busy.compareExchange(expected: false, desired: true, ordering: .acquiring).exchanged else { return false }
        defer { busy.store(false, ordering: .releasing) }
        while workers.count < threads - 1 { startWorker(index: workers.count + 1) }
        do {
            job = (run, context)
            generation = (generation &+ 1) & ((1 << 40) - 1)
            done.store(0, ordering: .relaxed)
            state.store(generation << 16 | chunks << 8, ordering: .sequentiallyConsistent)
            var anyAsleep = false
            for w in 0..<(threads - 1) {
                workers[w].ticket.store(generation, ordering: .sequentiallyConsistent)
                if workers[w].sleeping.load(ordering: .sequentiallyConsistent) { anyAsleep = true }
            }
            if anyAsleep {
                pthread_mutex_lock(mutex)
                pthread_cond_broadcast(condition)
                pthread_mutex_unlock(mutex)
            }
            claim(generation: generation)
            var spins = 0
            while done.load(ordering: .acquiring) != chunks {
                spins &+= 1
                // A worker descheduled mid-chunk by another process: let it have this core.
                if spins & 1023 == 0 { sched_yield() } else { tk_cpu_relax() }
            }
            job = nil
        }
        return true
    }

    /// Claims and runs chunks of job `generation` until none is left (or that job is over).
    private func claim(generation: Int) {
        while true {
            let s = state.load(ordering: .acquiring)
            let next = s & 255, chunks = (s >> 8) & 255
            guard s >> 16 == generation, next < chunks else { return }
            if state.compareExchange(expected: s, desired: s + 1, ordering: .acquiringAndReleasing).exchanged {
                // The job cannot end (and `job` cannot change) before this chunk counts as done.
                let j = job!
                j.run(j.context, next)
                done.add(1, ordering: .releasing)
            }
        }
    }

    private func startWorker(index: Int) {
        let worker = Worker()
        workers.append(worker)
        let thread = Thread { [unowned self] in self.work(worker, index: index) }
        thread.name = "TernaryKit worker \(index)"
        thread.start()
    }

    private func work(_ worker: Worker, index: Int) {
        var seen = 0
        while true {
            var ticket = worker.ticket.load(ordering: .acquiring)
            if ticket == seen {
                let deadline = MonotonicClock.seconds() + WorkerPool.spinSeconds
                var spins = 0
                while ticket == seen {
                    spins &+= 1
                    if spins & 255 == 0 && MonotonicClock.seconds() > deadline { break }
                    tk_cpu_relax()
                    ticket = worker.ticket.load(ordering: .acquiring)
                }
            }
            if ticket == seen {
                pthread_mutex_lock(mutex)
                worker.sleeping.store(true, ordering: .sequentiallyConsistent)
                ticket = worker.ticket.load(ordering: .sequentiallyConsistent)
                while ticket == seen {
                    pthread_cond_wait(condition, mutex)
                    ticket = worker.ticket.load(ordering: .sequentiallyConsistent)
                }
                worker.sleeping.store(false, ordering: .sequentiallyConsistent)
                pthread_mutex_unlock(mutex)
            }
            seen = ticket
            claim(generation: ticket)
        }
    }
}
