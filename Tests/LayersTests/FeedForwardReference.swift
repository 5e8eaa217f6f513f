import Layers

extension GatedFeedForward {
    /// The ReLU² block computed from its pieces' public calls, for comparing the block's own
    /// (fused) paths against: `down(subNorm(max(gate(x), 0)² · up(x)))`, the sub-norm skipped
    /// when there is none, and the feed-forward's threads and workspace left untouched.
    func reluSquaredReference(_ x: [Float]) throws -> [Float] {
        let gate = try gateProj(x), up = try upProj(x)
        let h = zip(gate, up).map { gv, uv -> Float in
            let r = max(gv, 0)
            return r * r * uv
        }
        return try downProj(subNorm.map { $0(h) } ?? h)
    }
}
