import Foundation
import Layers
import SafeTensors
import TensorCore

/// Reading and writing `config.json` in a checkpoint directory, and the fields it holds.
extension BitNetConfig {
    /// The file name inside a checkpoint directory.
    public static let fileName = "config.json"
    /// The `quantization_config` values `transformers` accepts and what TernaryKit does with them.
    ///
    /// Source: `BitNetQuantConfig` (`src/transformers/utils/quantization_config.py`) and
    /// `replace_with_bitnet_linear` (`src/transformers/integrations/bitnet.py`): `linear_class`
    /// "bitlinear" (the default) builds `BitLinear`, which stores `U8 [out/4, in]` packed weights
    /// and DIVIDES by `weight_scale` (`post_quant_process`: `y / (input_scale · weight_scale)`);
    /// "autobitlinear" builds `AutoBitLinear`, which MULTIPLIES by `weight_scale`
    /// (`output * self.weight_scale`) and may quantize online: refused here.
    public static let supportedLinearClass = "bitlinear"

    /// Reads and parses `directory/config.json`.
    /// - Throws: `TernaryKitError.file` naming `config.json` and the problem (missing file, bad
    ///   JSON, wrong field type, unsupported setting, inconsistent sizes).
    public static func read(directory: String) throws -> BitNetConfig {
        let path = (directory as NSString).appendingPathComponent(fileName)
        // stat before opening: errors name what a path is, and a FIFO is never opened.
        let directoryKind = try FileKind.of(directory)
        guard directoryKind != .absent else {
            throw TernaryKitError.file(path: directory, problem: "no such checkpoint directory")
        }
        guard directoryKind == .directory else {
            throw TernaryKitError.file(path: directory, problem: "\(directoryKind.phrase), not a directory (a checkpoint is a directory with \(fileName) and model.safetensors)")
        }
        let fileKind = try FileKind.of(path)
        guard fileKind != .absent else {
            throw TernaryKitError.file(path: directory, problem: "no \(fileName) in the checkpoint directory")
        }
        guard fileKind == .regular else {
            throw TernaryKitError.file(path: path, problem: "\(fileKind.phrase), expected a JSON file")
        }
        // Real configs are a few kilobytes: a huge file is refused before it is read.
        _ = try FileKind.regularFileSize(path, expected: "a JSON file", limit: 16 << 20)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw TernaryKitError.file(path: path, problem: "cannot read: \(error.localizedDescription)")
        }
        return try parse(data, path: path)
    }

    /// Parses the text of a Hugging Face BitNet `config.json`.
    ///
    /// The result has TernaryKit's own fields at their defaults (`lmHeadFormat` float32,
    /// `kvCacheCapacity` nil); a loader sets them.
    /// - Throws: `TernaryKitError.file(path:problem:)` for invalid JSON, a field of the wrong type,
    ///   `model_type` other than "bitnet", a missing or unsupported `quantization_config`
    ///   (`linear_class` other than "bitlinear", `use_rms_norm`, projections in
    ///   `modules_to_not_convert`), settings the layers do not implement (`rope_scaling`,
    ///   biases, a `head_dim` other than `hidden_size / num_attention_heads`, `hidden_act` other
    ///   than relu2) and sizes that do not fit together (`BitNetConfig.validate`).
    public static func parse(_ data: Data, path: String = BitNetConfig.fileName) throws -> BitNetConfig {
        // Messages may quote the file's text (a model_type, a decoder's excerpt): escaped here.
        func fail(_ problem: String) -> TernaryKitError { .file(path: path, problem: problem.escapedForTerminal) }
        do {
            return try JSONDecoder().decode(BitNetConfig.self, from: data)
        } catch let error as DecodingError {
            throw fail(describe(error, data: data))
        } catch let error as TernaryKitError {
            if case .invalidArgument(let m) = error { throw fail(m.replacingOccurrences(of: "BitNet config: ", with: "")) }
            throw fail("\(error)")
        } catch {
            throw fail("not a valid config: \(error)")
        }
    }

    /// The `config.json` text for `config`, in the Hugging Face form (the fields
    /// `transformers`' `BitNetConfig` reads, `quantization_config` for packed `bitlinear`
    /// weights), so that `parse` gives back the same sizes, ε, θ, token ids and tie flag. The
    /// fields are written in a fixed, readable order (the `Codable` form writes the same fields).
    /// - Parameters:
    ///   - config: the model shape to describe.
    ///   - torchDType: the `torch_dtype` to announce ("bfloat16" or "float32").
    public static func json(for config: BitNetConfig, torchDType: String = "bfloat16") -> String {
        func eosText() -> String {
            switch config.eosTokenIds.count {
            case 0: return "null"
            case 1: return String(config.eosTokenIds[0])
            default: return "[" + config.eosTokenIds.map(String.init).joined(separator: ", ") + "]"
            }
        }
        let lines = [
            "\"architectures\": [\"BitNetForCausalLM\"]",
            "\"model_type\": \"bitnet\"",
            "\"hidden_size\": \(config.hiddenSize)",
            "\"intermediate_size\": \(config.intermediateSize)",
            "\"num_hidden_layers\": \(config.numHiddenLayers)",
            "\"num_attention_heads\": \(config.numAttentionHeads)",
            "\"num_key_value_heads\": \(config.numKeyValueHeads)",
            "\"hidden_act\": \"\(config.hiddenAct)\"",
            "\"rms_norm_eps\": \(floatText(config.rmsNormEps))",
            "\"rope_theta\": \(doubleText(config.ropeTheta))",
            "\"vocab_size\": \(config.vocabSize)",
            "\"max_position_embeddings\": \(config.maxPositionEmbeddings)",
            "\"bos_token_id\": \(config.bosTokenId >= 0 ? String(config.bosTokenId) : "null")",
            "\"eos_token_id\": \(eosText())",
            "\"tie_word_embeddings\": \(config.tieWordEmbeddings)",
            "\"attention_bias\": false",
            "\"torch_dtype\": \"\(torchDType)\"",
            "\"quantization_config\": {\"quant_method\": \"bitnet\", \"linear_class\": \"bitlinear\", \"quantization_mode\": \"offline\"}",
        ]
        return "{\n  " + lines.joined(separator: ",\n  ") + "\n}\n"
    }

    /// The shortest decimal text of `value` that reads back (through Double, as JSON parsers
    /// do, then rounded to Float) as exactly `value`.
    static func floatText(_ value: Float) -> String {
        let short = "\(value)"
        if let d = Double(short), Float(d) == value { return short }
        return doubleText(Double(value))
    }

    /// Swift's shortest round-trip text of a Double (valid JSON for finite values).
    static func doubleText(_ value: Double) -> String { "\(value)" }

    /// Describes a decoding failure with the JSON path of the field.
    ///
    /// Foundation's decoder reports a number that does not fit an integer field (a fraction, or
    /// beyond `Int`) as "not valid JSON" without a path; the text is then parsed again loosely to
    /// name the field.
    static func describe(_ error: DecodingError, data: Data) -> String {
        func field(_ path: [any CodingKey]) -> String {
            path.map { $0.intValue.map { "[\($0)]" } ?? $0.stringValue }.joined(separator: ".")
        }
        switch error {
        case .typeMismatch(let type, let c):
            return c.codingPath.isEmpty ? "not a JSON object" : "field \"\(field(c.codingPath))\": expected \(typeName(type))"
        case .valueNotFound(let type, let c):
            return "field \"\(field(c.codingPath))\": null where \(typeName(type)) is required"
        case .keyNotFound(let key, let c):
            return "missing field \"\(field(c.codingPath + [key]))\""
        case .dataCorrupted(let c):
            if c.codingPath.isEmpty {
                guard let object = try? JSONSerialization.jsonObject(with: data) as? [String: Any] else {
                    return "not valid JSON: \(c.debugDescription)"
                }
                for key in HuggingFaceFields.Keys.integerKeys {
                    if let n = object[key.rawValue] as? NSNumber, !(n is Bool) {
                        let d = n.doubleValue
                        if d != d.rounded() || d.magnitude >= 0x1p62 { return "field \"\(key.rawValue)\": \(n) is not an integer that fits" }
                    }
                }
                return "a value does not fit its field: \(c.debugDescription)"
            }
            return "field \"\(field(c.codingPath))\": \(c.debugDescription)"
        @unknown default:
            return "\(error)"
        }
    }

    static func typeName(_ type: Any.Type) -> String {
        switch type {
        case is Int.Type: return "an integer"
        case is Double.Type, is Float.Type: return "a number"
        case is Bool.Type: return "true or false"
        case is String.Type: return "a string"
        case is [String].Type: return "a list of strings"
        default: return "\(type)"
        }
    }

    /// The fields of `config.json` TernaryKit reads, all optional: ``config()`` applies
    /// `transformers`' defaults and refuses what is not implemented.
    struct HuggingFaceFields: Decodable {
        var modelType: String?
        var hiddenSize, intermediateSize, numHiddenLayers, numAttentionHeads, numKeyValueHeads: Int?
        var headDim: Int?
        var vocabSize, maxPositionEmbeddings: Int?
        /// -1 for JSON null (no BOS token).
        var bosTokenId: Int
        var eosTokenIds: [Int]
        var rmsNormEps, ropeTheta: Double?
        var tieWordEmbeddings, attentionBias, mlpBias: Bool?
        var hiddenAct: String?
        var ropeScaling: Bool
        var quantizationConfig: Quantization?
        var lmHeadFormat: LMHeadFormat?
        var kvCacheCapacity: Int?

        enum Keys: String, CodingKey {
            case model_type, hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads
            case head_dim, vocab_size, max_position_embeddings, bos_token_id, eos_token_id, rms_norm_eps, rope_theta
            case tie_word_embeddings, attention_bias, mlp_bias, hidden_act, rope_scaling, quantization_config
            case architectures, lm_head_format, kv_cache_capacity

            static let integerKeys: [Keys] = [.hidden_size, .intermediate_size, .num_hidden_layers, .num_attention_heads,
                                              .num_key_value_heads, .head_dim, .vocab_size, .max_position_embeddings,
                                              .bos_token_id, .eos_token_id]
        }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            modelType = try c.decodeIfPresent(String.self, forKey: .model_type)
            hiddenSize = try c.decodeIfPresent(Int.self, forKey: .hidden_size)
            intermediateSize = try c.decodeIfPresent(Int.self, forKey: .intermediate_size)
            numHiddenLayers = try c.decodeIfPresent(Int.self, forKey: .num_hidden_layers)
            numAttentionHeads = try c.decodeIfPresent(Int.self, forKey: .num_attention_heads)
            // transformers: None means "as many as the attention heads".
            if c.contains(.num_key_value_heads), try c.decodeNil(forKey: .num_key_value_heads) {
                numKeyValueHeads = numAttentionHeads ?? 20
            } else {
                numKeyValueHeads = try c.decodeIfPresent(Int.self, forKey: .num_key_value_heads)
            }
            headDim = try c.decodeIfPresent(Int.self, forKey: .head_dim)
            vocabSize = try c.decodeIfPresent(Int.self, forKey: .vocab_size)
            maxPositionEmbeddings = try c.decodeIfPresent(Int.self, forKey: .max_position_embeddings)
            if !c.contains(.bos_token_id) {
                bosTokenId = 128_000
            } else if try c.decodeNil(forKey: .bos_token_id) {
                bosTokenId = -1
            } else {
                bosTokenId = try c.decode(Int.self, forKey: .bos_token_id)
            }
            if !c.contains(.eos_token_id) {
                eosTokenIds = [128_001]
            } else if try c.decodeNil(forKey: .eos_token_id) {
                eosTokenIds = []
            } else if let one = try? c.decode(Int.self, forKey: .eos_token_id) {
                eosTokenIds = [one]
            } else {
                eosTokenIds = try c.decode([Int].self, forKey: .eos_token_id)
            }
            rmsNormEps = try c.decodeIfPresent(Double.self, forKey: .rms_norm_eps)
            ropeTheta = try c.decodeIfPresent(Double.self, forKey: .rope_theta)
            tieWordEmbeddings = try c.decodeIfPresent(Bool.self, forKey: .tie_word_embeddings)
            attentionBias = try c.decodeIfPresent(Bool.self, forKey: .attention_bias)
            mlpBias = try c.decodeIfPresent(Bool.self, forKey: .mlp_bias)
            hiddenAct = try c.decodeIfPresent(String.self, forKey: .hidden_act)
            ropeScaling = c.contains(.rope_scaling) ? !(try c.decodeNil(forKey: .rope_scaling)) : false
            quantizationConfig = try c.decodeIfPresent(Quantization.self, forKey: .quantization_config)
            lmHeadFormat = try c.decodeIfPresent(LMHeadFormat.self, forKey: .lm_head_format)
            kvCacheCapacity = try c.decodeIfPresent(Int.self, forKey: .kv_cache_capacity)
        }

        /// The config these fields describe, with `transformers`' defaults for absent ones.
        /// - Throws: `.invalidArgument` naming an unsupported or inconsistent setting.
        func config() throws -> BitNetConfig {
            func fail(_ problem: String) -> TernaryKitError { .invalidArgument(problem) }
            guard let modelType else { throw fail("no \"model_type\" (expected \"bitnet\")") }
            guard modelType == "bitnet" else { throw fail("model_type \"\(modelType)\" is not \"bitnet\"") }
            guard let q = quantizationConfig else {
                throw fail("no \"quantization_config\": TernaryKit loads packed BitNet checkpoints (quant_method \"bitnet\") only")
            }
            guard q.quantMethod == "bitnet" else {
                throw fail("quantization_config.quant_method is \(q.quantMethod.map { "\"\($0)\"" } ?? "absent"), expected \"bitnet\"")
            }
            let linearClass = q.linearClass ?? BitNetConfig.supportedLinearClass
            switch linearClass {
            case BitNetConfig.supportedLinearClass: break
            case "autobitlinear":
                throw fail("quantization_config.linear_class \"autobitlinear\" is not supported: transformers' AutoBitLinear "
                           + "multiplies by weight_scale (and may quantize online), TernaryKit implements the packed \"bitlinear\" "
                           + "convention (divide by weight_scale) only")
            default:
                throw fail("quantization_config.linear_class \"\(linearClass)\" is unknown (supported: \"bitlinear\")")
            }
            if let mode = q.quantizationMode, mode != "offline", mode != "online" {
                throw fail("quantization_config.quantization_mode \"\(mode)\" is unknown (transformers accepts offline or online)")
            }
            if q.useRmsNorm == true {
                throw fail("quantization_config.use_rms_norm is true: an extra RMSNorm inside each BitLinear is not implemented")
            }
            let kept = (q.modulesToNotConvert ?? []).filter { $0 != "lm_head" }
            if !kept.isEmpty {
                throw fail("quantization_config.modules_to_not_convert lists \(kept.map { "\"\($0)\"" }.joined(separator: ", ")): "
                           + "unquantized projections are not supported (only lm_head may stay unquantized)")
            }
            if ropeScaling { throw fail("rope_scaling is set: scaled rotary embeddings are not implemented") }
            if attentionBias == true { throw fail("attention_bias is true: projection biases are not implemented") }
            if mlpBias == true { throw fail("mlp_bias is true: projection biases are not implemented") }

            // Defaults of transformers' BitNetConfig.__init__ (configuration_bitnet.py).
            let heads = numAttentionHeads ?? 20
            let hidden = hiddenSize ?? 2560
            let layers = numHiddenLayers ?? 30
            // A sanity bound before anything is sized from it (2B4T has 30).
            guard layers <= 4096 else { throw fail("num_hidden_layers \(layers) is beyond 4096") }
            if let d = headDim, heads > 0, d != hidden / heads {
                throw fail("head_dim \(d) differs from hidden_size / num_attention_heads = \(hidden / heads) (not supported)")
            }
            let eps = rmsNormEps ?? 1e-5
            guard eps.isFinite, eps >= 0, Float(eps).isFinite else { throw fail("rms_norm_eps \(eps) is not a finite non-negative number") }
            let config = BitNetConfig(
                hiddenSize: hidden, intermediateSize: intermediateSize ?? 6912, numHiddenLayers: layers,
                numAttentionHeads: heads, numKeyValueHeads: numKeyValueHeads ?? 5, rmsNormEps: Float(eps),
                ropeTheta: ropeTheta ?? 500_000, vocabSize: vocabSize ?? 128_256,
                maxPositionEmbeddings: maxPositionEmbeddings ?? 2048, bosTokenId: bosTokenId,
                eosTokenIds: eosTokenIds, tieWordEmbeddings: tieWordEmbeddings ?? false,
                modelType: modelType, hiddenAct: hiddenAct ?? "relu2", lmHeadFormat: lmHeadFormat ?? .float32,
                kvCacheCapacity: kvCacheCapacity)
            try config.validate()
            return config
        }
    }

    /// `quantization_config` (transformers' `BitNetQuantConfig` fields).
    struct Quantization: Decodable {
        var quantMethod: String?
        var linearClass: String?
        var quantizationMode: String?
        var useRmsNorm: Bool?
        var modulesToNotConvert: [String]?

        enum Keys: String, CodingKey { case quant_method, linear_class, quantization_mode, use_rms_norm, modules_to_not_convert }

        init(from decoder: any Decoder) throws {
            let c = try decoder.container(keyedBy: Keys.self)
            quantMethod = try c.decodeIfPresent(String.self, forKey: .quant_method)
            linearClass = try c.decodeIfPresent(String.self, forKey: .linear_class)
            quantizationMode = try c.decodeIfPresent(String.self, forKey: .quantization_mode)
            useRmsNorm = try c.decodeIfPresent(Bool.self, forKey: .use_rms_norm)
            modulesToNotConvert = try c.decodeIfPresent([String].self, forKey: .modules_to_not_convert)
        }
    }
}
