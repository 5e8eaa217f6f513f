import Foundation
import TensorCore

/// Rotary position embedding with Hugging Face Llama's convention (also BitNet's): the head is
/// split into halves, and feature `i < d/2` is rotated together with feature `i + d/2` by the
/// angle `p · θ^(-2i/d)`:
/// `out[i] = x[i]·cos − x[i+d/2]·sin`, `out[i+d/2] = x[i+d/2]·cos + x[i]·sin`
/// (`q·cos + rotate_half(q)·sin` with `rotate_half(x) = [−x₂, x₁]`), over the full head dim.
///
/// The cos/sin table is computed once for every position up to `maxPositions` (in Double,
/// rounded to Float).
public struct RotaryEmbedding: Sendable {
    /// Width of one attention head (even: features are rotated in pairs).
    public let headDimension: Int
    /// Base of the rotation frequencies (`rope_theta`); larger values rotate slowly and suit longer contexts.
    public let theta: Double
    /// Positions the table covers: the longest sequence it can rotate.
    public let maxPositions: Int
    /// `maxPositions × headDimension/2` cosines and sines.
    let cosines: [Float]
    let sines: [Float]

    /// - Throws: `.invalidArgument` for an odd or non-positive head dimension, a non-positive θ
    ///   or position count.
    public init(headDimension: Int, theta: Double, maxPositions: Int) throws {
        guard headDimension > 0, headDimension % 2 == 0 else {
            throw TernaryKitError.invalidArgument("rotary head dimension must be positive and even, got \(headDimension)")
        }
        guard theta > 0, theta.isFinite else { throw TernaryKitError.invalidArgument("rope_theta must be positive, got \(theta)") }
        guard maxPositions > 0 else { throw TernaryKitError.invalidArgument("rotary table needs positions, got \(maxPositions)") }
        let what = "rotary table of \(maxPositions) positions × \(headDimension)"
        try SizeLimits.bytes(count: SizeLimits.product([maxPositions, headDimension], what: what),
                             elementSize: MemoryLayout<Float>.size, what: what)
        self.headDimension = headDimension
        self.theta = theta
        self.maxPositions = maxPositions
        let half = headDimension / 2
        var c = [Float](repeating: 0, count: maxPositions * half)
        var s = c
        for i in 0..<half {
            let inverseFrequency = 1 / pow(theta, Double(2 * i) / Double(headDimension))
            for p in 0..<maxPositions {
                let angle = Double(p) * inverseFrequency
                c[p * half + i] = Float(cos(angle))
                s[p * half + i] = Float(sin(angle))
            }
        }
        cosines = c
        sines = s
    }

    /// Rotates `heads` consecutive heads of `headDimension` values at `x`, all at `position`.
    public func apply(_ x: UnsafeMutablePointer<Float>, heads: Int, position: Int) {
        precondition(position >= 0 && position < maxPositions, "position \(position) outside the rotary table")
        let half = headDimension / 2
        cosines.withUnsafeBufferPointer { cp in
            sines.withUnsafeBufferPointer { sp in
                let c = cp.baseAddress! + position &* half, s = sp.baseAddress! + position &* half
                for h in 0..<heads {
                    let v = x + h &* headDimension
                    for i in 0..<half {
                        let a = v[i], b = v[i &+ half]
                        v[i] = a * c[i] - b * s[i]
                        v[i &+ half] = b * c[i] + a * s[i]
                    }
                }
            }
        }
    }
}
