import Backends
import BitNet
import Foundation
import SafeTensors
import Testing
import TensorCore
@testable import TernaryCLI

/// `ternary quantize` end to end on small generated safetensors files.
@Suite struct QuantizeCommandTests {
    static func temporaryDirectory() throws -> String {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("ternarykit-quantize-\(UInt64.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// name → (dtype, shape, Float values as stored)
    typealias Source = [String: (dtype: SafeTensorsDType, shape: [Int], values: [Float])]

    /// Writes a file with F32, F16 and BF16 matrices, a 1-D tensor, an integer matrix, a
    /// matrix with 6 rows (not packable) and metadata; returns the path and the stored values.
    static func makeInput(_ dir: String, nanIn: String? = nil) throws -> (String, Source) {
        var g = SeededGenerator(seed: 21)
        func rounded(_ v: [Float], _ t: SafeTensorsDType) -> [Float] {
            switch t {
            case .f16: return v.map { HalfPrecision.float(float16Bits: HalfPrecision.float16Bits($0)) }
            case .bf16: return v.map { HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits($0)) }
            default: return v
            }
        }
        var source: Source = [:]
        for (name, dtype, shape) in [("layer.q.weight", SafeTensorsDType.f32, [8, 12]), ("layer.h.weight", .f16, [12, 8]),
                                     ("layer.b.weight", .bf16, [4, 20]), ("odd.weight", .f32, [6, 8]), ("norm.weight", .f32, [12])] {
            var v = rounded(g.gaussians(count: shape.reduce(1, *), standardDeviation: 0.5), dtype)
            if name == nanIn { v[5] = .nan }
            source[name] = (dtype, shape, v)
        }
        var writer = SafeTensorsWriter(metadata: ["format": "pt", "note": "quantize test"])
        for (name, t) in source { try writer.add(name, floats: t.values, shape: t.shape, as: t.dtype) }
        try writer.add("ids", integers: [Int32](1...8), shape: [2, 4])
        let path = dir + "/in.safetensors"
        try writer.write(to: path)
        return (path, source)
    }

    static func errorText(_ body: () throws -> Void) -> String {
        do { try body(); Issue.record("expected an error"); return "" } catch { return "\(error)" }
    }

    @Test func quantizesSelectedTensorsAndCopiesTheRest() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (input, source) = try Self.makeInput(dir)
        let out = dir + "/out.safetensors"
        let command = try QuantizeCommand.parse(["--in", input, "--out", out, "--tensors", "^layer\\.", "--rank", "5", "--json"])
        let rows = try JSONLines.objects(try JSONLines.capture { try command.run() })
        #expect(rows.map { $0["name"] as? String } == ["layer.b.weight", "layer.h.weight", "layer.q.weight"])
        #expect(rows.allSatisfy { Set($0.keys) == ["name", "out", "in", "gamma", "relative_error", "relative_error_corrected", "rank"] })
        // The 4×20 tensor's rank is clamped to 4 (and then exact).
        #expect(rows.map { $0["rank"] as? Int } == [4, 5, 5])
        #expect((rows[0]["relative_error_corrected"] as? Double).map { $0 < 1e-5 } == true)

        let input0 = try SafeTensorsFile(path: input), file = try SafeTensorsFile(path: out)
        #expect(file.metadata == input0.metadata && file.metadata["note"] == "quantize test")
        for name in ["norm.weight", "odd.weight", "ids"] {
            #expect(file.tensors[name]?.dtype == input0.tensors[name]?.dtype && file.tensors[name]?.shape == input0.tensors[name]?.shape)
            #expect(try file.bytes(name) == input0.bytes(name), "\(name)")
        }
        for row in rows {
            let name = try #require(row["name"] as? String)
            let t = try #require(source[name])
            let (o, i) = (t.shape[0], t.shape[1])
            #expect(row["out"] as? Int == o && row["in"] as? Int == i)
            let (ternary, correction) = try Ternarization.ternarize(t.values, outFeatures: o, inFeatures: i, rank: 5, name: name)
            #expect(file.tensors[name]?.dtype == .u8 && file.tensors[name]?.shape == [o / 4, i])
            let scale = try file.floats(name + "_scale")
            #expect(scale.count == 1)
            // Codes and γ equal the library's ternarization; γ reloads exactly from the stored scale.
            let gamma = BitNetPacking.gamma(fromWeightScale: scale[0])
            let m = try file.bitNetTernaryMatrix(name, outFeatures: o, inFeatures: i, scale: gamma)
            #expect(m.values == ternary.matrix.values, "\(name)")
            #expect(gamma == ternary.gamma, "\(name)")
            #expect((row["gamma"] as? Double).map { Float($0) } == ternary.gamma)
            // (JSONSerialization may read the last bit of a shortest-digits Double differently.)
            #expect((row["relative_error"] as? Double).map { abs($0 - ternary.relativeError) <= 1e-15 } == true)
            #expect((row["relative_error_corrected"] as? Double).map { abs($0 - correction.correctedRelativeError) <= 1e-15 } == true)
            let r = correction.rank
            #expect(file.tensors[name + "_lowrank_a"]?.dtype == .f32 && file.tensors[name + "_lowrank_a"]?.shape == [o, r])
            #expect(file.tensors[name + "_lowrank_b"]?.dtype == .f32 && file.tensors[name + "_lowrank_b"]?.shape == [r, i])
            #expect(try file.floats(name + "_lowrank_a") == correction.correction.a)
            #expect(try file.floats(name + "_lowrank_b") == correction.correction.b)
        }
        #expect(file.tensors.count == 6 + 3 * 3)
    }

