import Backends
import Foundation
import Testing
import SafeTensors
import TensorCore
@testable import BitNet
import Layers

/// Loading Hugging Face BitNet checkpoints (the independent numpy fixture and our own exports),
/// exporting models, and every kind of bad checkpoint.
@Suite struct CheckpointTests {
    static let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-bitnet").path

    /// A fresh empty directory under the system temporary directory.
    static func temporaryDirectory(_ label: String = "ckpt") throws -> String {
        let path = FileManager.default.temporaryDirectory
            .appendingPathComponent("ternarykit-\(label)-\(UInt64.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    static func expectedLogits() throws -> (tokens: [Int], logits: [[Double]]) {
        let data = try Data(contentsOf: URL(fileURLWithPath: fixture + "/expected_logits.json"))
        let object = try #require(try JSONSerialization.jsonObject(with: data) as? [String: Any])
        let tokens = try #require(object["tokens"] as? [Int])
        let rows = try #require(object["logits"] as? [[Double]])
        return (tokens, rows)
    }

    static let sequence = [1, 17, 200, 5, 99, 42, 3, 255, 0, 64]

    /// The error a throwing call produced, as text (or a failure when it did not throw).
    static func errorText(_ body: () throws -> Void, sourceLocation: SourceLocation = #_sourceLocation) -> String {
        do {
            try body()
            Issue.record("expected an error", sourceLocation: sourceLocation)
            return ""
        } catch {
            return "\(error)"
        }
    }

    // MARK: The independent fixture

    @Test(arguments: BackendRegistry.names)
    func fixtureReproducesTheNumpyReference(backend: String) throws {
        let (tokens, expected) = try Self.expectedLogits()
        for threads in [1, 2] {
            let model = try BitNetModel.load(checkpoint: Self.fixture, backend: BackendRegistry.backend(named: backend),
                                             context: ComputeContext(threads: threads))
            let v = model.config.vocabSize
            let logits = try model.forward(tokens, allLogits: true)
            #expect(logits.count == tokens.count * v)
            #expect(expected.count == tokens.count)
            var worst = 0.0
            for (t, row) in expected.enumerated() {
                #expect(row.count == v)
                for (i, e) in row.enumerated() { worst = max(worst, abs(Double(logits[t * v + i]) - e)) }
            }
            #expect(worst < 1e-4, "\(backend), \(threads) threads: max |Δ| = \(worst)")
        }
    }

    @Test func fixtureConfigFollowsTheFile() throws {
        let c = try BitNetConfig.read(directory: Self.fixture)
        #expect(c.hiddenSize == 64 && c.intermediateSize == 128 && c.numHiddenLayers == 2)
        #expect(c.numAttentionHeads == 4 && c.numKeyValueHeads == 2 && c.headDimension == 16)
        #expect(c.ropeTheta == 10_000 && c.rmsNormEps == Float(1e-5) && c.vocabSize == 256)
        #expect(c.tieWordEmbeddings && c.bosTokenId == 1 && c.eosTokenIds == [2])
    }

    /// Loading the fixture, exporting it and loading that: same logits bit for bit, and the
    /// stored weight scales are the fixture's own BF16 values.
    @Test func fixtureReExportsExactly() throws {
        let original = try BitNetModel.load(checkpoint: Self.fixture)
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let out = dir + "/copy"
        let summary = try original.exportCheckpoint(to: out)
        #expect(summary.float32Tensors == 0)
        let copy = try BitNetModel.load(checkpoint: out)
        #expect(try copy.forward(Self.sequence, allLogits: true) == original.forward(Self.sequence, allLogits: true))
        let a = try SafeTensorsFile(path: Self.fixture + "/model.safetensors")
        let b = try SafeTensorsFile(path: out + "/model.safetensors")
        #expect(a.names == b.names)
        for name in a.names {
            #expect(a.tensors[name]!.dtype == b.tensors[name]!.dtype, "\(name)")
            #expect(try a.bytes(name) == b.bytes(name), "\(name)")
        }
    }

    /// The 16-byte scan of `BitNetPacking.unpack`: a code of 3 anywhere (vector part or tail, any
    /// plane) is found at its exact position, and one -1 anywhere makes the matrix non-binary.
    @Test func unpackScanFindsEveryPosition() throws {
        let rows = 2, columns = 37
        let clean = [UInt8](repeating: 0b1010_1001, count: rows * columns)  // codes 1, 2, 2, 2: no -1
        #expect(try BitNetPacking.unpack(clean, outFeatures: 4 * rows, inFeatures: columns).isBinary)
        for k in 0..<(rows * columns) {
            for plane in 0..<4 {
                var bad = clean
                bad[k] |= 3 << (2 * plane)
                let text = Self.errorText { _ = try BitNetPacking.unpack(bad, outFeatures: 4 * rows, inFeatures: columns, name: "w") }
                #expect(text.contains("at packed [\(k / columns), \(k % columns)] bits \(2 * plane)–\(2 * plane + 1)"), "\(text)")
                var minus = clean
                minus[k] &= ~(3 << (2 * plane))
                let m = try BitNetPacking.unpack(minus, outFeatures: 4 * rows, inFeatures: columns)
                #expect(!m.isBinary)
                #expect(m[plane * rows + k / columns, k % columns] == -1)
            }
        }
    }

    // MARK: Export round trips

    @Test(arguments: [1, 42, 2024, 0xDEAD_BEEF] as [UInt64])
    func exportedRandomModelReloadsBitIdentically(seed: UInt64) throws {
        for tied in [true, false] {
            var config = BitNetConfig.tiny
            config.tieWordEmbeddings = tied
            let model = try BitNetModel.random(config: config, seed: seed)
            let dir = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try model.exportCheckpoint(to: dir + "/m")
            let loaded = try BitNetModel.load(checkpoint: dir + "/m", backend: BackendRegistry.backend(named: BackendRegistry.names.last!),
                                              context: ComputeContext(threads: 2))
            #expect(loaded.config.tieWordEmbeddings == tied)
            #expect(try loaded.forward(Self.sequence, allLogits: true) == model.forward(Self.sequence, allLogits: true), "seed \(seed), tied \(tied)")
            for ((p, a), (q, b)) in zip(model.bitLinears(), loaded.bitLinears()) {
                #expect(p == q && a.weight == b.weight, "\(p)")
            }
            // Exporting the reloaded model writes the same bytes again.
            try loaded.exportCheckpoint(to: dir + "/again")
            #expect(FileManager.default.contents(atPath: dir + "/m/model.safetensors") == FileManager.default.contents(atPath: dir + "/again/model.safetensors"))
            #expect(FileManager.default.contents(atPath: dir + "/m/config.json") == FileManager.default.contents(atPath: dir + "/again/config.json"))
        }
    }

    /// The LM head's format is a run-time choice, not part of the checkpoint: a model built with
    /// any format exports its Float32 head (or tied embedding) and reloads to the same logits.
    @Test(arguments: LMHeadFormat.allCases)
    func anyLMHeadFormatRoundTrips(format: LMHeadFormat) throws {
        for tied in [true, false] {
            var config = BitNetConfig.tiny
            config.tieWordEmbeddings = tied
            config.lmHeadFormat = format
            let model = try BitNetModel.random(config: config, seed: 12)
            let dir = try Self.temporaryDirectory()
            defer { try? FileManager.default.removeItem(atPath: dir) }
            try model.exportCheckpoint(to: dir + "/m")
            let loaded = try BitNetModel.load(checkpoint: dir + "/m", lmHeadFormat: format)
            #expect(try loaded.forward(Self.sequence, allLogits: true) == model.forward(Self.sequence, allLogits: true), "\(format), tied \(tied)")
        }
    }

    @Test func expectedTensorNamesAreTheModelTree() throws {
        for tied in [true, false] {
            var config = BitNetConfig.tiny
            config.tieWordEmbeddings = tied
            let model = try BitNetModel.random(config: config, seed: 3)
            let fromTree = Set(model.parameterKeys() + model.bitLinears().map { $0.path + ".weight_scale" })
            let expected = try BitNetCheckpoint.expectedTensors(for: config)
            #expect(Set(expected.map(\.name)) == fromTree)
            #expect(expected.count == fromTree.count)
        }
    }

    @Test func randomPresetScalesHaveExactBF16WeightScales() throws {
        for config in [BitNetConfig.tiny, BitNetConfig.bitnet2B4T] {
            for inFeatures in Set([config.hiddenSize, config.intermediateSize]) {
                let m = BitNetModel.randomTernary(outFeatures: 4, inFeatures: inFeatures, seed: 1)
                let stored = try #require(BitNetModel.storedWeightScale(forGamma: m.scale))
                #expect(stored.1 == .bf16)
                #expect(1 / stored.0 == m.scale)
                #expect(abs(m.scale * (Float(inFeatures) * 2 / 3).squareRoot() - 1) < 0.01)
            }
        }
    }

    @Test func shardedExportLoadsTheSame() throws {
        let model = try BitNetModel.random(config: .tiny, seed: 9)
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try model.exportCheckpoint(to: dir + "/single")
        let single = try SafeTensorsFile(path: dir + "/single/model.safetensors")
        let sharded = dir + "/sharded"
        try FileManager.default.createDirectory(atPath: sharded, withIntermediateDirectories: true)
        try FileManager.default.copyItem(atPath: dir + "/single/config.json", toPath: sharded + "/config.json")
        var shards = [SafeTensorsWriter(), SafeTensorsWriter()]
        var map: [String] = []
        for (i, name) in single.names.enumerated() {
            let info = single.tensors[name]!
            let shard = i % 2
            try shards[shard].add(name, dtype: info.dtype, shape: info.shape, bytes: Array(single.bytes(name)))
            map.append("\"\(name)\": \"model-0000\(shard + 1)-of-00002.safetensors\"")
        }
        for (i, w) in shards.enumerated() { try w.write(to: sharded + "/model-0000\(i + 1)-of-00002.safetensors") }
        try Data(("{\"metadata\": {}, \"weight_map\": {" + map.joined(separator: ", ") + "}}").utf8)
            .write(to: URL(fileURLWithPath: sharded + "/model.safetensors.index.json"))
        let loaded = try BitNetModel.load(checkpoint: sharded)
        #expect(try loaded.forward(Self.sequence, allLogits: true) == model.forward(Self.sequence, allLogits: true))
    }

    // MARK: Export refusals and atomicity

    @Test func exportRefusesToOverwriteAndNeverLeavesPartialOutput() throws {
        let model = try BitNetModel.random(config: .tiny, seed: 5)
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fm = FileManager.default
        // Non-empty directory: refused, untouched.
        let busy = dir + "/busy"
        try fm.createDirectory(atPath: busy, withIntermediateDirectories: true)
        try Data("keep".utf8).write(to: URL(fileURLWithPath: busy + "/notes.txt"))
        #expect(Self.errorText { try model.exportCheckpoint(to: busy) }.contains("exists and is not empty"))
        #expect(try fm.contentsOfDirectory(atPath: busy) == ["notes.txt"])
        // Replacing it explicitly works, and the old contents are gone.
        try model.exportCheckpoint(to: busy, replacing: true)
        #expect(Set(try fm.contentsOfDirectory(atPath: busy)) == ["config.json", "model.safetensors"])
        // An empty directory is simply filled.
        let empty = dir + "/empty"
        try fm.createDirectory(atPath: empty, withIntermediateDirectories: true)
        try model.exportCheckpoint(to: empty)
        #expect(Set(try fm.contentsOfDirectory(atPath: empty)) == ["config.json", "model.safetensors"])
        // A file, or a missing parent: refused.
        try Data().write(to: URL(fileURLWithPath: dir + "/file"))
        #expect(Self.errorText { try model.exportCheckpoint(to: dir + "/file") }.contains("not a directory"))
        #expect(Self.errorText { try model.exportCheckpoint(to: dir + "/no/such/parent") }.contains("does not exist"))
        // A failure just before the rename leaves neither the target nor temporary files,
        // and a replaced directory keeps its old contents.
        let before = Set(try fm.contentsOfDirectory(atPath: dir))
        #expect(throws: TernaryKitError.self) { try model.exportCheckpoint(to: dir + "/new", replacing: false, failBeforeRename: true) }
        #expect(throws: TernaryKitError.self) { try model.exportCheckpoint(to: busy, replacing: true, failBeforeRename: true) }
        #expect(Set(try fm.contentsOfDirectory(atPath: dir)) == before)
        #expect(try BitNetModel.load(checkpoint: busy).forward([1, 2, 3]) == model.forward([1, 2, 3]))
    }

    @Test func unrepresentableScaleIsRefusedAtExport() throws {
        // Find a γ that is the reciprocal of no Float (about one in six is).
        var g = SeededGenerator(seed: 11)
        var gamma: Float = 0
        repeat { gamma = 1 + g.nextSignedUnitFloat().magnitude } while BitNetModel.storedWeightScale(forGamma: gamma) != nil
        let model = try BitNetModel.random(config: .tiny, seed: 1)
        let layer = try #require(model.module(at: "model.layers.1.mlp.up_proj") as? BitLinear)
        var w = layer.weight
        w.scale = gamma
        try layer.setWeight(w)
        let dir = try Self.temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let text = Self.errorText { try model.exportCheckpoint(to: dir + "/m") }
        #expect(text.contains("\"model.layers.1.mlp.up_proj.weight\""))
        #expect(text.contains("1 layer scale"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/m"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    // MARK: Bad checkpoints

    /// Exports the tiny model to a new directory and rewrites its tensors through `edit`.
    static func corrupted(_ edit: (inout [String: (dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8])]) throws -> Void) throws -> String {
        let dir = try temporaryDirectory("bad")
        try BitNetModel.random(config: .tiny, seed: 77).exportCheckpoint(to: dir + "/m")
        let file = try SafeTensorsFile(path: dir + "/m/model.safetensors")
        var tensors: [String: (dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8])] = [:]
        for name in file.names {
            let info = file.tensors[name]!
            tensors[name] = (info.dtype, info.shape, Array(try file.bytes(name)))
        }
        try edit(&tensors)
        var writer = SafeTensorsWriter()
        for (name, t) in tensors { try writer.add(name, dtype: t.dtype, shape: t.shape, bytes: t.bytes) }
        try writer.write(to: dir + "/m/model.safetensors")
        return dir + "/m"
    }

