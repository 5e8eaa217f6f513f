import Foundation
import Layers
import SafeTensors
import TensorCore

/// What `BitNetModel.exportCheckpoint` wrote.
public struct BitNetExportSummary: Sendable {
    /// The checkpoint directory.
    public var directory: String
    /// Tensors in `model.safetensors`.
    public var tensorCount: Int
    /// Bytes of `model.safetensors`.
    public var safetensorsBytes: Int
    /// Float tensors (embedding, norms) stored as BF16 because every value is a BF16 value.
    public var bfloat16Tensors: Int
    /// Float tensors stored as F32 because some value is not a BF16 value.
    public var float32Tensors: Int
}

extension BitNetModel {
    /// Writes this model as a Hugging Face BitNet b1.58 checkpoint directory (`config.json` and
    /// `model.safetensors`) that `load(checkpoint:)` — and `transformers` — read back to the same
    /// numbers, so the reloaded model's logits are bit-identical.
    ///
    /// - Projections: `U8 [out/4, in]` packed weights and `weight_scale = 1/γ` (the
    ///   `transformers` "bitlinear" convention, see `BitNetCheckpoint`), stored as BF16 when a
    ///   BF16 value reloads to exactly γ (always true for a γ that came from a BF16 checkpoint
    ///   and for the random presets), else as an F32 value that does; a γ with neither is an
    ///   error rather than a silently different model.
    /// - Embedding, norms, untied LM head and the factors of a projection's low-rank correction
    ///   (`P.weight_lowrank_a` / `_b`, parameters of a `BitLinear` with a `correction`): BF16
    ///   when every value is a BF16 value (no rounding), else F32.
    ///
    /// The directory is built under a temporary name next to `directory` and renamed into place
    /// at the end, so a failure never leaves a partial checkpoint. An existing empty directory is
    /// replaced; a non-empty one only when `replacing` is true (its old contents are removed
    /// only after the new checkpoint is in place).
    /// - Throws: `.invalidValue` listing every layer whose γ cannot be stored exactly;
    ///   `TernaryKitError.file` for an existing non-empty directory without `replacing`, a path
    ///   that is a file, a missing parent directory, or a failed write or rename.
    @discardableResult
    public func exportCheckpoint(to directory: String, replacing: Bool = false) throws -> BitNetExportSummary {
        try exportCheckpoint(to: directory, replacing: replacing, failBeforeRename: false)
    }

    /// `exportCheckpoint` with a test hook that fails after everything is written, just before
    /// the directory is renamed into place.
    func exportCheckpoint(to directory: String, replacing: Bool, failBeforeRename: Bool) throws -> BitNetExportSummary {
        var writer = SafeTensorsWriter(metadata: ["format": "pt", "writer": "TernaryKit"])
        var bf16 = 0, f32 = 0
        var unrepresentable: [String] = []
        // The tree's parameter keys are the checkpoint's names: no layer class is named here.
        for (key, spec) in namedParameterSpecs() {
            guard let value = parameter(key: key) else {
                throw TernaryKitError.invalidArgument("cannot export \"\(key)\": the layer does not return its value")
            }
            switch (spec, value) {
            case (.ternary(let out, let inn), .ternary(let m)):
                try writer.add(key, dtype: .u8, shape: BitNetPacking.packedShape(outFeatures: out, inFeatures: inn, name: key),
                               bytes: BitNetPacking.pack(m, name: key))
                switch Self.storedWeightScale(forGamma: m.scale) {
                case .some((let ws, let dtype)): try writer.add(key + BitNetCheckpoint.scaleSuffix, floats: [ws], shape: [1], as: dtype)
                case .none: unrepresentable.append("\"\(key)\" (γ = \(m.scale))")
                }
            case (.floats(let shape), .floats(let values)):
                try addFloats(&writer, key, values, shape: shape, &bf16, &f32)
            default:
                throw TernaryKitError.invalidArgument("cannot export \"\(key)\": its value is not the declared \(spec)")
            }
        }
        if !unrepresentable.isEmpty {
            let shown = unrepresentable.prefix(BitNetCheckpoint.listLimit).joined(separator: ", ")
            throw TernaryKitError.invalidValue(
                "\(unrepresentable.count) layer scale(s) γ have no weight_scale w (BF16 or F32) with 1/w == γ, so the checkpoint "
                + "could not reload the same model: \(shown)\(unrepresentable.count > BitNetCheckpoint.listLimit ? ", and more" : ""). "
                + "Use γ = 1/w for a representable w (as checkpoints and the random presets do)")
        }
        var bytes = 0
        let path = URL(fileURLWithPath: directory).standardizedFileURL.path
        let configText = BitNetConfig.json(for: config, torchDType: f32 == 0 ? "bfloat16" : "float32")
        try AtomicFile.writeDirectory(at: path, replacing: replacing) { temporary in
            try AtomicFile.write(to: temporary + "/" + BitNetConfig.fileName) { try $0.write(Array(configText.utf8)) }
            let modelPath = temporary + "/" + SafeTensorsCollection.singleFileName
            try writer.write(to: modelPath)
            bytes = (try? FileManager.default.attributesOfItem(atPath: modelPath)[.size] as? Int) ?? 0
            if failBeforeRename { throw TernaryKitError.file(path: path, problem: "simulated failure before the rename") }
        }
        return BitNetExportSummary(directory: path, tensorCount: writer.names.count, safetensorsBytes: bytes,
                                   bfloat16Tensors: bf16, float32Tensors: f32)
    }

    /// The `weight_scale` to store for γ: BF16 when a BF16 value reloads (`1/w`) to exactly γ,
    /// else F32 when one does (`BitNetPacking.exactWeightScale`), else nil. `ternary quantize`
    /// stores its scales the same way.
    public static func storedWeightScale(forGamma gamma: Float) -> (Float, SafeTensorsDType)? {
        guard gamma.isFinite, gamma > 0 else { return nil }
        let b = HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits(1 / gamma))
        if b.isFinite, b > 0, BitNetPacking.gamma(fromWeightScale: b) == gamma { return (b, .bf16) }
        if let w = BitNetPacking.exactWeightScale(forGamma: gamma), BitNetPacking.gamma(fromWeightScale: w) == gamma { return (w, .f32) }
        return nil
    }

    /// Adds Float values as BF16 when that is exact, else as F32.
    private func addFloats(_ writer: inout SafeTensorsWriter, _ name: String, _ values: [Float], shape: [Int],
                           _ bf16: inout Int, _ f32: inout Int) throws {
        let exact = values.allSatisfy { v in
            v.isNaN || HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits(v)).bitPattern == v.bitPattern
        }
        try writer.add(name, floats: values, shape: shape, as: exact ? .bf16 : .f32)
        if exact { bf16 += 1 } else { f32 += 1 }
    }
}
