#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// Per-thread scratch memory that the kernels' pointer forms reuse from call to call, so that a
/// steady-state product allocates nothing.
///
/// Every thread has its own small table of buffers, one per ``Slot``, kept in a `pthread_key`
/// and freed when the thread exits. A buffer grows (one allocation) the first time a thread
/// needs more bytes in that slot than it has, and is reused afterwards for the same or smaller
/// sizes: "after the first call with a given batch size on a given thread, no allocation".
///
/// Thread safety comes from ownership: a thread only ever touches its own table, so one
/// immutable kernel may run on several threads at once. Inside `Parallel.forEachChunk`, the
/// closure runs on `Parallel`'s worker threads (and on the caller's thread), each with
/// its own table. The slots a product holds on the caller's thread (``Slot/input``,
/// ``Slot/output``) differ from those its chunk closures use (``Slot/work0`` … ``Slot/work2``),
/// because a chunk may run inline on the caller's thread while the caller's buffers are live.
/// A buffer is valid until the same thread asks for the same slot again: callers must not
/// nest two uses of one slot.
enum ThreadScratch {
    /// Which buffer of the calling thread's table. Caller-side and chunk-side slots are disjoint.
    enum Slot: Int {
        /// Caller side: converted, padded or transposed activations.
        case input
        /// Caller side: a second per-call buffer (per-row sums, converted outputs).
        case output
        /// Chunk side: per-thread working buffers of a `Parallel.forEachChunk` closure.
        case work0, work1, work2
    }

    /// One slot's buffer: 64-byte aligned, `capacity` bytes (0 and nil until first use).
    struct Buffer {
        var pointer: UnsafeMutableRawPointer?
        var capacity: Int
    }

    static let alignment = 64
    /// The number of ``Slot`` cases (a constant: `allCases` would build an array).
    static let slotCount = 5

    /// The key of each thread's table; the destructor frees the table when the thread exits.
    private static let key: pthread_key_t = {
        var key = pthread_key_t()
        let rc = pthread_key_create(&key) { raw in
            #if canImport(Darwin)
            ThreadScratch.free(table: raw.assumingMemoryBound(to: Buffer.self))
            #else
            if let raw { ThreadScratch.free(table: raw.assumingMemoryBound(to: Buffer.self)) }
            #endif
        }
        precondition(rc == 0, "pthread_key_create failed (\(rc))")
        return key
    }()

    private static func free(table: UnsafeMutablePointer<Buffer>) {
        for s in 0..<slotCount { table[s].pointer?.deallocate() }
        table.deinitialize(count: slotCount)
        table.deallocate()
    }

    /// The calling thread's table, created (one allocation) on the thread's first use.
    @inline(__always)
    private static func table() -> UnsafeMutablePointer<Buffer> {
        if let raw = pthread_getspecific(key) { return raw.assumingMemoryBound(to: Buffer.self) }
        return makeTable()
    }

    @inline(never)
    private static func makeTable() -> UnsafeMutablePointer<Buffer> {
        let count = slotCount
        let table = UnsafeMutablePointer<Buffer>.allocate(capacity: count)
        table.initialize(repeating: Buffer(pointer: nil, capacity: 0), count: count)
        let rc = pthread_setspecific(key, table)
        precondition(rc == 0, "pthread_setspecific failed (\(rc))")
        return table
    }

    /// At least `byteCount` bytes, 64-byte aligned, owned by the calling thread until it asks
    /// for `slot` again. Contents are unspecified (not zeroed, possibly a previous call's data).
    @inline(__always)
    static func buffer(_ slot: Slot, byteCount: Int) -> UnsafeMutableRawPointer {
        let entry = table() + slot.rawValue
        if let p = entry.pointee.pointer, entry.pointee.capacity >= byteCount { return p }
        return grow(entry, byteCount: byteCount)
    }

    /// `buffer(slot, byteCount: count · stride)` bound to `T`.
    @inline(__always)
    static func buffer<T>(_ slot: Slot, of type: T.Type, count: Int) -> UnsafeMutablePointer<T> {
        buffer(slot, byteCount: count &* MemoryLayout<T>.stride).bindMemory(to: T.self, capacity: count)
    }

    /// Replaces a too-small buffer (no copy: contents are not preserved), rounded up to 4 KiB.
    @inline(never)
    private static func grow(_ entry: UnsafeMutablePointer<Buffer>, byteCount: Int) -> UnsafeMutableRawPointer {
        entry.pointee.pointer?.deallocate()
        let capacity = max(4096, (byteCount + 4095) & ~4095)
        let p = UnsafeMutableRawPointer.allocate(byteCount: capacity, alignment: alignment)
        entry.pointee = Buffer(pointer: p, capacity: capacity)
        return p
    }

    /// Bytes held by the calling thread's buffers.
    static var currentThreadBytes: Int {
        guard let raw = pthread_getspecific(key) else { return 0 }
        let table = raw.assumingMemoryBound(to: Buffer.self)
        return (0..<slotCount).reduce(0) { $0 + table[$1].capacity }
    }

    /// Frees the calling thread's buffers (the next product on this thread allocates again).
    static func releaseCurrentThread() {
        guard let raw = pthread_getspecific(key) else { return }
        let table = raw.assumingMemoryBound(to: Buffer.self)
        for s in 0..<slotCount {
            table[s].pointer?.deallocate()
            table[s] = Buffer(pointer: nil, capacity: 0)
        }
    }
}

/// The per-thread scratch memory of the backends' pointer forms (see the Backends docs,
/// "Allocation"): what the calling thread keeps between products, and a way to give it back.
public enum BackendScratch {
    /// Bytes of scratch the calling thread currently keeps (0 before its first product that
    /// needed scratch). Chunk threads of multi-threaded products keep their own.
    public static var currentThreadBytes: Int { ThreadScratch.currentThreadBytes }

    /// Frees the calling thread's scratch, e.g. after a one-off large batch; the next product on
    /// this thread that needs scratch allocates it again. Other threads' scratch is untouched.
    public static func releaseCurrentThread() { ThreadScratch.releaseCurrentThread() }
}
