import Foundation
import TensorCore

/// The shape of a BitNet b1.58 model, Codable with the field names of Hugging Face's
/// `config.json` for `model_type: "bitnet"`, so a released config decodes directly (unknown
/// fields such as `quantization_config` are ignored).
///
/// `lm_head_format` and `kv_cache_capacity` are TernaryKit's own (absent from Hugging Face
/// files; they default to `float32` and `max_position_embeddings`).
public struct BitNetConfig: Codable, Sendable, Equatable {
    public var hiddenSize: Int
    public var intermediateSize: Int
    public var numHiddenLayers: Int
    public var numAttentionHeads: Int
    public var numKeyValueHeads: Int
    public var rmsNormEps: Float
    public var ropeTheta: Double
    public var vocabSize: Int
    public var maxPositionEmbeddings: Int
    public var bosTokenId: Int
    /// Hugging Face allows one id or a list; every listed id stops generation.
    public var eosTokenIds: [Int]
    public var tieWordEmbeddings: Bool
    public var modelType: String
    public var hiddenAct: String
    /// The LM head's format (TernaryKit's own field).
    public var lmHeadFormat: LMHeadFormat
    /// Positions the KV cache holds (TernaryKit's own field; ≤ `max_position_embeddings`).
    public var kvCacheCapacity: Int?

    enum CodingKeys: String, CodingKey {
        case hiddenSize = "hidden_size"
        case intermediateSize = "intermediate_size"
        case numHiddenLayers = "num_hidden_layers"
        case numAttentionHeads = "num_attention_heads"
        case numKeyValueHeads = "num_key_value_heads"
        case rmsNormEps = "rms_norm_eps"
        case ropeTheta = "rope_theta"
        case vocabSize = "vocab_size"
        case maxPositionEmbeddings = "max_position_embeddings"
        case bosTokenId = "bos_token_id"
        case eosTokenIds = "eos_token_id"
        case tieWordEmbeddings = "tie_word_embeddings"
        case modelType = "model_type"
        case hiddenAct = "hidden_act"
        case lmHeadFormat = "lm_head_format"
        case kvCacheCapacity = "kv_cache_capacity"
    }

    public init(hiddenSize: Int, intermediateSize: Int, numHiddenLayers: Int, numAttentionHeads: Int,
                numKeyValueHeads: Int, rmsNormEps: Float = 1e-5, ropeTheta: Double = 500_000, vocabSize: Int,
                maxPositionEmbeddings: Int, bosTokenId: Int, eosTokenIds: [Int], tieWordEmbeddings: Bool = true,
                modelType: String = "bitnet", hiddenAct: String = "relu2", lmHeadFormat: LMHeadFormat = .float32,
                kvCacheCapacity: Int? = nil) {
        self.hiddenSize = hiddenSize
        self.intermediateSize = intermediateSize
        self.numHiddenLayers = numHiddenLayers
        self.numAttentionHeads = numAttentionHeads
        self.numKeyValueHeads = numKeyValueHeads
        self.rmsNormEps = rmsNormEps
        self.ropeTheta = ropeTheta
        self.vocabSize = vocabSize
        self.maxPositionEmbeddings = maxPositionEmbeddings
        self.bosTokenId = bosTokenId
        self.eosTokenIds = eosTokenIds
        self.tieWordEmbeddings = tieWordEmbeddings
        self.modelType = modelType
        self.hiddenAct = hiddenAct
        self.lmHeadFormat = lmHeadFormat
        self.kvCacheCapacity = kvCacheCapacity
    }

