import TensorCore

/// The reference backend: the plain O(out · in) loops over Int8 weights.
///
/// Every other backend is tested against this one, so it is written the obvious way. The only
/// concession to speed is that output rows are split across the context's threads.
public struct NaiveBackend: LinearBackend {
    /// The registry name; "naive" is also the reference every other backend is checked against.
    public var name: String { "naive" }
    /// The naive backend (stateless).
    public init() {}

    /// Keeps the matrix as it is (its values array is shared, not copied).
    public func prepare(_ weights: TernaryMatrix, context: ComputeContext) throws -> any LinearKernel {
        NaiveKernel(weights: weights, context: context)
    }
}

/// The naive backend's kernel: the ternary values as they are, one Int8 per weight.
public struct NaiveKernel: LinearKernel {
    /// The weight, unchanged: this kernel reads the Int8 values directly, 8 bits per weight.
    public let weights: TernaryMatrix
    /// The thread count output rows are split across.
    public let context: ComputeContext
    /// Always "naive": the name bench tables and layer summaries show.
    public var backendName: String { "naive" }
    /// Rows of the weight.
    public var outFeatures: Int { weights.outFeatures }
    /// Columns of the weight.
    public var inFeatures: Int { weights.inFeatures }
    /// The weight scale γ, applied to Float-path outputs only.
    public var scale: Float { weights.scale }
    /// One byte per weight plus the scale.
    public var storageBytes: Int { weights.unpackedBytes }

    init(weights: TernaryMatrix, context: ComputeContext) {
        self.weights = weights
        self.context = context
    }

    /// Float path: one Float dot product per output, times γ.
    public func apply(_ x: UnsafeBufferPointer<Float>, batch: Int, into y: UnsafeMutableBufferPointer<Float>) {
        checkApply(xCount: x.count, yCount: y.count, batch: batch)
        let n = inFeatures, m = outFeatures, s = scale
        let xs = SendableConstPointer(x), ys = SendablePointer(y)
        weights.values.withUnsafeBufferPointer { wb in
            let w = SendableConstPointer(wb)
            Parallel.forEachChunk(count: m, threads: context.threads, costPerItem: n * batch) { rows in
                for b in 0..<batch {
                    for o in rows {
                        var acc: Float = 0
                        for i in 0..<n { acc += Float(w.base[o &* n &+ i]) * xs.base[b &* n &+ i] }
                        ys.base[b &* m &+ o] = acc * s
                    }
                }
            }
        }
        applyNonFiniteRule(x, batch: batch, into: y)
    }

    /// Int8 path: one Int32 dot product per output.
    public func apply(_ x: UnsafeBufferPointer<Int8>, batch: Int, into y: UnsafeMutableBufferPointer<Int32>) {
        checkApply(xCount: x.count, yCount: y.count, batch: batch)
        let n = inFeatures, m = outFeatures
        let xs = SendableConstPointer(x), ys = SendablePointer(y)
        weights.values.withUnsafeBufferPointer { wb in
            let w = SendableConstPointer(wb)
            Parallel.forEachChunk(count: m, threads: context.threads, costPerItem: n * batch) { rows in
                for b in 0..<batch {
                    for o in rows {
                        var acc: Int32 = 0
                        for i in 0..<n { acc &+= Int32(w.base[o &* n &+ i]) &* Int32(xs.base[b &* n &+ i]) }
                        ys.base[b &* m &+ o] = acc
                    }
                }
            }
        }
    }
}