    static func loadError(_ directory: String) -> String {
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        return errorText { _ = try BitNetModel.load(checkpoint: directory) }
    }

    @Test func missingAndUnexpectedTensorsAreListedTogether() throws {
        let text = Self.loadError(try Self.corrupted { t in
            t["model.norm.weight"] = nil
            t["model.layers.1.mlp.up_proj.weight_scale"] = nil
            t["model.layers.0.self_attn.rotary_emb.inv_freq"] = (.f32, [8], [UInt8](repeating: 0, count: 32))
        })
        #expect(text.contains("2 missing tensors"))
        #expect(text.contains("\"model.norm.weight\"") && text.contains("\"model.layers.1.mlp.up_proj.weight_scale\""))
        #expect(text.contains("1 unexpected tensor") && text.contains("\"model.layers.0.self_attn.rotary_emb.inv_freq\""))
    }

    @Test func wrongShapesAndDTypesAreListed() throws {
        let text = Self.loadError(try Self.corrupted { t in
            t["model.layers.0.self_attn.q_proj.weight"] = (.u8, [64, 16], [UInt8](repeating: 0x55, count: 1024))
            t["model.layers.1.mlp.down_proj.weight"] = (.i8, [16, 160], [UInt8](repeating: 0x55, count: 2560))
            t["model.layers.0.input_layernorm.weight"] = (.f32, [63], [UInt8](repeating: 0, count: 252))
            t["model.layers.1.self_attn.k_proj.weight_scale"] = (.u8, [1], [1])
            t["model.embed_tokens.weight"] = (.i32, [256, 64], [UInt8](repeating: 0, count: 256 * 64 * 4))
        })
        #expect(text.contains("5 tensors with the wrong dtype or shape"))
        #expect(text.contains("\"model.layers.0.self_attn.q_proj.weight\" is U8 [64, 16], expected U8 [16, 64]"))
        #expect(text.contains("\"model.layers.1.mlp.down_proj.weight\" is I8 [16, 160], expected U8 [16, 160]"))
        #expect(text.contains("\"model.layers.0.input_layernorm.weight\" is F32 [63]"))
        #expect(text.contains("\"model.layers.1.self_attn.k_proj.weight_scale\" is U8 [1]"))
        #expect(text.contains("\"model.embed_tokens.weight\" is I32 [256, 64]"))
    }

