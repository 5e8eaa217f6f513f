import TensorCore

/// The RSR and RSR++ backends (arXiv 2411.06360): products through an index of the weight's
/// repeated column patterns instead of the weights themselves.
///
/// Per block of `k` output rows, the activations of the columns that share a code are summed
/// once (segment sums, over the `RSRIndex` permutation), and the block's `k` outputs are then
/// combined from those `radix^k` sums:
/// - `.rsr`: the paper's dense enumeration product, `O(k · radix^k)` per block;
/// - `.rsrPlusPlus`: the fold, `O(radix^k)` per block (RSR++).
///
/// Ternary weights are indexed either in the paper's **two-part** form (`B⁺ − B⁻`, two radix-2
/// indexes) or in the **fused** form (one radix-3 index: one sort and one pass of segment sums
/// for both signs, half the gathered columns at the same k). A binary {0, 1} matrix keeps one
/// radix-2 index in either form.
public struct RSRBackend: LinearBackend {
    /// Which block product follows the segment sums.
    public enum Variant: Sendable, Equatable {
        /// The dense `(radix^k × k)` enumeration product (RSR).
        case rsr
        /// The `O(radix^k)` fold (RSR++).
        case rsrPlusPlus
    }

    /// How the block height is chosen.
    public enum KChoice: Sendable, Equatable {
        /// This k (1…16; 1…10 in the fused form, see `Form`).
        case fixed(Int)
        /// The measured rule of `RSRBackend.defaultK` (docs/performance/rsr.md).
        case `default`
        /// Time candidate k on the actual matrix at `prepare` and keep the fastest (batch 1,
        /// Int8 path, at most about `RSRBackend.autoBudgetSeconds` of timing plus index builds).
        case auto
    }

    /// How a ternary matrix is indexed.
    public enum Form: Sendable, Equatable {
        /// The paper's method: two radix-2 indexes, `B⁺ = [W = +1]` and `B⁻ = [W = −1]`.
        case twoPart
        /// One radix-3 index. Used for `k ≤ RSRIndex.maxFusedK`; above that the kernel falls back
        /// to `.twoPart` (3^k segment starts per block would outweigh the matrix).
        case fused
    }

    /// The block product: enumeration (RSR) or fold (RSR++).
    public let variant: Variant
    /// How `prepare` picks the block height.
    public let kChoice: KChoice
    /// The index form of ternary matrices (binary ones always keep one radix-2 index).
    public let form: Form

    /// Seconds of timing `.auto` may spend on products (index builds come on top).
    public static let autoBudgetSeconds = 0.25

    /// "rsr" or "rsr++", whatever the k and form: the registry holds the defaults under these names.
    public var name: String { variant == .rsr ? "rsr" : "rsr++" }

    /// A backend; `k` is validated by `prepare` (which throws `.invalidArgument` outside 1…16).
    public init(variant: Variant, k: KChoice = .default, form: Form = .fused) {
        self.variant = variant
        kChoice = k
        self.form = form
    }

    /// The RSR backend (enumeration product) with its defaults.
    public static var rsr: RSRBackend { RSRBackend(variant: .rsr) }
    /// The RSR++ backend (fold) with its defaults.
    public static var rsrPlusPlus: RSRBackend { RSRBackend(variant: .rsrPlusPlus) }

    /// The same backend with another k choice.
    public func with(k: KChoice) -> RSRBackend { RSRBackend(variant: variant, k: k, form: form) }

    /// The default block height: the largest k with `radix^k ≤ in / c`, where c was measured on
    /// this project's machine (2-core Xeon, AVX-512; docs/performance/rsr.md has the sweeps):
    /// c = 5 for RSR++ and 10 for RSR with the fused radix-3 index, 8 and 32 with radix-2
    /// indexes (two-part form, binary matrices).
    ///
    /// Why that shape: a block costs about `in` gathered activations (≈ 0.45 cycles each with
    /// AVX-512 gathers) plus `radix^k` segment-start reads and fold steps (RSR++) or `k·radix^k`
    /// enumeration steps (RSR), and serves k rows. Growing k pays while `radix^k` stays a small
    /// fraction of `in`; RSR's costlier block product stops it earlier. These are batch-1
    /// optima; at batch 64 the best k is about one lower (the tile-wide block product costs
    /// more relative to the segment sums), within ≈ 15% of these.
    public static func defaultK(outFeatures: Int, inFeatures: Int, variant: Variant, radix: Int) -> Int {
        let c: Int
        switch (radix, variant) {
        case (3, .rsrPlusPlus): c = 5
        case (3, .rsr): c = 10
        case (_, .rsrPlusPlus): c = 8
        case (_, .rsr): c = 32
        }
        let limit = radix == 3 ? RSRIndex.maxFusedK : RSRIndex.maxK
        var k = 1
        var codes = radix
        while k < limit && codes * radix <= inFeatures / c {
            k += 1
            codes *= radix
        }
        return max(1, min(k, outFeatures))
    }

