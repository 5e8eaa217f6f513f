import Backends
import Foundation
import Layers
import SafeTensors
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
/// `weight_scale` instead; `BitNetConfig.parse` refuses it.
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

    /// The suffix a projection's scale adds to its weight's name (`q_proj.weight` →
    /// `q_proj.weight_scale`), as Hugging Face's BitNet checkpoints store it.
    public static let scaleSuffix = "_scale"

    /// The tensors that hold a model's parameters in a checkpoint, in tree order: each ternary
    /// parameter `K` becomes a packed `K` plus its scale `K_scale`; each Float parameter is one
    /// floating-point tensor. The names are the module tree's keys: nothing else spells them.
    public static func expectedTensors(for model: Module) -> [TensorSpec] {
        model.namedParameterSpecs().flatMap { key, spec -> [TensorSpec] in
            switch spec {
            case .ternary(let out, let inn):
                return [TensorSpec(name: key, kind: .packed(outFeatures: out, inFeatures: inn)),
                        TensorSpec(name: key + scaleSuffix, kind: .weightScale)]
            case .floats(let shape):
                return [TensorSpec(name: key, kind: .floats(shape: shape))]
            }
        }
    }

    /// Every tensor a checkpoint with `config` holds (the names `transformers`'
    /// `BitNetForCausalLM` uses; `lm_head.weight` only when the embeddings are untied), from the
    /// tree of a model skeleton built for `config`.
    /// - Throws: `config.validate()` errors.
    public static func expectedTensors(for config: BitNetConfig) throws -> [TensorSpec] {
        try expectedTensors(for: BitNetModel(config: config))
    }

    /// The most names one error message lists.
    static let listLimit = 20

    /// The Float dtypes a low-rank correction factor may be stored as.
    static let lowRankDTypes: Set<SafeTensorsDType> = [.f32, .f16, .bf16]

    /// Gives each `BitLinear` whose checkpoint holds correction factors (`<path>.weight_lowrank_a`
    /// `[out, r]` and `<path>.weight_lowrank_b` `[r, in]`, the layer's own parameter names) a
    /// zero correction of that rank, so that the model's parameter specs then name and shape the
    /// factors and the generic key walk checks and loads them like any Float parameter.
    /// - Throws: `TernaryKitError.file(path: directory, …)` listing every projection with only
    ///   one factor, a non-float (F32 / F16 / BF16) or non-2-D factor, shapes that do not fit
    ///   the weight, or different ranks.
    static func declareCorrections(_ collection: SafeTensorsCollection, model: Module) throws {
        let all = collection.tensors
        func shapeText(_ s: [Int]) -> String { "[" + s.map(String.init).joined(separator: ", ") + "]" }
        var problems: [String] = []
        for (path, layer) in model.bitLinears() {
            let prefix = path.isEmpty ? "" : path + "."
            let nameA = prefix + BitLinear.lowRankNames.a, nameB = prefix + BitLinear.lowRankNames.b
            let a = all[nameA], b = all[nameB]
            if a == nil && b == nil { continue }
            guard let a, let b else {
                problems.append("\"\(a == nil ? nameB : nameA)\" has no partner \"\(a == nil ? nameA : nameB)\" (a low-rank correction needs both factors)")
                continue
            }
            let out = layer.outFeatures, inn = layer.inFeatures
            let found = "\"\(nameA)\" is \(a.dtype.rawValue) \(shapeText(a.shape)) and \"\(nameB)\" is \(b.dtype.rawValue) \(shapeText(b.shape))"
            guard lowRankDTypes.contains(a.dtype), lowRankDTypes.contains(b.dtype) else {
                problems.append("\(found): correction factors must be F32, F16 or BF16")
                continue
            }
            guard a.shape.count == 2, b.shape.count == 2, a.shape[0] == out, b.shape[1] == inn,
                  a.shape[1] == b.shape[0], a.shape[1] >= 1 else {
                problems.append("\(found), expected [\(out), r] and [r, \(inn)] with the same rank r ≥ 1 for the \(out)×\(inn) weight")
                continue
            }
            let r = a.shape[1]
            do {
                try layer.setCorrection(LowRankCorrection(outFeatures: out, inFeatures: inn, rank: r,
                                                          a: [Float](repeating: 0, count: out * r),
                                                          b: [Float](repeating: 0, count: r * inn)))
            } catch {
                problems.append("\"\(nameA)\": \(error)")
            }
        }
        try throwIfAny(problems, directory: collection.directory, singular: "bad low-rank correction",
                       plural: "bad low-rank corrections")
    }

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
    /// parameter key (`model.layers.0.self_attn.q_proj.weight`).
    /// - Throws: `TernaryKitError.file(path: directory, …)` listing every tensor with a packed
    ///   code of 3 or a bad weight scale.
    static func readProjections(_ collection: SafeTensorsCollection, specs: [TensorSpec], threads: Int) throws -> [String: TernaryMatrix] {
        let projections: [(key: String, out: Int, in: Int)] = specs.compactMap { s in
            guard case .packed(let out, let inn) = s.kind else { return nil }
            return (s.name, out, inn)
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
                    let scaleName = p.key + scaleSuffix
                    let ws: Float
                    do { ws = try collection.floats(scaleName)[0] } catch { throw ScaleProblem(text: "\(error)") }
                    let g = try gamma(name: scaleName, weightScale: ws).get()
                    do {
                        return try collection.file(containing: p.key)
                            .bitNetTernaryMatrix(p.key, outFeatures: p.out, inFeatures: p.in, scale: g)
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
    /// Loads a Hugging Face BitNet b1.58 checkpoint directory: `config.json` (parsed by
    /// `BitNetConfig.read(directory:)`) and `model.safetensors` or `model.safetensors.index.json` with
    /// its shards.
    ///
    /// Everything is validated before a layer is built: the tensor names (missing and
    /// unexpected ones are listed together), every dtype and shape (all mismatches listed), then
    /// every packed projection (all tensors with a code of 3 listed, with the first bad position
    /// of each). A projection `P` may carry a low-rank Float correction, `P.weight_lowrank_a`
    /// (`[out, r]`) and `P.weight_lowrank_b` (`[r, in]`, F32 / F16 / BF16), as `ternary quantize
    /// --rank` writes: the layer then computes `γ·T·x + A·(B·x)` (`BitLinear.correction`). Projections are unpacked on all cores; `γ = 1 / weight_scale` (see
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
    public static func load(checkpoint directory: String, backend: (any LinearBackend)? = nil,
                            context: ComputeContext = .singleThreaded, lmHeadFormat: LMHeadFormat = .float32,
                            kvCacheCapacity: Int? = nil) throws -> BitNetModel {
        var config = try BitNetConfig.read(directory: directory)
        config.lmHeadFormat = lmHeadFormat
        if let capacity = kvCacheCapacity {
            guard capacity > 0 else { throw TernaryKitError.invalidArgument("KV cache capacity must be positive, got \(capacity)") }
            config.kvCacheCapacity = capacity
        } else {
            config.kvCacheCapacity = min(config.maxPositionEmbeddings, 4096)
        }
        // Before any tensor is read: a config larger than this machine is refused with the number.
        do { try SizeLimits.requireFits(bytes: config.estimatedBytes(), what: "the model of \(BitNetConfig.fileName)") } catch {
            throw TernaryKitError.file(path: directory, problem: "\(error)")
        }
        let collection = try SafeTensorsCollection(directory: directory)
        let model: BitNetModel
        do { model = try BitNetModel(config: config, backend: backend, context: context) } catch {
            throw TernaryKitError.file(path: directory, problem: "\(error)")
        }
        try BitNetCheckpoint.declareCorrections(collection, model: model)
        let specs = BitNetCheckpoint.expectedTensors(for: model)
        try BitNetCheckpoint.checkTensors(collection, specs: specs, config: config)
        let matrices = try BitNetCheckpoint.readProjections(
            collection, specs: specs, threads: max(context.threads, ComputeContext.allCores.threads))
        for (key, m) in matrices { try model.setParameter(key: key, .ternary(m)) }
        for spec in specs {
            guard case .floats = spec.kind else { continue }
            try model.setParameter(key: spec.name, .floats(collection.floats(spec.name)))
        }
        if config.tieWordEmbeddings, collection.tensors["lm_head.weight"] != nil {
            let head = try collection.floats("lm_head.weight")
            let embedding = model.embedding.weight
            if let i = head.indices.first(where: { head[$0].bitPattern != embedding[$0].bitPattern }) {
                throw TernaryKitError.file(
                    path: directory,
                    problem: "tie_word_embeddings is true but \"lm_head.weight\" differs from \"model.embed_tokens.weight\" "
                        + "(first at element \(i)); set tie_word_embeddings to false to use a separate LM head")
            }
        }
        try model.prepareKernels()
        return model
    }
}