    public init(from decoder: any Decoder) throws {
        let c = try decoder.container(keyedBy: CodingKeys.self)
        hiddenSize = try c.decode(Int.self, forKey: .hiddenSize)
        intermediateSize = try c.decode(Int.self, forKey: .intermediateSize)
        numHiddenLayers = try c.decode(Int.self, forKey: .numHiddenLayers)
        numAttentionHeads = try c.decode(Int.self, forKey: .numAttentionHeads)
        numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .numKeyValueHeads) ?? numAttentionHeads
        rmsNormEps = try c.decodeIfPresent(Float.self, forKey: .rmsNormEps) ?? 1e-5
        ropeTheta = try c.decodeIfPresent(Double.self, forKey: .ropeTheta) ?? 10_000
        vocabSize = try c.decode(Int.self, forKey: .vocabSize)
        maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .maxPositionEmbeddings) ?? 2048
        bosTokenId = try c.decodeIfPresent(Int.self, forKey: .bosTokenId) ?? 0
        if let one = try? c.decode(Int.self, forKey: .eosTokenIds) {
            eosTokenIds = [one]
        } else {
            eosTokenIds = try c.decodeIfPresent([Int].self, forKey: .eosTokenIds) ?? []
        }
        tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tieWordEmbeddings) ?? true
        modelType = try c.decodeIfPresent(String.self, forKey: .modelType) ?? "bitnet"
        hiddenAct = try c.decodeIfPresent(String.self, forKey: .hiddenAct) ?? "relu2"
        lmHeadFormat = try c.decodeIfPresent(LMHeadFormat.self, forKey: .lmHeadFormat) ?? .float32
        kvCacheCapacity = try c.decodeIfPresent(Int.self, forKey: .kvCacheCapacity)
    }

    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: CodingKeys.self)
        try c.encode(hiddenSize, forKey: .hiddenSize)
        try c.encode(intermediateSize, forKey: .intermediateSize)
        try c.encode(numHiddenLayers, forKey: .numHiddenLayers)
        try c.encode(numAttentionHeads, forKey: .numAttentionHeads)
        try c.encode(numKeyValueHeads, forKey: .numKeyValueHeads)
        try c.encode(rmsNormEps, forKey: .rmsNormEps)
        try c.encode(ropeTheta, forKey: .ropeTheta)
        try c.encode(vocabSize, forKey: .vocabSize)
        try c.encode(maxPositionEmbeddings, forKey: .maxPositionEmbeddings)
        try c.encode(bosTokenId, forKey: .bosTokenId)
        if eosTokenIds.count == 1 { try c.encode(eosTokenIds[0], forKey: .eosTokenIds) } else { try c.encode(eosTokenIds, forKey: .eosTokenIds) }
        try c.encode(tieWordEmbeddings, forKey: .tieWordEmbeddings)
        try c.encode(modelType, forKey: .modelType)
        try c.encode(hiddenAct, forKey: .hiddenAct)
        try c.encode(lmHeadFormat, forKey: .lmHeadFormat)
        try c.encodeIfPresent(kvCacheCapacity, forKey: .kvCacheCapacity)
    }

    /// The per-head width, `hidden_size / num_attention_heads`.
    public var headDimension: Int { hiddenSize / max(numAttentionHeads, 1) }

    /// The positions the KV cache holds.
    public var cacheCapacity: Int { min(kvCacheCapacity ?? maxPositionEmbeddings, maxPositionEmbeddings) }

    /// Checks that the shapes fit together.
    /// - Throws: `.invalidArgument` naming the first inconsistency.
    public func validate() throws {
        func fail(_ m: String) -> TernaryKitError { .invalidArgument("BitNet config: \(m)") }
        guard hiddenSize > 0, intermediateSize > 0, numHiddenLayers > 0, vocabSize > 0, maxPositionEmbeddings > 0 else {
            throw fail("sizes must be positive")
        }
        guard numAttentionHeads > 0, hiddenSize % numAttentionHeads == 0 else {
            throw fail("hidden_size \(hiddenSize) is not a multiple of num_attention_heads \(numAttentionHeads)")
        }
        guard numKeyValueHeads > 0, numAttentionHeads % numKeyValueHeads == 0 else {
            throw fail("num_attention_heads \(numAttentionHeads) is not a multiple of num_key_value_heads \(numKeyValueHeads)")
        }
        guard headDimension % 2 == 0 else { throw fail("head dimension \(headDimension) must be even for rotary embeddings") }
        guard rmsNormEps >= 0, rmsNormEps.isFinite else { throw fail("rms_norm_eps \(rmsNormEps)") }
        guard ropeTheta > 0, ropeTheta.isFinite else { throw fail("rope_theta \(ropeTheta)") }
        guard hiddenAct == "relu2" else { throw fail("hidden_act '\(hiddenAct)' (only relu2 is implemented)") }
        guard lmHeadFormat != .int4 || hiddenSize % LMHead.int4GroupSize == 0 else {
            throw fail("lm_head_format int4 needs hidden_size to be a multiple of \(LMHead.int4GroupSize)")
        }
        guard cacheCapacity > 0 else { throw fail("kv_cache_capacity must be positive") }
        guard hiddenSize <= TernaryMatrix.maxInFeatures, intermediateSize <= TernaryMatrix.maxInFeatures else {
            throw fail("widths beyond exact Int32 products")
        }
    }

    /// BitNet b1.58 2B4T's shapes (microsoft/bitnet-b1.58-2B-4T).
    public static let bitnet2B4T = BitNetConfig(
        hiddenSize: 2560, intermediateSize: 6912, numHiddenLayers: 30, numAttentionHeads: 20, numKeyValueHeads: 5,
        rmsNormEps: 1e-5, ropeTheta: 500_000, vocabSize: 128_256, maxPositionEmbeddings: 4096,
        bosTokenId: 128_000, eosTokenIds: [128_001])

    /// A tiny model with the same structure (grouped-query attention included), for tests.
    public static let tiny = BitNetConfig(
        hiddenSize: 64, intermediateSize: 160, numHiddenLayers: 2, numAttentionHeads: 4, numKeyValueHeads: 2,
        rmsNormEps: 1e-5, ropeTheta: 10_000, vocabSize: 256, maxPositionEmbeddings: 128,
        bosTokenId: 1, eosTokenIds: [2])

    /// A preset by name: "2b4t" or "tiny".
    /// - Throws: `.invalidArgument` for another name.
    public static func preset(named name: String) throws -> BitNetConfig {
        switch name.lowercased() {
        case "2b4t", "bitnet-b1.58-2b-4t": return bitnet2B4T
        case "tiny": return tiny
        default: throw TernaryKitError.invalidArgument("unknown preset '\(name)'; valid: 2b4t, tiny")
        }
    }
}
