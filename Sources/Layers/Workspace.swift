/// Scratch buffers shared by the layers of one model, grown on demand and reused, so that no
/// activation is allocated per token. (What still allocates per step: the logits array a model
/// returns, and one allocation per fork-join of `Parallel` when a step runs on two or more threads.)
///
/// A model runs one layer at a time, so all its layers can share one workspace as long as each
/// slot is used by one step at a time: the slots below are chosen so that no two live uses
/// overlap (a `BitLinear` uses `quantized`, `scales` and `accumulators` only inside its own
/// call; a block's activations have their own slots).
public final class Workspace {
    /// The Float buffers, one per kind of activation, so uses that are live at the same time never share memory.
    public enum Slot: Int, CaseIterable, Sendable {
        /// One Float buffer per kind of activation a layer step keeps live at the same time as others
        /// (norm output, Q/K/V, attention output and scores, projections, feed-forward gate and up, residual, LM head input).
        case normed, query, key, value, attention, scores, projection, gate, up, residual, logitsInput
    }

    private var floatBuffers: [UnsafeMutableBufferPointer<Float>]
    private var namedBuffers: [String: UnsafeMutableBufferPointer<Float>] = [:]
    private var int8Buffer = UnsafeMutableBufferPointer<Int8>(start: nil, count: 0)
    private var int32Buffer = UnsafeMutableBufferPointer<Int32>(start: nil, count: 0)
    private var scaleBuffer = UnsafeMutableBufferPointer<Float>(start: nil, count: 0)

    /// An empty workspace; buffers are allocated on first use and then reused.
    public init() {
        floatBuffers = Array(repeating: UnsafeMutableBufferPointer(start: nil, count: 0), count: Slot.allCases.count)
    }

    deinit {
        for b in floatBuffers { b.deallocate() }
        for b in namedBuffers.values { b.deallocate() }
        int8Buffer.deallocate(); int32Buffer.deallocate(); scaleBuffer.deallocate()
    }

    private static func grow<T>(_ b: inout UnsafeMutableBufferPointer<T>, _ count: Int, _ zero: T) -> UnsafeMutableBufferPointer<T> {
        if b.count < count {
            b.deallocate()
            b = .allocate(capacity: count)
            b.initialize(repeating: zero)
        }
        return UnsafeMutableBufferPointer(rebasing: b[0..<count])
    }

    /// At least `count` Floats in `slot` (contents unspecified; valid until the next call for a
    /// larger count in the same slot).
    public func floats(_ slot: Slot, count: Int) -> UnsafeMutableBufferPointer<Float> {
        Workspace.grow(&floatBuffers[slot.rawValue], count, 0)
    }

    /// At least `count` Floats in a slot of your own, by name: scratch for blocks you write
    /// (a custom feed-forward or attention) that must not share memory with the library's slots
    /// while both are live. Same rules as ``floats(_:count:)``; one dictionary lookup per call.
    public func floats(named name: String, count: Int) -> UnsafeMutableBufferPointer<Float> {
        var b = namedBuffers[name] ?? UnsafeMutableBufferPointer(start: nil, count: 0)
        let out = Workspace.grow(&b, count, 0)
        namedBuffers[name] = b
        return out
    }

    /// Quantized activations of a `BitLinear`.
    public func quantized(count: Int) -> UnsafeMutableBufferPointer<Int8> { Workspace.grow(&int8Buffer, count, 0) }
    /// Exact integer products of a `BitLinear`.
    public func accumulators(count: Int) -> UnsafeMutableBufferPointer<Int32> { Workspace.grow(&int32Buffer, count, 0) }
    /// Per-row activation scales of a `BitLinear`.
    public func scales(count: Int) -> UnsafeMutableBufferPointer<Float> { Workspace.grow(&scaleBuffer, count, 0) }
}
