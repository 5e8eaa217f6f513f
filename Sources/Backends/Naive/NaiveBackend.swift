import TensorCore

/// The reference backend: the plain O(out · in) loops over Int8 weights.
///
/// Every other backend is tested against this one, so it is written the obvious way. The only
/// concession to speed is that output rows are split across the context's threads.
public struct NaiveBackend: LinearBackend {
    public var name: String { "naive" }
    public init() {}

    public func prepare(_ weights: TernaryMatrix, context: ComputeContext) throws -> any LinearKernel {
        NaiveKernel(weights: weights, context: context)
    }
}

/// The naive backend's kernel: the ternary values as they are, one Int8 per weight.
public struct NaiveKernel: LinearKernel {
    public let weights: TernaryMatrix
    public let context: ComputeContext
    public var backendName: String { "naive" }
    public var outFeatures: Int { weights.outFeatures }
    public var inFeatures: Int { weights.inFeatures }
    public var scale: Float { weights.scale }
    public var storageBytes: Int { weights.unpackedBytes }

    init(weights: TernaryMatrix, context: ComputeContext) {
        self.weights = weights
        self.context = context
    }

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
    }

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
