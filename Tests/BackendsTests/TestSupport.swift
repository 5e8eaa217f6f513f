import Testing
import Backends
import TensorCore

/// Shapes every backend is checked on: odd ones (1×1, widths not multiples of 4, 8, 64 or
/// typical k), out > in and in > out.
let oddShapes: [(out: Int, in: Int)] = [
    (1, 1), (1, 7), (7, 1), (3, 5), (5, 3), (17, 33), (33, 17), (64, 64), (65, 63), (13, 130), (130, 13),
    (100, 257), (31, 1000),
]

/// The naive backend's products, the reference.
func referenceInt(_ w: TernaryMatrix, _ x: [Int8]) throws -> [Int32] {
    try NaiveBackend().prepare(w, context: .singleThreaded).apply(x)
}

/// An independent reference for the naive backend itself: the same product written from the
/// matrix's subscript and computed in Int64.
func definitionProduct(_ w: TernaryMatrix, _ x: [Int8], batch: Int) -> [Int64] {
    var y = [Int64](repeating: 0, count: batch * w.outFeatures)
    for b in 0..<batch {
        for o in 0..<w.outFeatures {
            var s: Int64 = 0
            for i in 0..<w.inFeatures { s += Int64(w[o, i]) * Int64(x[b * w.inFeatures + i]) }
            y[b * w.outFeatures + o] = s
        }
    }
    return y
}

/// The largest sums an Int8 product can make: every weight +1 or -1 times every activation -128
/// or 127 over `n` inputs, so every output must be exactly `w · x · n`. Checks each weight sign,
/// activation extreme, thread count and batch on the kernel `prepare(weights, threads)` returns.
func expectExtremesExact(inFeatures n: Int, outFeatures out: Int, batches: [Int], threads: [Int] = [1], _ what: String = "",
                         sourceLocation: SourceLocation = #_sourceLocation,
                         prepare: (TernaryMatrix, Int) throws -> any LinearKernel) throws {
    for wv: Int8 in [1, -1] {
        let w = try TernaryMatrix(outFeatures: out, inFeatures: n, values: [Int8](repeating: wv, count: out * n))
        for t in threads {
            let kernel = try prepare(w, t)
            for xv: Int8 in [-128, 127] {
                for batch in batches {
                    let y = try kernel.apply([Int8](repeating: xv, count: batch * n))
                    #expect(y == [Int32](repeating: Int32(wv) * Int32(xv) * Int32(n), count: batch * out),
                            "\(what) w=\(wv) x=\(xv) n=\(n) batch \(batch) threads \(t)", sourceLocation: sourceLocation)
                }
            }
        }
    }
}