    @Test func packedCodeThreeAndBadScalesAreListed() throws {
        let text = Self.loadError(try Self.corrupted { t in
            t["model.layers.0.mlp.gate_proj.weight"]!.bytes[70] = 0b1100_0000
            t["model.layers.1.self_attn.v_proj.weight"]!.bytes[0] = 0xFF
            t["model.layers.1.self_attn.o_proj.weight_scale"] = (.f32, [1], Array(withUnsafeBytes(of: Float(0).bitPattern.littleEndian) { Array($0) }))
            t["model.layers.0.mlp.up_proj.weight_scale"] = (.f32, [1], Array(withUnsafeBytes(of: Float.nan.bitPattern.littleEndian) { Array($0) }))
        })
        #expect(text.contains("4 bad projections"))
        #expect(text.contains("\"model.layers.0.mlp.gate_proj.weight\": packed value 3"))
        #expect(text.contains("at packed [1, 6] bits 6–7 (weight row 121, column 6)"))
        #expect(text.contains("\"model.layers.1.self_attn.v_proj.weight\": packed value 3"))
        #expect(text.contains("\"model.layers.1.self_attn.o_proj.weight_scale\" = 0.0 is not a positive finite weight scale"))
        #expect(text.contains("\"model.layers.0.mlp.up_proj.weight_scale\" = nan"))
    }

