import Foundation
import Testing
import SafeTensors
import TensorCore
@testable import BitNet

private func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("ternarykit-st-\(UInt64.random(in: 0 ... .max))").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

private let fixtureDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/tiny-bitnet").path

// MARK: - BitNet packing

@Suite struct BitNetPackingTests {
    @Test func matchesTheTransformersDocstringExample() throws {
        // The worked example in transformers/integrations/bitnet.py `unpack_weights`:
        // packed [[0b10100001, 0b00011000], [0b10010000, 0b00001010]] unpacks to 8×2
        // [[0,-1],[-1,1],[-1,1],[-1,1],[1,0],[0,-1],[1,-1],[1,-1]].
        let packed: [UInt8] = [0b1010_0001, 0b0001_1000, 0b1001_0000, 0b0000_1010]
        let m = try BitNetPacking.unpack(packed, outFeatures: 8, inFeatures: 2)
        #expect(m.values == [0, -1, -1, 1, -1, 1, -1, 1, 1, 0, 0, -1, 1, -1, 1, -1])
        #expect(try BitNetPacking.pack(m) == packed)
    }

    @Test(arguments: [(4, 1), (8, 3), (12, 7), (64, 33), (256, 100)])
    func randomMatricesRoundTrip(out: Int, inFeatures: Int) throws {
        var rng = SeededGenerator(seed: UInt64(out * 1000 + inFeatures))
        for binary in [false, true] {
            let m = try TernaryMatrix.random(outFeatures: out, inFeatures: inFeatures, zeroFraction: 0.3,
                                             binary: binary, scale: 0.5, using: &rng)
            let packed = try BitNetPacking.pack(m)
            #expect(packed.count == out / 4 * inFeatures)
            let back = try BitNetPacking.unpack(packed, outFeatures: out, inFeatures: inFeatures, scale: 0.5)
            #expect(back == m)
            #expect(back.isBinary == m.isBinary)
            // The plane layout: row o lives in packed row o % R, bit pair o / R.
            let r = out / 4
            for o in [0, out - 1, out / 2] {
                for c in [0, inFeatures - 1] {
                    let code = (packed[(o % r) * inFeatures + c] >> (2 * (o / r))) & 3
                    #expect(Int8(code) - 1 == m[o, c])
                }
            }
        }
    }

    @Test func codeThreeIsAnErrorNamingTensorAndPosition() {
        var packed = [UInt8](repeating: 0b0101_0101, count: 2 * 3)  // all zeros
        packed[1 * 3 + 2] = 0b0011_0101  // plane 2 of packed [1, 2] → weight row 2·2 + 1 = 5
        #expect(throws: TernaryKitError.invalidValue(
            "tensor \"model.layers.0.mlp.up_proj.weight\": packed value 3 (no ternary meaning) at packed [1, 2] bits 4–5 (weight row 5, column 2)")) {
            try BitNetPacking.unpack(packed, outFeatures: 8, inFeatures: 3, name: "model.layers.0.mlp.up_proj.weight")
        }
    }

    @Test func weightScaleRoundTripsGammaExactlyWhenPossible() {
        var rng = SeededGenerator(seed: 5)
        var plainFailures = 0, unreachable = 0
        for _ in 0..<20_000 {
            let gamma = Float(Double(rng.next() >> 11) * 0x1p-53 * 4 + 1e-4)
            if 1 / (1 / gamma) != gamma { plainFailures += 1 }
            if let w = BitNetPacking.exactWeightScale(forGamma: gamma) {
                #expect(BitNetPacking.gamma(fromWeightScale: w) == gamma)
            } else {
                unreachable += 1
            }
        }
        #expect(plainFailures > 0 && unreachable <= plainFailures)  // arbitrary γ: not always representable
        // Every γ that came from a stored weight_scale has an exact F32 weight_scale, and a BF16
        // weight_scale survives γ and back through BF16.
        for _ in 0..<20_000 {
            let ws = Float(bitPattern: UInt32(truncatingIfNeeded: rng.next() % 0x7F00_0000) | 0x0080_0000)
            let gamma = BitNetPacking.gamma(fromWeightScale: ws)
            guard gamma.isNormal else { continue }
            #expect(BitNetPacking.exactWeightScale(forGamma: gamma).map { 1 / $0 } == gamma)
        }
        for bits in stride(from: UInt16(0x3C00), to: 0x4400, by: 7) {
            let ws = HalfPrecision.float(bfloat16Bits: bits)
            #expect(HalfPrecision.bfloat16Bits(1 / BitNetPacking.gamma(fromWeightScale: ws)) == bits)
        }
    }

    @Test func shapesAreChecked() throws {
        var rng = SeededGenerator(seed: 1)
        let m = try TernaryMatrix.random(outFeatures: 6, inFeatures: 4, zeroFraction: 0.3, binary: false, scale: 1, using: &rng)
        #expect(throws: TernaryKitError.self) { try BitNetPacking.pack(m) }
        #expect(throws: TernaryKitError.self) { try BitNetPacking.unpack([UInt8](repeating: 0x55, count: 8), outFeatures: 6, inFeatures: 4) }
        #expect(throws: TernaryKitError.self) { try BitNetPacking.unpack([UInt8](repeating: 0x55, count: 7), outFeatures: 8, inFeatures: 4) }
        #expect(throws: TernaryKitError.self) { try BitNetPacking.unpack([], outFeatures: 0, inFeatures: 4) }
    }
}

