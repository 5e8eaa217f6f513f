import Foundation
import Testing
import TensorCore
@testable import BitNet
import Layers

@Suite struct ConfigTests {
    @Test func codableRoundTripUsesHuggingFaceNames() throws {
        for config in [BitNetConfig.bitnet2B4T, BitNetConfig.tiny] {
            let data = try JSONEncoder().encode(config)
            let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
            for key in ["hidden_size", "intermediate_size", "num_hidden_layers", "num_attention_heads", "num_key_value_heads",
                        "rms_norm_eps", "rope_theta", "vocab_size", "max_position_embeddings", "bos_token_id",
                        "eos_token_id", "tie_word_embeddings", "model_type"] {
                #expect(object[key] != nil, "missing \(key)")
            }
            #expect(try JSONDecoder().decode(BitNetConfig.self, from: data) == config)
        }
    }

    @Test func decodesAHuggingFaceConfig() throws {
        let json = """
        {"architectures": ["BitNetForCausalLM"], "attention_bias": false, "attention_dropout": 0.0,
         "bos_token_id": 128000, "eos_token_id": 128001, "hidden_act": "relu2", "hidden_size": 2560,
         "initializer_range": 0.02, "intermediate_size": 6912, "max_position_embeddings": 4096,
         "model_type": "bitnet", "num_attention_heads": 20, "num_hidden_layers": 30, "num_key_value_heads": 5,
         "quantization_config": {"linear_class": "bitlinear", "quant_method": "bitnet"},
         "rms_norm_eps": 1e-05, "rope_theta": 500000.0, "tie_word_embeddings": true, "torch_dtype": "bfloat16",
         "vocab_size": 128256}
        """
        let c = try JSONDecoder().decode(BitNetConfig.self, from: Data(json.utf8))
        #expect(c == BitNetConfig.bitnet2B4T)
        #expect(c.headDimension == 128)
        let list = try JSONDecoder().decode(BitNetConfig.self, from: Data(json.replacingOccurrences(
            of: "\"eos_token_id\": 128001", with: "\"eos_token_id\": [128001, 128009]").utf8))
        #expect(list.eosTokenIds == [128001, 128009])
        // One decoder: the same refusals as a checkpoint's config.json.
        #expect(throws: TernaryKitError.self) {
            try JSONDecoder().decode(BitNetConfig.self, from: Data(json.replacingOccurrences(
                of: "\"linear_class\": \"bitlinear\"", with: "\"linear_class\": \"autobitlinear\"").utf8))
        }
        // transformers' defaults when absent: untied embeddings, θ 500000.
        let sparse = try JSONDecoder().decode(BitNetConfig.self, from: Data(
            "{\"model_type\": \"bitnet\", \"quantization_config\": {\"quant_method\": \"bitnet\"}}".utf8))
        #expect(!sparse.tieWordEmbeddings && sparse.ropeTheta == 500_000 && sparse.numKeyValueHeads == 5)
    }

    @Test func invalidConfigsThrow() {
        var c = BitNetConfig.tiny
        c.numKeyValueHeads = 3
        #expect(throws: TernaryKitError.self) { try c.validate() }
        c = .tiny
        c.hiddenSize = 66
        #expect(throws: TernaryKitError.self) { try c.validate() }
        #expect(throws: TernaryKitError.self) { try BitNetConfig.preset(named: "7b") }
    }
}