    @Test func withoutARankOnlyCodesAndScalesAreWritten() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (input, _) = try Self.makeInput(dir)
        let out = dir + "/out.safetensors"
        // A table, not JSON; a regex that picks one tensor.
        let lines = try JSONLines.capture { try QuantizeCommand.parse(["--in", input, "--out", out, "--tensors", "h\\.w"]).run() }
        #expect(lines.isEmpty)
        let file = try SafeTensorsFile(path: out)
        #expect(file.tensors["layer.h.weight"]?.shape == [3, 8] && file.tensors["layer.h.weight_scale"] != nil)
        #expect(file.tensors["layer.h.weight_lowrank_a"] == nil && file.tensors["layer.q.weight"]?.dtype == .f32)
        #expect(QuantizeCommand.table([.init(name: "x", out: 4, in: 8, gamma: 0.5, relativeError: 0.5, relativeErrorCorrected: 0.25, rank: 2)])
            .contains("0.2500"))
    }

    @Test func unpackableShapesNaNAndEmptySelectionsWriteNothing() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (input, _) = try Self.makeInput(dir)
        let out = dir + "/out.safetensors"
        // The default selection includes odd.weight (6 rows).
        let odd = Self.errorText { try QuantizeCommand.parse(["--in", input, "--out", out]).run() }
        #expect(odd.contains("\"odd.weight\" has 6 rows") && odd.contains("multiple of 4"), "\(odd)")
        #expect(!FileManager.default.fileExists(atPath: out))
        let none = Self.errorText { try QuantizeCommand.parse(["--in", input, "--out", out, "--tensors", "^nothing$"]).run() }
        #expect(none.contains("no 2-D F32/F16/BF16 tensor matches"), "\(none)")
        #expect(!FileManager.default.fileExists(atPath: out))
        // NaN in one selected tensor: named, nothing written.
        let nanDir = dir + "/nan"
        try FileManager.default.createDirectory(atPath: nanDir, withIntermediateDirectories: true)
        let (nanInput, _) = try Self.makeInput(nanDir, nanIn: "layer.q.weight")
        let nan = Self.errorText { try QuantizeCommand.parse(["--in", nanInput, "--out", out, "--tensors", "layer", "--rank", "2"]).run() }
        #expect(nan.contains("layer.q.weight") && nan.contains("nan"), "\(nan)")
        #expect(!FileManager.default.fileExists(atPath: out))
        // A missing input is a file error.
        #expect(Self.errorText { try QuantizeCommand.parse(["--in", dir + "/missing", "--out", out]).run() }.contains("no such file"))
    }

    @Test func badFlagsAreRefused() throws {
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let (input, _) = try Self.makeInput(dir)
        let out = dir + "/out.safetensors"
        try FileManager.default.createSymbolicLink(atPath: dir + "/link.safetensors", withDestinationPath: input)
        for args in [["--in", input, "--out", input], ["--in", input, "--out", dir + "/./in.safetensors"],
                     ["--in", input, "--out", dir + "/link.safetensors"],
                     ["--in", input, "--out", out, "--tensors", "(unclosed"], ["--in", input, "--out", out, "--rank", "-1"],
                     ["--in", input, "--out", out, "--threads", "0"], ["--in", input, "--out", out, "--method", "qr"],
                     ["--in", input], ["--out", out], ["--in", input, "--out", out, "--rank", "x"]] {
            #expect(throws: (any Error).self, "\(args)") { try QuantizeCommand.parse(args) }
        }
        #expect(!FileManager.default.fileExists(atPath: out))
        for method in SVDMethodName.allCases {
            _ = try QuantizeCommand.parse(["--in", input, "--out", out, "--method", method.rawValue])
        }
    }
}

