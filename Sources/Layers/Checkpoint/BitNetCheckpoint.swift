import Backends
import Foundation
import TensorCore

/// Hugging Face BitNet b1.58 checkpoints: the tensors a config implies, and loading a directory
/// (`config.json` + `model.safetensors`, or the sharded `model.safetensors.index.json` form)
/// into a `BitNetModel`.
///
/// ## The weight scale convention
/// Each projection `P` is stored as `P.weight` (`U8 [out/4, in]`, the four-plane packing of
/// `BitNetPacking`) and `P.weight_scale` (one value, BF16 in released checkpoints). With
/// `quantization_config.linear_class: "bitlinear"`, `transformers` computes
/// `y = (x_q · W_tᵀ) / (s · weight_scale)`: `BitLinear.forward` calls
/// `post_quant_process(y, self.weight_scale, input_scale)`, which returns
/// `input / (input_scale * weight_scale)` (`src/transformers/integrations/bitnet.py`, class
/// `BitLinear`, functions `forward` and `post_quant_process`). So the stored value is `1/γ`, and
/// the loader sets `γ = 1 / weight_scale` (`BitNetPacking.gamma(fromWeightScale:)`); the layer
/// here multiplies by γ. `AutoBitLinear` (`linear_class: "autobitlinear"`) multiplies by
/// `weight_scale` instead; `BitNetCheckpointConfig.parse` refuses it.
public enum BitNetCheckpoint {
    /// What one tensor of a checkpoint must be.
    public enum Kind: Sendable, Equatable {
        /// A projection weight: `U8 [out/4, in]` packed ternary values.
        case packed(outFeatures: Int, inFeatures: Int)
        /// A projection's `weight_scale`: one floating-point value, shape `[1]`.
        case weightScale
        /// Embedding, norm or untied LM head weights: floating point with this shape.
        case floats(shape: [Int])
    }

    /// One expected tensor: its checkpoint name and kind.
    public struct TensorSpec: Sendable, Equatable {
        /// The full safetensors name, e.g. `model.layers.0.mlp.up_proj.weight_scale`.
        public var name: String
        /// The dtype family and shape the loader requires.
        public var kind: Kind
    }

    /// Every tensor a checkpoint with `config` holds, in model order (the names `transformers`'
    /// `BitNetForCausalLM` uses; `lm_head.weight` only when the embeddings are untied).
    /// - Throws: `.invalidShape` when a size product overflows.
    public static func expectedTensors(for config: BitNetConfig) throws -> [TensorSpec] {
        let h = config.hiddenSize, inter = config.intermediateSize
        let kv = config.numKeyValueHeads * config.headDimension
        var specs: [TensorSpec] = []
        func float(_ name: String, _ shape: [Int]) { specs.append(TensorSpec(name: name, kind: .floats(shape: shape))) }
        func projection(_ key: String, _ out: Int, _ inn: Int) {
            specs.append(TensorSpec(name: key + ".weight", kind: .packed(outFeatures: out, inFeatures: inn)))
            specs.append(TensorSpec(name: key + ".weight_scale", kind: .weightScale))
        }
        guard !config.vocabSize.multipliedReportingOverflow(by: h).overflow else {
            throw TernaryKitError.invalidShape("vocab_size \(config.vocabSize) × hidden_size \(h) overflows")
        }
        float("model.embed_tokens.weight", [config.vocabSize, h])
        for i in 0..<config.numHiddenLayers {
            let p = "model.layers.\(i)"
            float("\(p).input_layernorm.weight", [h])
            projection("\(p).self_attn.q_proj", h, h)
            projection("\(p).self_attn.k_proj", kv, h)
            projection("\(p).self_attn.v_proj", kv, h)
            projection("\(p).self_attn.o_proj", h, h)
            float("\(p).self_attn.attn_sub_norm.weight", [h])
            float("\(p).post_attention_layernorm.weight", [h])
            projection("\(p).mlp.gate_proj", inter, h)
            projection("\(p).mlp.up_proj", inter, h)
            projection("\(p).mlp.down_proj", h, inter)
            float("\(p).mlp.ffn_sub_norm.weight", [inter])
        }
        float("model.norm.weight", [h])
        if !config.tieWordEmbeddings { float("lm_head.weight", [config.vocabSize, h]) }
        return specs
    }

    /// The most names one error message lists.
    static let listLimit = 20

