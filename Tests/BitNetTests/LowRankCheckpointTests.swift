import Backends
import Foundation
import Testing
import SafeTensors
import TensorCore
@testable import BitNet
import Layers

/// Checkpoints whose projections carry low-rank corrections (`P.weight_lowrank_a` / `_b`).
@Suite struct LowRankCheckpointTests {
    /// The tiny random model with a correction on every other projection (ranks 1 to 4; the odd
    /// ones F32-only values, the even ones BF16-exact values so both stored dtypes occur).
    static func correctedModel(seed: UInt64) throws -> BitNetModel {
        let model = try BitNetModel.random(config: .tiny, seed: seed)
        var g = SeededGenerator(seed: seed &+ 1)
        for (k, (_, layer)) in model.bitLinears().enumerated() where k % 2 == 0 {
            let r = 1 + k % 4
            var a = g.gaussians(count: layer.outFeatures * r, standardDeviation: 0.05)
            var b = g.gaussians(count: r * layer.inFeatures, standardDeviation: 0.05)
            if k % 4 == 0 {
                a = a.map { HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits($0)) }
                b = b.map { HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits($0)) }
            }
            try layer.setCorrection(LowRankCorrection(outFeatures: layer.outFeatures, inFeatures: layer.inFeatures, rank: r, a: a, b: b))
        }
        return model
    }

    @Test(arguments: [3, 2024] as [UInt64])
    func exportedCorrectionsReloadBitIdentically(seed: UInt64) throws {
        let model = try Self.correctedModel(seed: seed)
        let plain = try BitNetModel.random(config: .tiny, seed: seed)
        let dir = try CheckpointTests.temporaryDirectory("lowrank")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.exportCheckpoint(to: dir + "/m")
        let file = try SafeTensorsFile(path: dir + "/m/model.safetensors")
        #expect(file.tensors["model.layers.0.self_attn.q_proj.weight_lowrank_a"]?.shape == [64, 1])
        #expect(file.tensors["model.layers.0.self_attn.q_proj.weight_lowrank_b"]?.shape == [1, 64])
        #expect(file.tensors["model.layers.0.self_attn.k_proj.weight_lowrank_a"] == nil)
        let loaded = try BitNetModel.load(checkpoint: dir + "/m")
        for ((p, a), (q, b)) in zip(model.bitLinears(), loaded.bitLinears()) {
            #expect(p == q && a.weight == b.weight && a.correction == b.correction, "\(p)")
        }
        let logits = try model.forward(CheckpointTests.sequence, allLogits: true)
        #expect(try loaded.forward(CheckpointTests.sequence, allLogits: true) == logits)
        // The corrections change the model.
        #expect(try plain.forward(CheckpointTests.sequence, allLogits: true) != logits)
        // Exporting the reloaded model writes the same bytes again.
        try loaded.exportCheckpoint(to: dir + "/again")
        #expect(FileManager.default.contents(atPath: dir + "/m/model.safetensors") == FileManager.default.contents(atPath: dir + "/again/model.safetensors"))
    }

    static func floats(_ values: [Float]) -> [UInt8] { values.flatMap { withUnsafeBytes(of: $0.bitPattern.littleEndian, Array.init) } }

    @Test func mismatchedFactorsAreRefusedWithTheirShapes() throws {
        let q = "model.layers.0.self_attn.q_proj.weight", k = "model.layers.1.self_attn.k_proj.weight"
        let up = "model.layers.0.mlp.up_proj.weight", gate = "model.layers.1.mlp.gate_proj.weight"
        let text = CheckpointTests.loadError(try CheckpointTests.corrupted { t in
            // ranks differ
            t[q + "_lowrank_a"] = (.f32, [64, 2], Self.floats(.init(repeating: 0, count: 128)))
            t[q + "_lowrank_b"] = (.f32, [3, 64], Self.floats(.init(repeating: 0, count: 192)))
            // only one factor
            t[k + "_lowrank_a"] = (.f32, [32, 2], Self.floats(.init(repeating: 0, count: 64)))
            // wrong dtype
            t[up + "_lowrank_a"] = (.i32, [160, 1], [UInt8](repeating: 0, count: 640))
            t[up + "_lowrank_b"] = (.f32, [1, 64], Self.floats(.init(repeating: 0, count: 64)))
            // transposed
            t[gate + "_lowrank_a"] = (.f32, [1, 160], Self.floats(.init(repeating: 0, count: 160)))
            t[gate + "_lowrank_b"] = (.f32, [64, 1], Self.floats(.init(repeating: 0, count: 64)))
        })
        #expect(text.contains("4 bad low-rank corrections"), "\(text)")
        #expect(text.contains("\"\(q)_lowrank_a\" is F32 [64, 2] and \"\(q)_lowrank_b\" is F32 [3, 64], expected [64, r] and [r, 64]"), "\(text)")
        #expect(text.contains("\"\(k)_lowrank_a\" has no partner \"\(k)_lowrank_b\""), "\(text)")
        #expect(text.contains("\"\(up)_lowrank_a\" is I32 [160, 1]") && text.contains("must be F32, F16 or BF16"), "\(text)")
        #expect(text.contains("\"\(gate)_lowrank_a\" is F32 [1, 160]"), "\(text)")
    }

    @Test func correctFactorsInAnyFloatDTypeLoadAndNonFiniteOnesAreRefused() throws {
        let q = "model.layers.0.self_attn.q_proj.weight"
        let dir = try CheckpointTests.corrupted { t in
            t[q + "_lowrank_a"] = (.bf16, [64, 1], [UInt8](repeating: 0x3F, count: 128))   // 0x3F3F ≈ 0.75
            t[q + "_lowrank_b"] = (.f16, [1, 64], [UInt8](repeating: 0x00, count: 128))
        }
        defer { try? FileManager.default.removeItem(atPath: (dir as NSString).deletingLastPathComponent) }
        let model = try BitNetModel.load(checkpoint: dir)
        let layer = try #require(model.bitLinears().first { $0.path == "model.layers.0.self_attn.q_proj" }?.layer)
        #expect(layer.correction?.rank == 1 && layer.correction?.a.allSatisfy { $0 == 0.74609375 } == true)
        let nan = CheckpointTests.loadError(try CheckpointTests.corrupted { t in
            t[q + "_lowrank_a"] = (.f32, [64, 1], Self.floats([.nan] + .init(repeating: 0, count: 63)))
            t[q + "_lowrank_b"] = (.f32, [1, 64], Self.floats(.init(repeating: 0, count: 64)))
        })
        #expect(nan.contains("non-finite"), "\(nan)")
    }
}
