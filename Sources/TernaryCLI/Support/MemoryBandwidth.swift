import Layers
import TensorCore

/// The machine's streaming read bandwidth, measured the way decoding reads weights: one pass
/// over a buffer far larger than the caches, with vector loads.
///
/// Decoding a token reads every weight once, so `bandwidth / weightBytesPerToken` is the
/// ceiling on decode tokens/s for a given format; the generate command prints both.
enum MemoryBandwidth {
    /// Bytes per second reading `bytes` (default 1 GiB) with `threads` threads: the best of
    /// three timed passes after one pass that touches the pages.
    static func streamingRead(threads: Int, bytes: Int = 1 << 30) -> Double {
        let count = bytes / MemoryLayout<Float>.size
        // On huge pages like the packed weights (`HugePages`), so the ceiling and the decode
        // speed pay the same TLB costs.
        let raw = HugePages.allocate(byteCount: count * MemoryLayout<Float>.size)
        defer { HugePages.deallocate(raw) }
        let buffer = UnsafeMutableBufferPointer(start: raw.bindMemory(to: Float.self, capacity: count), count: count)
        buffer.initialize(repeating: 1)
        let p = SendableConstPointer(UnsafeBufferPointer(buffer))
        let dot = VectorKernelVariant.best.dot
        let chunk = 1 << 16
        var best = Double.infinity
        var sink: Float = 0
        for _ in 0..<3 {
            let t0 = MonotonicClock.seconds()
            let sums = UnsafeMutableBufferPointer<Float>.allocate(capacity: (count + chunk - 1) / chunk)
            let s = SendablePointer(sums)
            Parallel.forEachChunk(count: sums.count, threads: threads, minimumWork: 0) { range in
                // dot(a, a) streams `a` once from memory (the second operand hits L1).
                for c in range {
                    let start = c * chunk
                    s.base[c] = dot(p.base + start, p.base + start, Int64(min(chunk, count - start)))
                }
            }
            best = min(best, MonotonicClock.seconds() - t0)
            sink += sums.reduce(0, +)
            sums.deallocate()
        }
        precondition(sink.isFinite)
        return Double(count * MemoryLayout<Float>.size) / best
    }
}