    /// Builds the index (or, for `.auto`, several and keeps the fastest).
    /// - Throws: `.invalidArgument` for a fixed k outside 1…16.
    public func prepare(_ weights: TernaryMatrix, context: ComputeContext) throws -> any LinearKernel {
        try prepareKernel(weights, context: context)
    }

    /// `prepare` with the concrete kernel type.
    /// - Throws: `.invalidArgument` for a fixed k outside 1…16.
    public func prepareKernel(_ weights: TernaryMatrix, context: ComputeContext) throws -> RSRKernel {
        switch kChoice {
        case .fixed(let k):
            guard k >= 1 && k <= RSRIndex.maxK else {
                throw TernaryKitError.invalidArgument("RSR block height k = \(k) is outside 1…\(RSRIndex.maxK)")
            }
            return try RSRKernel(weights: weights, k: k, variant: variant, form: form, context: context)
        case .default:
            let k = RSRBackend.defaultK(outFeatures: weights.outFeatures, inFeatures: weights.inFeatures,
                                        variant: variant, radix: radix(for: weights))
            return try RSRKernel(weights: weights, k: k, variant: variant, form: form, context: context)
        case .auto:
            return try autoTuned(weights, context: context)
        }
    }

    /// The radix this backend's index will have for `weights`.
    func radix(for weights: TernaryMatrix) -> Int { weights.isBinary || form == .twoPart ? 2 : 3 }

    /// Times the default k and its neighbours on `weights` (batch 1, Int8 path) and keeps the
    /// fastest kernel. Candidates are tried outwards from the default while time remains.
    private func autoTuned(_ weights: TernaryMatrix, context: ComputeContext) throws -> RSRKernel {
        let radix = self.radix(for: weights)
        let base = RSRBackend.defaultK(outFeatures: weights.outFeatures, inFeatures: weights.inFeatures,
                                       variant: variant, radix: radix)
        let limit = radix == 3 ? RSRIndex.maxFusedK : RSRIndex.maxK
        var candidates = [base]
        for d in 1...3 {
            if base + d <= min(limit, max(1, weights.outFeatures)) { candidates.append(base + d) }
            if base - d >= 1 { candidates.append(base - d) }
        }
        var rng = SeededGenerator(seed: 0x5EED)
        let x = rng.int8s(count: weights.inFeatures)
        var y = [Int32](repeating: 0, count: weights.outFeatures)
        let start = MonotonicClock.seconds()
        var best: (kernel: RSRKernel, seconds: Double)?
        for k in candidates {
            if best != nil && MonotonicClock.seconds() - start > RSRBackend.autoBudgetSeconds { break }
            let kernel = try RSRKernel(weights: weights, k: k, variant: variant, form: form, context: context)
            var fastest = Double.infinity
            x.withUnsafeBufferPointer { xp in
                y.withUnsafeMutableBufferPointer { yp in
                    kernel.apply(xp, batch: 1, into: yp)      // warm-up
                    let t0 = MonotonicClock.seconds()
                    for _ in 0..<7 {
                        let a = MonotonicClock.seconds()
                        kernel.apply(xp, batch: 1, into: yp)
                        fastest = min(fastest, MonotonicClock.seconds() - a)
                        if MonotonicClock.seconds() - t0 > RSRBackend.autoBudgetSeconds / Double(candidates.count) { break }
                    }
                }
            }
            if best == nil || fastest < best!.seconds { best = (kernel, fastest) }
        }
        return best!.kernel
    }
}