    @Test func tiedHeadTensorMustMatchTheEmbedding() throws {
        let same = try Self.corrupted { t in t["lm_head.weight"] = t["model.embed_tokens.weight"] }
        defer { try? FileManager.default.removeItem(atPath: (same as NSString).deletingLastPathComponent) }
        _ = try BitNetModel.load(checkpoint: same)
        let text = Self.loadError(try Self.corrupted { t in
            var head = t["model.embed_tokens.weight"]!
            head.bytes[3 * head.dtype.byteSize] ^= 1
            t["lm_head.weight"] = head
        })
        #expect(text.contains("\"lm_head.weight\" differs from \"model.embed_tokens.weight\" (first at element 3)"))
    }

    @Test func missingFilesAreNamed() throws {
        let dir = try Self.temporaryDirectory("files")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(Self.errorText { _ = try BitNetModel.load(checkpoint: dir + "/absent") }.contains("no such checkpoint directory"))
        #expect(Self.errorText { _ = try BitNetModel.load(checkpoint: dir) }.contains("no config.json"))
        try FileManager.default.copyItem(atPath: Self.fixture + "/config.json", toPath: dir + "/config.json")
        #expect(Self.errorText { _ = try BitNetModel.load(checkpoint: dir) }.contains("holds neither model.safetensors nor model.safetensors.index.json"))
        #expect(Self.errorText { _ = try BitNetModel.load(checkpoint: dir + "/config.json") }.contains("not a directory"))
        // A truncated model file: the reader's error, no crash.
        let bytes = try Data(contentsOf: URL(fileURLWithPath: Self.fixture + "/model.safetensors"))
        try bytes.prefix(bytes.count / 2).write(to: URL(fileURLWithPath: dir + "/model.safetensors"))
        #expect(Self.errorText { _ = try BitNetModel.load(checkpoint: dir) }.contains("model.safetensors"))
    }

