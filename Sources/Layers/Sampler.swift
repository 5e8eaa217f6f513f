import Foundation
import TensorCore

/// Picks the next token from logits: greedy (temperature 0), or sampling from
/// `softmax(logits / temperature)` restricted to the `topK` most likely tokens and then to the
/// smallest set whose probability reaches `topP` (nucleus), with a seeded generator so a seed
/// reproduces a generation.
public struct Sampler: Sendable {
    /// 0 means greedy (argmax, lowest id on ties).
    public let temperature: Float
    /// Keep only the `topK` most likely tokens; nil or 0 keeps all.
    public let topK: Int?
    /// Keep the smallest most-likely set with total probability ≥ `topP`; nil or 1 keeps all.
    public let topP: Float?
    private var generator: SeededGenerator

    /// - Throws: `.invalidArgument` for a negative or non-finite temperature, a negative top-k,
    ///   or a top-p outside (0, 1].
    public init(temperature: Float = 0, topK: Int? = nil, topP: Float? = nil, seed: UInt64 = 0) throws {
        guard temperature >= 0, temperature.isFinite else {
            throw TernaryKitError.invalidArgument("temperature must be a finite number ≥ 0, got \(temperature)")
        }
        if let k = topK, k < 0 { throw TernaryKitError.invalidArgument("top-k must be ≥ 0, got \(k)") }
        if let p = topP, !(p > 0 && p <= 1) { throw TernaryKitError.invalidArgument("top-p must be in (0, 1], got \(p)") }
        self.temperature = temperature
        self.topK = topK
        self.topP = topP
        generator = SeededGenerator(seed: seed)
    }

    /// The index of the largest logit (the first one on ties; NaN never wins).
    public static func argmax(_ logits: UnsafeBufferPointer<Float>) -> Int {
        var best = 0
        var bestValue = -Float.infinity
        for (i, v) in logits.enumerated() where v > bestValue {
            best = i
            bestValue = v
        }
        return best
    }

    /// The next token for `logits` (one row of `vocab_size` values).
    public mutating func next(_ logits: [Float]) -> Int {
        logits.withUnsafeBufferPointer { next($0) }
    }

    /// The next token for `logits`.
    public mutating func next(_ logits: UnsafeBufferPointer<Float>) -> Int {
        if temperature == 0 || topK == 1 { return Sampler.argmax(logits) }
        let maxLogit = logits[Sampler.argmax(logits)]
        var candidates: [(id: Int, p: Float)]
        if let k = topK, k > 0, k < logits.count {
            // Partial selection of the k largest, then sort those.
            var all = logits.enumerated().map { (id: $0.offset, p: $0.element) }
            all.sort { $0.p > $1.p || ($0.p == $1.p && $0.id < $1.id) }
            candidates = Array(all.prefix(k))
        } else {
            candidates = logits.enumerated().map { (id: $0.offset, p: $0.element) }
        }
        var total: Float = 0
        for i in candidates.indices {
            let e = expf((candidates[i].p - maxLogit) / temperature)
            candidates[i].p = e.isFinite ? e : 0
            total += candidates[i].p
        }
        guard total > 0 else { return Sampler.argmax(logits) }
        for i in candidates.indices { candidates[i].p /= total }
        if let p = topP, p < 1 { candidates = Sampler.nucleus(candidates, p) }
        var mass: Float = 0
        for c in candidates { mass += c.p }
        let u = Float(generator.next() >> 40) * 0x1p-24 * mass
        var acc: Float = 0
        for c in candidates {
            acc += c.p
            if u < acc { return c.id }
        }
        return candidates.last!.id
    }

    /// The smallest most-probable subset with total ≥ `p`, in descending probability.
    ///
    /// Sorting all 128256 probabilities per token would cost milliseconds, so candidates above
    /// a threshold `max · 2^-s` are taken first (s = 4, 8, 16, …): once they reach `p`, the
    /// nucleus lies within them, because every other token is less likely than each of them.
    static func nucleus(_ c: [(id: Int, p: Float)], _ p: Float) -> [(id: Int, p: Float)] {
        let top = c.reduce(Float(0)) { max($0, $1.p) }
        var shift: Float = 4
        while true {
            let threshold = shift > 126 ? 0 : top * Float(sign: .plus, exponent: -Int(shift), significand: 1)
            var chosen = c.filter { $0.p >= threshold }
            let sum = chosen.reduce(Float(0)) { $0 + $1.p }
            if sum >= p || threshold == 0 {
                chosen.sort { $0.p > $1.p || ($0.p == $1.p && $0.id < $1.id) }
                var acc: Float = 0
                var n = 0
                while n < chosen.count {
                    acc += chosen[n].p
                    n += 1
                    if acc >= p { break }
                }
                return Array(chosen.prefix(max(n, 1)))
            }
            shift *= 2
        }
    }
}
