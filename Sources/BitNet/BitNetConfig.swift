import Foundation
import Layers
import TensorCore

/// The shape of a BitNet b1.58 model, Codable as Hugging Face's `config.json` for
/// `model_type: "bitnet"`: one decoder, with the defaults of `transformers`, whether the JSON
/// comes from a checkpoint directory (``read(directory:)``) or from anywhere else.
///
/// `lm_head_format` and `kv_cache_capacity` are TernaryKit's own (absent from Hugging Face
/// files; they default to `float32` and `max_position_embeddings`).
public struct BitNetConfig: Codable, Sendable, Equatable {
    /// Width of the residual stream (`hidden_size`); every ternary projection reads or writes this many features.
    public var hiddenSize: Int
    /// Width of the feed-forward's gate and up projections (`intermediate_size`).
    public var intermediateSize: Int
    /// Decoder layers stacked (`num_hidden_layers`).
    public var numHiddenLayers: Int
    /// Query heads per attention layer (`num_attention_heads`); must divide ``hiddenSize``.
    public var numAttentionHeads: Int
    /// Key/value heads (`num_key_value_heads`); fewer than the query heads means grouped-query attention and a smaller KV cache. Defaults to ``numAttentionHeads`` when absent.
    public var numKeyValueHeads: Int
    /// ε of every RMSNorm (`rms_norm_eps`, default 1e-5 when absent).
    public var rmsNormEps: Float
    /// Base of the rotary frequencies (`rope_theta`, 10 000 when absent from a file; 500 000 for 2B4T).
    public var ropeTheta: Double
    /// Tokens in the vocabulary (`vocab_size`): rows of the embedding and of the LM head.
    public var vocabSize: Int
    /// The longest sequence the model supports (`max_position_embeddings`, 2048 when absent); bounds the rotary table and the KV cache.
    public var maxPositionEmbeddings: Int
    /// The token that starts a sequence (`bos_token_id`; 0 when absent from JSON decoded with
    /// `Codable`, −1 for an explicit `null` in a checkpoint config). The model does not prepend it:
    /// a prompt that needs it starts with it.
    public var bosTokenId: Int
    /// Hugging Face allows one id or a list; every listed id stops generation.
    public var eosTokenIds: [Int]
    /// True when the LM head reuses the embedding table (`tie_word_embeddings`, default true); a checkpoint then has no `lm_head.weight`.
    public var tieWordEmbeddings: Bool
    /// `model_type`, kept for round trips ("bitnet" by default).
    public var modelType: String
    /// The feed-forward activation (`hidden_act`); only "relu2" (ReLU²) is implemented, and ``validate()`` rejects others.
    public var hiddenAct: String
    /// The LM head's format (TernaryKit's own field).
    public var lmHeadFormat: LMHeadFormat
    /// Positions the KV cache holds (TernaryKit's own field; ≤ `max_position_embeddings`).
    public var kvCacheCapacity: Int?

    /// A config from explicit values; the defaults are BitNet b1.58's (ε 1e-5, θ 500 000, tied embeddings, ReLU², a `float32` LM head).
    ///
    /// Call ``validate()`` before building a model from hand-written values (`BitNetModel`'s initializer does).
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

    /// Decodes a Hugging Face `config.json` with the defaults of `transformers`' `BitNetConfig`
    /// (`configuration_bitnet.py`: e.g. `tie_word_embeddings` is **false** when absent,
    /// `rope_theta` 500000, `num_key_value_heads` 5), refusing what the layers here do not
    /// implement instead of silently computing something else: a `model_type` other than
    /// "bitnet", a missing or unsupported `quantization_config` (see
    /// ``supportedLinearClass``), `rope_scaling`, biases, a `head_dim` other than
    /// `hidden_size / num_attention_heads`, a `hidden_act` other than relu2, and sizes that do
    /// not fit together (``validate()``). TernaryKit's own fields `lm_head_format` and
    /// `kv_cache_capacity` are read when present.
    /// - Throws: `DecodingError` for a field of the wrong type; `TernaryKitError.invalidArgument`
    ///   naming an unsupported or inconsistent setting.
    public init(from decoder: any Decoder) throws {
        let file = try HuggingFaceFields(from: decoder)
        self = try file.config()
    }