    /// Random damage to config.json and to the tensor data of a valid checkpoint: every load
    /// either succeeds or throws a `TernaryKitError` naming a file — none traps.
    @Test func randomlyDamagedCheckpointsNeverCrash() throws {
        let dir = try Self.temporaryDirectory("fuzz")
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try BitNetModel.random(config: .tiny, seed: 31).exportCheckpoint(to: dir + "/good")
        let config = try Data(contentsOf: URL(fileURLWithPath: dir + "/good/config.json"))
        let model = try Data(contentsOf: URL(fileURLWithPath: dir + "/good/model.safetensors"))
        let headerEnd = 8 + Int(model.prefix(8).withUnsafeBytes { $0.loadUnaligned(as: UInt64.self) })
        let fm = FileManager.default
        var g = SeededGenerator(seed: 2026)
        var loaded = 0, refused = 0
        let digits = Array("0123456789-.e".utf8)
        for round in 0..<120 {
            let path = dir + "/case\(round)"
            try fm.createDirectory(atPath: path, withIntermediateDirectories: true)
            var c = [UInt8](config), m = [UInt8](model)
            if round % 2 == 0 {
                // Change one to three characters of config.json, mostly into digits and signs.
                for _ in 0...(Int(g.next() % 3)) {
                    let i = Int(g.next() % UInt64(c.count))
                    c[i] = g.next() % 4 == 0 ? UInt8(truncatingIfNeeded: g.next()) : digits[Int(g.next() % UInt64(digits.count))]
                }
            } else {
                // Overwrite a few data bytes (packed weights, scales, norms, embedding).
                for _ in 0..<(1 + Int(g.next() % 8)) {
                    m[headerEnd + Int(g.next() % UInt64(m.count - headerEnd))] = UInt8(truncatingIfNeeded: g.next())
                }
            }
            try Data(c).write(to: URL(fileURLWithPath: path + "/config.json"))
            try Data(m).write(to: URL(fileURLWithPath: path + "/model.safetensors"))
            do {
                let model = try BitNetModel.load(checkpoint: path, kvCacheCapacity: 4)
                loaded += 1
                // A damaged but loadable config may have a tiny vocabulary or context: an error then, no trap.
                _ = try? model.forward([1, 2, 3])
            } catch let error as TernaryKitError {
                if case .file = error { refused += 1 } else { Issue.record("round \(round): not a file error: \(error)") }
            }
            try? fm.removeItem(atPath: path)
        }
        #expect(loaded > 0 && refused > 0, "loaded \(loaded), refused \(refused)")
    }

