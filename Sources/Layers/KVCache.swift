import TensorCore

/// The keys and values of one attention layer for every position seen so far, preallocated for
/// `capacity` positions so that decoding appends without allocating.
///
/// Layout: `[kvHeads][capacity][headDimension]` Float32, so each head's keys (and values) are
/// contiguous rows, read in order by the attention loops.
public final class KVCache {
    /// Key/value heads stored (the layer's, not its query heads: grouped-query attention shrinks the cache).
    public let kvHeads: Int
    /// Values per head per position.
    public let headDimension: Int
    /// The most positions the cache can hold.
    public let capacity: Int
    /// The number of positions held (the next token's position).
    public internal(set) var length = 0
    /// `[kvHeads][capacity][headDimension]` keys; positions `0 ..< length` are valid.
    public let keys: UnsafeMutableBufferPointer<Float>
    /// `[kvHeads][capacity][headDimension]` values, laid out like ``keys``.
    public let values: UnsafeMutableBufferPointer<Float>

    /// - Throws: `.invalidArgument` for non-positive sizes, sizes whose product overflows, or
    ///   keys and values larger than physical memory (checked before anything is allocated).
    public init(kvHeads: Int, headDimension: Int, capacity: Int) throws {
        guard kvHeads > 0, headDimension > 0, capacity > 0 else {
            throw TernaryKitError.invalidArgument("KV cache \(kvHeads) heads × \(headDimension) × \(capacity) positions")
        }
        let what = "KV cache of \(kvHeads) heads × \(capacity) positions × \(headDimension)"
        let n = try SizeLimits.product([kvHeads, capacity, headDimension], what: what)
        try SizeLimits.bytes(count: SizeLimits.product([n, 2], what: what), elementSize: MemoryLayout<Float>.size, what: what)
        self.kvHeads = kvHeads
        self.headDimension = headDimension
        self.capacity = capacity
        keys = .allocate(capacity: n)
        keys.initialize(repeating: 0)
        values = .allocate(capacity: n)
        values.initialize(repeating: 0)
    }

    deinit {
        keys.deallocate()
        values.deallocate()
    }

    /// Bytes held by the keys and values.
    public var bytes: Int { 2 * keys.count * MemoryLayout<Float>.size }

    /// Forgets every position (the memory stays allocated).
    public func reset() { length = 0 }

    /// Stores `count` positions of keys and values, each row `kvHeads × headDimension` as the
    /// projections produce them, at positions `length ..< length + count`.
    public func append(keys k: UnsafePointer<Float>, values v: UnsafePointer<Float>, count: Int) {
        precondition(length + count <= capacity, "KV cache overflow")
        let d = headDimension, row = kvHeads * d
        for t in 0..<count {
            for g in 0..<kvHeads {
                let dst = (g * capacity + length + t) * d
                (keys.baseAddress! + dst).update(from: k + t * row + g * d, count: d)
                (values.baseAddress! + dst).update(from: v + t * row + g * d, count: d)
            }
        }
        length += count
    }
}
