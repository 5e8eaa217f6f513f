import Backends
import Layers
import SafeTensors
import TensorCore

extension BitNetModel {
    /// A model with random weights determined by `seed`: nothing to download, the real shapes.
    ///
    /// Each ternary projection has about a third of each value and the scale
    /// `γ ≈ 1/√(⅔·in)` (exactly `1/w` for the BF16 value `w` nearest `√(⅔·in)`, so that an
    /// exported checkpoint reloads bit-identically; a product keeps the variance of a normalized input); the embedding is
    /// uniform in ±`embeddingMagnitude`; norm gains are 1. Generation runs over all cores with a
    /// cheap generator (one 64-bit draw per 8 weights), seeded per tensor and per block of rows,
    /// so the weights do not depend on the thread count; 2B4T takes seconds.
    /// - Throws: as `init(config:backend:context:ternary:floats:)`.
    public static func random(config: BitNetConfig, seed: UInt64, backend: (any LinearBackend)? = nil,
                              context: ComputeContext = .singleThreaded, embeddingMagnitude: Float = 0.05) throws -> BitNetModel {
        let model = try BitNetModel(config: config, backend: backend, context: context)
        // The ternary parameters in tree order (q, k, v, o, gate, up, down per layer): the i-th gets seed i.
        let specs: [(key: String, out: Int, in: Int)] = model.namedParameterSpecs().compactMap { key, spec in
            guard case .ternary(let out, let inn) = spec else { return nil }
            return (key, out, inn)
        }
        let generated = UnsafeMutableBufferPointer<TernaryMatrix?>.allocate(capacity: specs.count)
        generated.initialize(repeating: nil)
        defer { generated.deinitialize(); generated.deallocate() }
        let out = SendablePointer(generated)
        let workers = max(context.threads, ComputeContext.allCores.threads)
        Parallel.forEachChunk(count: specs.count, threads: workers, costPerItem: 1 << 20) { range in
            for i in range {
                let s = specs[i]
                out.base[i] = randomTernary(outFeatures: s.out, inFeatures: s.in, seed: seed &+ UInt64(i) &* 0x9E37_79B9_7F4A_7C15)
            }
        }
        for (i, s) in specs.enumerated() {
            try model.setParameter(key: s.key, .ternary(generated[i]!))
            generated[i] = nil
        }
        let h = config.hiddenSize
        try model.setParameter(key: "model.embed_tokens.weight",
                               .floats(randomFloats(count: config.vocabSize * h, magnitude: embeddingMagnitude, seed: seed ^ 0xE5B_ED)))
        if !config.tieWordEmbeddings {
            try model.setParameter(key: "lm_head.weight",
                                   .floats(randomFloats(count: config.vocabSize * h, magnitude: embeddingMagnitude, seed: seed ^ 0x1EAD)))
        }
        try model.prepareKernels()
        return model
    }

    /// A random ternary matrix: each byte of a 64-bit draw gives one weight `byte % 3 − 1`
    /// (probabilities 86/85/85 in 256), scale `1/BF16(√(⅔·in))`.
    static func randomTernary(outFeatures: Int, inFeatures: Int, seed: UInt64) -> TernaryMatrix {
        var g = SeededGenerator(seed: seed)
        let n = outFeatures * inFeatures
        var values = [Int8](repeating: 0, count: n)
        values.withUnsafeMutableBufferPointer { v in
            var i = 0
            while i < n {
                var r = g.next()
                let stop = min(n, i + 8)
                while i < stop {
                    v[i] = Int8(truncatingIfNeeded: (r & 0xFF) % 3) &- 1
                    r >>= 8
                    i &+= 1
                }
            }
        }
        // γ = 1/w with w = BF16(√(⅔·in)): a checkpoint stores weight_scale = 1/γ (BitNetCheckpoint), and a
        // BF16 w reloads to exactly this γ, so an exported random model round-trips bit for bit.
        let w = HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits((Float(inFeatures) * 2 / 3).squareRoot()))
        // The values are in {-1, 0, 1} by construction, so this cannot throw.
        return try! TernaryMatrix(outFeatures: outFeatures, inFeatures: inFeatures, values: values, scale: 1 / w)
    }

    /// `count` uniform Floats in ±`magnitude`, generated in parallel blocks with per-block seeds.
    static func randomFloats(count: Int, magnitude: Float, seed: UInt64) -> [Float] {
        var out = [Float](repeating: 0, count: count)
        let block = 1 << 16
        let blocks = (count + block - 1) / block
        out.withUnsafeMutableBufferPointer { ob in
            let o = SendablePointer(ob)
            Parallel.forEachChunk(count: blocks, threads: ComputeContext.allCores.threads, costPerItem: block) { range in
                for b in range {
                    var g = SeededGenerator(seed: seed &+ UInt64(b) &* 0xD1B5_4A32_D192_ED03)
                    for i in (b * block)..<min(count, (b + 1) * block) {
                        o.base[i] = g.nextSignedUnitFloat() * magnitude
                    }
                }
            }
        }
        return out
    }
}