    // MARK: config.json

    static let fixtureConfig = try! String(contentsOfFile: fixture + "/config.json", encoding: .utf8)

    static func configError(_ text: String) -> String {
        errorText { _ = try BitNetConfig.parse(Data(text.utf8)) }
    }

    static func replacing(_ a: String, _ b: String) -> String {
        precondition(fixtureConfig.contains(a), a)
        return fixtureConfig.replacingOccurrences(of: a, with: b)
    }

    @Test func badConfigsAreRefusedWithTheirReason() throws {
        let cases: [(String, String)] = [
            ("{\"model_type\": \"bitnet\",", "not valid JSON"),
            ("[1, 2]", "not a JSON object"),
            (Self.replacing("\"hidden_size\": 64", "\"hidden_size\": \"64\""), "field \"hidden_size\": expected an integer"),
            (Self.replacing("\"tie_word_embeddings\": true", "\"tie_word_embeddings\": 1"), "field \"tie_word_embeddings\": expected true or false"),
            (Self.replacing("\"model_type\": \"bitnet\"", "\"model_type\": \"llama\""), "model_type \"llama\" is not \"bitnet\""),
            (Self.replacing("\"linear_class\": \"bitlinear\"", "\"linear_class\": \"autobitlinear\""), "\"autobitlinear\" is not supported"),
            (Self.replacing("\"linear_class\": \"bitlinear\"", "\"linear_class\": \"bitlinear2\""), "linear_class \"bitlinear2\" is unknown"),
            (Self.replacing("\"quant_method\": \"bitnet\"", "\"quant_method\": \"gptq\""), "quant_method is \"gptq\""),
            (Self.replacing("\"quantization_mode\": \"offline\"", "\"quantization_mode\": \"offline\", \"use_rms_norm\": true"), "use_rms_norm"),
            (Self.replacing("\"quantization_mode\": \"offline\"", "\"quantization_mode\": \"offline\", \"modules_to_not_convert\": [\"lm_head\", \"model.layers.0.mlp\"]"),
             "\"model.layers.0.mlp\""),
            (Self.replacing("\"quantization_mode\": \"offline\"", "\"quantization_mode\": \"sometimes\""), "quantization_mode \"sometimes\""),
            (Self.replacing(",\n  \"quantization_config\": {\n    \"quant_method\": \"bitnet\",\n    \"linear_class\": \"bitlinear\",\n    \"quantization_mode\": \"offline\"\n  }", ""),
             "no \"quantization_config\""),
            (Self.replacing("\"num_key_value_heads\": 2", "\"num_key_value_heads\": 3"), "not a multiple of num_key_value_heads 3"),
            (Self.replacing("\"hidden_size\": 64", "\"hidden_size\": 64, \"head_dim\": 32"), "head_dim 32"),
            (Self.replacing("\"attention_bias\": false", "\"attention_bias\": true"), "attention_bias"),
            (Self.replacing("\"rope_theta\": 10000.0", "\"rope_theta\": 10000.0, \"rope_scaling\": {\"type\": \"linear\"}"), "rope_scaling"),
            (Self.replacing("\"hidden_act\": \"relu2\"", "\"hidden_act\": \"silu\""), "hidden_act 'silu'"),
            (Self.replacing("\"vocab_size\": 256", "\"vocab_size\": -256"), "sizes must be positive"),
            (Self.replacing("\"num_hidden_layers\": 2", "\"num_hidden_layers\": 1000000000"), "beyond 4096"),
            (Self.replacing("\"eos_token_id\": 2", "\"eos_token_id\": 999"), "eos_token_id 999 is outside"),
            (Self.replacing("\"rms_norm_eps\": 1e-05", "\"rms_norm_eps\": 1e300"), "rms_norm_eps"),
            (Self.replacing("\"hidden_size\": 64", "\"hidden_size\": 1e40"), "field \"hidden_size\""),
            (Self.replacing("\"vocab_size\": 256", "\"vocab_size\": 256.5"), "field \"vocab_size\""),
            (Self.replacing("\"bos_token_id\": 1", "\"bos_token_id\": \"one\""), "field \"bos_token_id\": expected an integer"),
            (Self.replacing("\"eos_token_id\": 2", "\"eos_token_id\": [2, \"x\"]"), "eos_token_id"),
        ]
        for (text, reason) in cases {
            let message = Self.configError(text)
            #expect(message.hasPrefix("config.json: "), "\(message)")
            #expect(message.contains(reason), "expected '\(reason)' in: \(message)")
            #expect(!message.contains("\n"), "one line: \(message)")
        }
    }