    /// Checks that `tensors` hold exactly what `specs` need: names (missing and unexpected, both
    /// listed), dtypes and shapes (every mismatch listed). A tied model may also carry an
    /// `lm_head.weight` of the embedding's shape (checked for equality by the loader).
    /// - Throws: `TernaryKitError.file(path: directory, …)` listing every problem.
    static func checkTensors(_ collection: SafeTensorsCollection, specs: [TensorSpec], config: BitNetConfig) throws {
        var names = specs.map(\.name)
        let tiedHead = config.tieWordEmbeddings && collection.tensors["lm_head.weight"] != nil
        if tiedHead { names.append("lm_head.weight") }
        try collection.nameCheck(expected: names).check(path: collection.directory)
        var problems: [String] = []
        let all = collection.tensors
        func shapeText(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
        var checked = specs
        if tiedHead { checked.append(TensorSpec(name: "lm_head.weight", kind: .floats(shape: [config.vocabSize, config.hiddenSize]))) }
        for spec in checked {
            let info = all[spec.name]!
            let found = "\(info.dtype.rawValue) \(shapeText(info.shape))"
            switch spec.kind {
            case .packed(let out, let inn):
                let expected: [Int]
                do { expected = try BitNetPacking.packedShape(outFeatures: out, inFeatures: inn, name: spec.name) } catch {
                    problems.append("\"\(spec.name)\": \(error)")
                    continue
                }
                if info.dtype != .u8 || info.shape != expected {
                    problems.append("\"\(spec.name)\" is \(found), expected U8 \(shapeText(expected)) (packed \(out)×\(inn) ternary weight)")
                }
            case .weightScale:
                if !info.dtype.isFloatingPoint || info.shape != [1] {
                    problems.append("\"\(spec.name)\" is \(found), expected one floating-point value of shape [1]")
                }
            case .floats(let shape):
                if !info.dtype.isFloatingPoint || info.shape != shape {
                    problems.append("\"\(spec.name)\" is \(found), expected a floating-point tensor of shape \(shapeText(shape))")
                }
            }
        }
        try throwIfAny(problems, directory: collection.directory, singular: "tensor with the wrong dtype or shape",
                       plural: "tensors with the wrong dtype or shape")
    }

    /// Throws one `TernaryKitError.file` listing up to `listLimit` problems ("3 bad projections: …; …").
    static func throwIfAny(_ problems: [String], directory: String, singular: String, plural: String) throws {
        guard !problems.isEmpty else { return }
        let shown = problems.prefix(listLimit).joined(separator: "; ")
        throw TernaryKitError.file(
            path: directory,
            problem: "\(problems.count) \(problems.count == 1 ? singular : plural): \(shown)"
                + (problems.count > listLimit ? "; and \(problems.count - listLimit) more" : ""))
    }

    /// γ for a stored `weight_scale` value (see the type's documentation for the convention), or
    /// the problem when the value is not positive and finite or its reciprocal overflows.
    static func gamma(name: String, weightScale ws: Float) -> Result<Float, ScaleProblem> {
        guard ws.isFinite, ws > 0 else { return .failure(ScaleProblem(text: "\"\(name)\" = \(ws) is not a positive finite weight scale")) }
        let g = BitNetPacking.gamma(fromWeightScale: ws)
        guard g.isFinite else { return .failure(ScaleProblem(text: "\"\(name)\" = \(ws) has no finite reciprocal")) }
        return .success(g)
    }

    struct ScaleProblem: Error { var text: String }

    /// Reads every projection (unpacked in parallel over `threads` threads) and returns them by
    /// module key (`model.layers.0.self_attn.q_proj`).
    /// - Throws: `TernaryKitError.file(path: directory, …)` listing every tensor with a packed
    ///   code of 3 or a bad weight scale.
    static func readProjections(_ collection: SafeTensorsCollection, specs: [TensorSpec], threads: Int) throws -> [String: TernaryMatrix] {
        let projections: [(key: String, out: Int, in: Int)] = specs.compactMap { s in
            guard case .packed(let out, let inn) = s.kind else { return nil }
            return (String(s.name.dropLast(".weight".count)), out, inn)
        }
        let results = UnsafeMutableBufferPointer<Result<TernaryMatrix, ScaleProblem>?>.allocate(capacity: projections.count)
        results.initialize(repeating: nil)
        defer { results.deinitialize(); results.deallocate() }
        let out = SendablePointer(results)
        let work = projections.reduce(0) { $0 + $1.out * $1.in }
        Parallel.forEachChunk(count: projections.count, threads: threads, costPerItem: max(1, work / max(1, projections.count))) { range in
            for i in range {
                let p = projections[i]
                out.base[i] = Result { () throws(ScaleProblem) -> TernaryMatrix in
                    let scaleName = p.key + ".weight_scale"
                    let ws: Float
                    do { ws = try collection.floats(scaleName)[0] } catch { throw ScaleProblem(text: "\(error)") }
                    let g = try gamma(name: scaleName, weightScale: ws).get()
                    do {
                        return try collection.file(containing: p.key + ".weight")
                            .bitNetTernaryMatrix(p.key + ".weight", outFeatures: p.out, inFeatures: p.in, scale: g)
                    } catch let error as TernaryKitError {
                        // The file-level error names the file; keep only the problem.
                        if case .file(_, let problem) = error { throw ScaleProblem(text: problem) }
                        throw ScaleProblem(text: "\(error)")
                    } catch {
                        throw ScaleProblem(text: "\(error)")
                    }
                }
            }
        }
        var matrices: [String: TernaryMatrix] = [:]
        var problems: [String] = []
        for (i, p) in projections.enumerated() {
            switch results[i]! {
            case .success(let m): matrices[p.key] = m
            case .failure(let e): problems.append(e.text)
            }
        }
        try throwIfAny(problems, directory: collection.directory, singular: "bad projection", plural: "bad projections")
        return matrices
    }
}

extension BitNetModel {
    /// Loads a Hugging Face BitNet b1.58 checkpoint directory: `config.json` (see
    /// `BitNetCheckpointConfig`) and `model.safetensors` or `model.safetensors.index.json` with
    /// its shards.
    ///
    /// Everything is validated before a layer is built: the tensor names (missing and
    /// unexpected ones are listed together), every dtype and shape (all mismatches listed), then
    /// every packed projection (all tensors with a code of 3 listed, with the first bad position
    /// of each). Projections are unpacked on all cores; `γ = 1 / weight_scale` (see
    /// `BitNetCheckpoint`); BF16 / F16 / F32 embedding and norm weights become Float32 exactly.
    ///
    /// - Parameters:
    ///   - directory: the checkpoint directory (`config.json` and the safetensors file or shards).
    ///   - backend: the backend every ternary projection is prepared with.
    ///   - context: the thread count of the kernels and the element-wise work.
    ///   - lmHeadFormat: the LM head's format (float32 reproduces the reference exactly).
    ///   - kvCacheCapacity: positions the KV cache holds; nil: `min(max_position_embeddings, 4096)`,
    ///     so a config with a huge context does not allocate a huge cache by default.
    /// - Throws: `TernaryKitError.file` naming the directory or file and every problem found;
    ///   the backend's `prepare` errors.
    public static func load(checkpoint directory: String, backend: any LinearBackend = NaiveBackend(),
                            context: ComputeContext = .singleThreaded, lmHeadFormat: LMHeadFormat = .float32,
                            kvCacheCapacity: Int? = nil) throws -> BitNetModel {
        var config = try BitNetCheckpointConfig.read(directory: directory)
        config.lmHeadFormat = lmHeadFormat
        if let capacity = kvCacheCapacity {
            guard capacity > 0 else { throw TernaryKitError.invalidArgument("KV cache capacity must be positive, got \(capacity)") }
            config.kvCacheCapacity = capacity
        } else {
            config.kvCacheCapacity = min(config.maxPositionEmbeddings, 4096)
        }
        let collection = try SafeTensorsCollection(directory: directory)
        let specs: [BitNetCheckpoint.TensorSpec]
        do { specs = try BitNetCheckpoint.expectedTensors(for: config) } catch {
            throw TernaryKitError.file(path: directory, problem: "\(error)")
        }
        try BitNetCheckpoint.checkTensors(collection, specs: specs, config: config)
        var matrices = try BitNetCheckpoint.readProjections(
            collection, specs: specs, threads: max(context.threads, ComputeContext.allCores.threads))
        let embedding = try collection.floats("model.embed_tokens.weight")
        if config.tieWordEmbeddings, collection.tensors["lm_head.weight"] != nil {
            let head = try collection.floats("lm_head.weight")
            if let i = head.indices.first(where: { head[$0].bitPattern != embedding[$0].bitPattern }) {
                throw TernaryKitError.file(
                    path: directory,
                    problem: "tie_word_embeddings is true but \"lm_head.weight\" differs from \"model.embed_tokens.weight\" "
                        + "(first at element \(i)); set tie_word_embeddings to false to use a separate LM head")
            }
        }
        return try BitNetModel(
            config: config, backend: backend, context: context,
            ternary: { key, _, _ in
                guard let m = matrices.removeValue(forKey: key) else {
                    throw TernaryKitError.file(path: directory, problem: "no projection \"\(key).weight\"")
                }
                return m
            },
            floats: { key, _ in
                key == "model.embed_tokens" ? embedding : try collection.floats(key + ".weight")
            })
    }
}