    /// Encodes the Hugging Face form (the fields `transformers` reads, a `quantization_config`
    /// for packed `bitlinear` weights), so that decoding gives back the same config and other
    /// tools read it. TernaryKit's own fields are written only when set.
    public func encode(to encoder: any Encoder) throws {
        var c = encoder.container(keyedBy: HuggingFaceFields.Keys.self)
        try c.encode(["BitNetForCausalLM"], forKey: .architectures)
        try c.encode(modelType, forKey: .model_type)
        try c.encode(hiddenSize, forKey: .hidden_size)
        try c.encode(intermediateSize, forKey: .intermediate_size)
        try c.encode(numHiddenLayers, forKey: .num_hidden_layers)
        try c.encode(numAttentionHeads, forKey: .num_attention_heads)
        try c.encode(numKeyValueHeads, forKey: .num_key_value_heads)
        try c.encode(hiddenAct, forKey: .hidden_act)
        try c.encode(rmsNormEps, forKey: .rms_norm_eps)
        try c.encode(ropeTheta, forKey: .rope_theta)
        try c.encode(vocabSize, forKey: .vocab_size)
        try c.encode(maxPositionEmbeddings, forKey: .max_position_embeddings)
        if bosTokenId >= 0 { try c.encode(bosTokenId, forKey: .bos_token_id) } else { try c.encodeNil(forKey: .bos_token_id) }
        switch eosTokenIds.count {
        case 0: try c.encodeNil(forKey: .eos_token_id)
        case 1: try c.encode(eosTokenIds[0], forKey: .eos_token_id)
        default: try c.encode(eosTokenIds, forKey: .eos_token_id)
        }
        try c.encode(tieWordEmbeddings, forKey: .tie_word_embeddings)
        try c.encode(false, forKey: .attention_bias)
        try c.encode(["quant_method": "bitnet", "linear_class": Self.supportedLinearClass, "quantization_mode": "offline"],
                     forKey: .quantization_config)
        if lmHeadFormat != .float32 { try c.encode(lmHeadFormat, forKey: .lm_head_format) }
        try c.encodeIfPresent(kvCacheCapacity, forKey: .kv_cache_capacity)
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
        if let bad = eosTokenIds.first(where: { $0 < 0 || $0 >= vocabSize }) {
            throw fail("eos_token_id \(bad) is outside the vocabulary 0..<\(vocabSize)")
        }
        guard lmHeadFormat != .int4 || hiddenSize % LMHead.int4GroupSize == 0 else {
            throw fail("lm_head_format int4 needs hidden_size to be a multiple of \(LMHead.int4GroupSize)")
        }
        guard cacheCapacity > 0 else { throw fail("kv_cache_capacity must be positive") }
        guard hiddenSize <= TernaryMatrix.maxInFeatures, intermediateSize <= TernaryMatrix.maxInFeatures else {
            throw fail("widths beyond exact Int32 products")
        }
        // Sizes from a file must not overflow when multiplied together (vocab × hidden, ...).
        do { _ = try estimatedBytes() } catch let TernaryKitError.invalidShape(m) { throw fail(m) }
    }

    /// A lower bound of the bytes a model of this config holds: the Float32 embedding (and an
    /// untied LM head), one byte per ternary weight, the KV cache of ``cacheCapacity`` positions
    /// and the rotary table, computed with overflow checks.
    /// - Throws: `.invalidShape` when a product overflows `Int`.
    public func estimatedBytes() throws -> Int {
        let h = hiddenSize, v = vocabSize, kvWidth = try SizeLimits.product([numKeyValueHeads, headDimension], what: "key/value width")
        let table = try SizeLimits.product([v, h, 4], what: "vocab_size × hidden_size")
        let head = tieWordEmbeddings ? (lmHeadFormat == .float32 ? 0 : table / 4) : table
        let perLayer = try [
            SizeLimits.product([2, h, h], what: "attention projections"),
            SizeLimits.product([2, kvWidth, h], what: "key/value projections"),
            SizeLimits.product([3, intermediateSize, h], what: "feed-forward projections"),
            SizeLimits.product([2, kvWidth, cacheCapacity, 4], what: "KV cache"),
        ].reduce(0) { try SizeLimits.sum($0, $1, what: "layer bytes") }
        let layers = try SizeLimits.product([numHiddenLayers, perLayer], what: "num_hidden_layers × layer bytes")
        let rotary = try SizeLimits.product([cacheCapacity, headDimension, 4], what: "rotary table")
        return try [table, head, layers, rotary].reduce(0) { try SizeLimits.sum($0, $1, what: "model bytes") }
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