    @Test func configDefaultsAreTransformers() throws {
        // Absent fields take transformers' BitNetConfig defaults (tie_word_embeddings false!).
        let c = try BitNetConfig.parse(Data("{\"model_type\": \"bitnet\", \"quantization_config\": {\"quant_method\": \"bitnet\"}}".utf8))
        #expect(c.hiddenSize == 2560 && c.intermediateSize == 6912 && c.numHiddenLayers == 30)
        #expect(c.numAttentionHeads == 20 && c.numKeyValueHeads == 5 && c.vocabSize == 128_256)
        #expect(c.ropeTheta == 500_000 && c.maxPositionEmbeddings == 2048 && !c.tieWordEmbeddings)
        #expect(c.bosTokenId == 128_000 && c.eosTokenIds == [128_001])
        let nulls = try BitNetConfig.parse(Data(Self.replacing("\"eos_token_id\": 2", "\"eos_token_id\": null")
            .replacingOccurrences(of: "\"bos_token_id\": 1", with: "\"bos_token_id\": null")
            .replacingOccurrences(of: "\"num_key_value_heads\": 2", with: "\"num_key_value_heads\": null").utf8))
        #expect(nulls.eosTokenIds.isEmpty && nulls.bosTokenId == -1 && nulls.numKeyValueHeads == 4)
        let list = try BitNetConfig.parse(Data(Self.replacing("\"eos_token_id\": 2", "\"eos_token_id\": [2, 3]").utf8))
        #expect(list.eosTokenIds == [2, 3])
    }

    @Test func writtenConfigParsesBackToTheSameConfig() throws {
        var odd = BitNetConfig.tiny
        odd.rmsNormEps = 1.234_567e-6
        odd.ropeTheta = 123_456.789
        odd.eosTokenIds = [2, 7]
        odd.tieWordEmbeddings = false
        odd.bosTokenId = -1
        for config in [BitNetConfig.tiny, BitNetConfig.bitnet2B4T, odd] {
            let text = BitNetConfig.json(for: config)
            #expect(try JSONSerialization.jsonObject(with: Data(text.utf8)) is [String: Any])
            #expect(try BitNetConfig.parse(Data(text.utf8)) == config)
        }
    }
}