// MARK: - The independent fixture

@Suite struct BitNetFixtureTests {
    struct Config: Decodable {
        let model_type: String
        let hidden_size, intermediate_size, num_hidden_layers, num_attention_heads, num_key_value_heads, vocab_size: Int
        let tie_word_embeddings: Bool
    }

    func config() throws -> Config {
        try JSONDecoder().decode(Config.self, from: Data(contentsOf: URL(fileURLWithPath: fixtureDirectory + "/config.json")))
    }

    /// Projection names and their (out, in) shapes, from the config.
    func projections(_ c: Config) -> [(name: String, out: Int, in: Int)] {
        let hd = c.hidden_size / c.num_attention_heads
        var result: [(String, Int, Int)] = []
        for i in 0..<c.num_hidden_layers {
            let p = "model.layers.\(i)."
            result += [(p + "self_attn.q_proj", c.num_attention_heads * hd, c.hidden_size),
                       (p + "self_attn.k_proj", c.num_key_value_heads * hd, c.hidden_size),
                       (p + "self_attn.v_proj", c.num_key_value_heads * hd, c.hidden_size),
                       (p + "self_attn.o_proj", c.hidden_size, c.num_attention_heads * hd),
                       (p + "mlp.gate_proj", c.intermediate_size, c.hidden_size),
                       (p + "mlp.up_proj", c.intermediate_size, c.hidden_size),
                       (p + "mlp.down_proj", c.hidden_size, c.intermediate_size)]
        }
        return result
    }

    @Test func fixtureParsesWithExactlyTheHuggingFaceNames() throws {
        let c = try config()
        #expect(c.model_type == "bitnet" && c.tie_word_embeddings)
        let file = try SafeTensorsFile(path: fixtureDirectory + "/model.safetensors")
        #expect(file.metadata["writer"] == "make_bitnet_fixture.py")
        var expected: Set<String> = ["model.embed_tokens.weight", "model.norm.weight"]
        for i in 0..<c.num_hidden_layers {
            for n in ["input_layernorm", "self_attn.attn_sub_norm", "post_attention_layernorm", "mlp.ffn_sub_norm"] {
                expected.insert("model.layers.\(i).\(n).weight")
            }
        }
        for p in projections(c) { expected.formUnion([p.name + ".weight", p.name + ".weight_scale"]) }
        let check = TensorNameCheck(expected: expected, actual: file.tensors.keys)
        #expect(check.isExact, "\(check.summary())")
        try check.check(path: file.path)
        #expect(try file.info("model.embed_tokens.weight") == SafeTensorInfo(
            dtype: .bf16, shape: [c.vocab_size, c.hidden_size], dataOffsets: try file.info("model.embed_tokens.weight").dataOffsets))
        #expect(try file.info("model.layers.1.mlp.ffn_sub_norm.weight").shape == [c.intermediate_size])
        #expect(try file.floats("model.norm.weight").allSatisfy { $0.isFinite && $0 != 0 })
    }

    @Test func packedProjectionsUnpackToTernaryAndRepackIdentically() throws {
        let c = try config()
        let file = try SafeTensorsFile(path: fixtureDirectory + "/model.safetensors")
        for p in projections(c) {
            let weight = p.name + ".weight", scale = p.name + ".weight_scale"
            #expect(try file.info(weight).dtype == .u8)
            #expect(try file.info(weight).shape == [p.out / 4, p.in])
            #expect(try file.info(scale).dtype == .bf16 && file.info(scale).shape == [1])
            let weightScale = try file.floats(scale)[0]
            #expect(weightScale > 0 && weightScale.isFinite)
            let m = try file.bitNetTernaryMatrix(weight, outFeatures: p.out, inFeatures: p.in, scale: 1 / weightScale)
            #expect(m.values.allSatisfy { (-1...1).contains($0) })
            #expect(Set(m.values) == [-1, 0, 1])  // random weights use every value
            #expect(try BitNetPacking.pack(m) == file.uint8s(weight))
        }
        // Wrong expectations give file errors naming the tensor.
        #expect(throws: TernaryKitError.self) {
            try file.bitNetTernaryMatrix("model.layers.0.mlp.up_proj.weight", outFeatures: 64, inFeatures: 64)
        }
        #expect(throws: TernaryKitError.self) { try file.bitNetTernaryMatrix("model.norm.weight", outFeatures: 64, inFeatures: 1) }
    }

    @Test func expectedLogitsHaveOneVocabularyRowPerToken() throws {
        struct Expected: Decodable { let tokens: [Int]; let logits: [[Double]] }
        let c = try config()
        let e = try JSONDecoder().decode(Expected.self, from: Data(contentsOf: URL(fileURLWithPath: fixtureDirectory + "/expected_logits.json")))
        #expect(e.tokens.count == e.logits.count && !e.tokens.isEmpty)
        #expect(e.logits.allSatisfy { $0.count == c.vocab_size && $0.allSatisfy(\.isFinite) })
        #expect(e.tokens.allSatisfy { (0..<c.vocab_size).contains($0) })
    }
}