/// A float "checkpoint" of the tiny BitNet shapes, quantized by `ternary quantize`, loads as a
/// `BitNetModel` whose projections and corrections are the library's ternarization.
@Suite struct QuantizeToCheckpointTests {
    @Test func quantizedFloatCheckpointLoads() throws {
        let dir = try QuantizeCommandTests.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        // config.json (and a model.safetensors to replace) from the tiny preset.
        try BitNetModel.random(config: .tiny, seed: 5).exportCheckpoint(to: dir + "/m")
        var g = SeededGenerator(seed: 8)
        var writer = SafeTensorsWriter(metadata: ["format": "pt"])
        var floats: [String: (out: Int, in: Int, values: [Float])] = [:]
        for spec in try BitNetCheckpoint.expectedTensors(for: BitNetConfig.tiny) {
            switch spec.kind {
            case .packed(let o, let i):
                let v = g.gaussians(count: o * i, standardDeviation: 0.02)
                floats[spec.name] = (o, i, v)
                try writer.add(spec.name, floats: v, shape: [o, i], as: .f32)
            case .weightScale:
                continue
            case .floats(let shape):
                try writer.add(spec.name, floats: g.floats(count: shape.reduce(1, *), magnitude: 0.5), shape: shape, as: .bf16)
            }
        }
        try writer.write(to: dir + "/float.safetensors")
        let rows = try JSONLines.objects(try JSONLines.capture {
            try QuantizeCommand.parse(["--in", dir + "/float.safetensors", "--out", dir + "/m/model.safetensors",
                                       "--tensors", "_proj\\.weight$", "--rank", "4", "--method", "gesdd", "--json"]).run()
        })
        #expect(rows.count == floats.count && rows.count == 14)
        let model = try BitNetModel.load(checkpoint: dir + "/m")
        for (path, layer) in model.bitLinears() {
            let f = try #require(floats[path + ".weight"], "\(path)")
            let (t, c) = try Ternarization.ternarize(f.values, outFeatures: f.out, inFeatures: f.in, rank: 4, method: .gesdd)
            #expect(layer.weight.values == t.matrix.values, "\(path)")
            let stored = BitNetModel.storedWeightScale(forGamma: t.gamma)?.0 ?? 1 / t.gamma
            #expect(layer.weight.scale == BitNetPacking.gamma(fromWeightScale: stored), "\(path)")
            #expect(layer.correction == c.correction, "\(path)")
        }
        let logits = try model.forward([1, 2, 3], allLogits: true)
        #expect(logits.count == 3 * 256 && logits.allSatisfy(\.isFinite))
    }
}
