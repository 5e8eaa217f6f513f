/// A small, fast, deterministic random generator (xoshiro256**, seeded through SplitMix64).
///
/// Tests, benchmarks and random models use it so that a seed reproduces the same weights on
/// every machine and every run. It is not cryptographically secure.
public struct SeededGenerator: RandomNumberGenerator, Sendable {
    private var s0: UInt64, s1: UInt64, s2: UInt64, s3: UInt64

    /// Creates a generator whose whole stream is determined by `seed`.
    public init(seed: UInt64) {
        var sm = seed
        func splitMix(_ x: inout UInt64) -> UInt64 {
            x &+= 0x9E37_79B9_7F4A_7C15
            var z = x
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        s0 = splitMix(&sm); s1 = splitMix(&sm); s2 = splitMix(&sm); s3 = splitMix(&sm)
    }

    /// The next 64 random bits; the sequence depends only on the seed, so tests and benchmarks are reproducible.
    public mutating func next() -> UInt64 {
        let result = ((s1 &* 5) << 7 | (s1 &* 5) >> 57) &* 9
        let t = s1 << 17
        s2 ^= s0; s3 ^= s1; s1 ^= s2; s0 ^= s3
        s2 ^= t
        s3 = (s3 << 45) | (s3 >> 19)
        return result
    }

    /// A uniform Float in [-1, 1).
    public mutating func nextSignedUnitFloat() -> Float {
        // 24 random bits → [0, 1) exactly representable, then map to [-1, 1).
        Float(next() >> 40) * (1.0 / 8_388_608.0) - 1.0
    }

    /// `count` uniform Floats in [-magnitude, magnitude).
    public mutating func floats(count: Int, magnitude: Float = 1) -> [Float] {
        (0..<count).map { _ in nextSignedUnitFloat() * magnitude }
    }

    /// `count` uniform Int8 values in `range` (default: the full range -128...127).
    public mutating func int8s(count: Int, in range: ClosedRange<Int8> = .min ... .max) -> [Int8] {
        (0..<count).map { _ in Int8.random(in: range, using: &self) }
    }

    /// `count` normally distributed Floats (Box–Muller), for weights that look like trained ones.
    public mutating func gaussians(count: Int, standardDeviation: Float = 1) -> [Float] {
        var out = [Float]()
        out.reserveCapacity(count)
        while out.count < count {
            let u1 = max(Double(next() >> 11) * 0x1p-53, 0x1p-60)
            let u2 = Double(next() >> 11) * 0x1p-53
            let r = (-2 * _log(u1)).squareRoot()
            out.append(Float(r * _cos(2 * .pi * u2)) * standardDeviation)
            if out.count < count { out.append(Float(r * _sin(2 * .pi * u2)) * standardDeviation) }
        }
        return out
    }
}

#if canImport(Glibc)
import Glibc
@inline(__always) private func _log(_ x: Double) -> Double { Glibc.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Glibc.cos(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { Glibc.sin(x) }
#else
import Foundation
@inline(__always) private func _log(_ x: Double) -> Double { Foundation.log(x) }
@inline(__always) private func _cos(_ x: Double) -> Double { Foundation.cos(x) }
@inline(__always) private func _sin(_ x: Double) -> Double { Foundation.sin(x) }
#endif
