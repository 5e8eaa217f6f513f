#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
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
    /// - Embedding, norms, untied LM head: BF16 when every value is a BF16 value (no rounding),
    ///   else F32.
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
        let target = URL(fileURLWithPath: directory).standardizedFileURL
        let path = target.path
        let parent = target.deletingLastPathComponent().path
        let fm = FileManager.default
        var isDirectory: ObjCBool = false
        guard fm.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TernaryKitError.file(path: path, problem: "the parent directory \(parent) does not exist")
        }
        let existing = try Self.existingDirectoryState(path)
        if existing == .nonEmpty && !replacing {
            throw TernaryKitError.file(path: path, problem: "exists and is not empty (choose another directory, or replace it explicitly)")
        }

        var writer = SafeTensorsWriter(metadata: ["format": "pt", "writer": "TernaryKit"])
        var bf16 = 0, f32 = 0
        var unrepresentable: [String] = []
        for (modulePath, module) in namedModules() {
            switch module {
            case let layer as BitLinear:
                let name = modulePath + ".weight"
                try writer.add(name, dtype: .u8, shape: BitNetPacking.packedShape(outFeatures: layer.outFeatures,
                                                                                  inFeatures: layer.inFeatures, name: name),
                               bytes: BitNetPacking.pack(layer.weight, name: name))
                switch Self.storedWeightScale(forGamma: layer.weight.scale) {
                case .some((let ws, let dtype)): try writer.add(modulePath + ".weight_scale", floats: [ws], shape: [1], as: dtype)
                case .none: unrepresentable.append("\"\(modulePath)\" (γ = \(layer.weight.scale))")
                }
            case let norm as RMSNorm:
                try addFloats(&writer, modulePath + ".weight", norm.weight, shape: [norm.dimensions], &bf16, &f32)
            case let table as Embedding:
                try addFloats(&writer, modulePath + ".weight", table.weight, shape: [table.vocabularySize, table.dimensions], &bf16, &f32)
            case let head as LMHead:
                if !head.tied {
                    try addFloats(&writer, modulePath + ".weight", head.weight, shape: [head.vocabularySize, head.dimensions], &bf16, &f32)
                }
            default:
                guard module.parameterNames.isEmpty else {
                    throw TernaryKitError.invalidArgument("cannot export \(module.typeName) at \"\(modulePath)\": no checkpoint form for its parameters")
                }
            }
        }
        if !unrepresentable.isEmpty {
            let shown = unrepresentable.prefix(BitNetCheckpoint.listLimit).joined(separator: ", ")
            throw TernaryKitError.invalidValue(
                "\(unrepresentable.count) layer scale(s) γ have no weight_scale w (BF16 or F32) with 1/w == γ, so the checkpoint "
                + "could not reload the same model: \(shown)\(unrepresentable.count > BitNetCheckpoint.listLimit ? ", and more" : ""). "
                + "Use γ = 1/w for a representable w (as checkpoints and the random presets do)")
        }

        // Build the directory under a temporary name, then rename it into place.
        let temporary = parent + "/." + target.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
        do { try fm.createDirectory(atPath: temporary, withIntermediateDirectories: false) } catch {
            throw TernaryKitError.file(path: temporary, problem: "cannot create the temporary directory: \(error.localizedDescription)")
        }
        var placed = false
        defer { if !placed { try? fm.removeItem(atPath: temporary) } }
        let configText = BitNetCheckpointConfig.json(for: config, torchDType: f32 == 0 ? "bfloat16" : "float32")
        try Self.writeFile(temporary + "/" + BitNetCheckpointConfig.fileName, Array(configText.utf8))
        let modelPath = temporary + "/" + SafeTensorsCollection.singleFileName
        try writer.write(to: modelPath)
        let bytes = (try? fm.attributesOfItem(atPath: modelPath)[.size] as? Int) ?? 0
        if failBeforeRename { throw TernaryKitError.file(path: path, problem: "simulated failure before the rename") }
        try Self.place(temporary, at: path, existing: existing)
        placed = true
        return BitNetExportSummary(directory: path, tensorCount: writer.names.count, safetensorsBytes: bytes,
                                   bfloat16Tensors: bf16, float32Tensors: f32)
    }

    /// The `weight_scale` to store for γ: BF16 when a BF16 value reloads (`1/w`) to exactly γ,
    /// else F32 when one does (`BitNetPacking.exactWeightScale`), else nil.
    static func storedWeightScale(forGamma gamma: Float) -> (Float, SafeTensorsDType)? {
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

    enum DirectoryState { case absent, empty, nonEmpty }

    static func existingDirectoryState(_ path: String) throws -> DirectoryState {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return .absent }
        guard isDirectory.boolValue else { throw TernaryKitError.file(path: path, problem: "exists and is not a directory") }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? ["?"]
        return contents.isEmpty ? .empty : .nonEmpty
    }

    /// Writes `bytes` to a new file and flushes it to disk.
    static func writeFile(_ path: String, _ bytes: [UInt8]) throws {
        func fail(_ step: String) -> TernaryKitError { .file(path: path, problem: "\(step): \(String(cString: strerror(errno)))") }
        let fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw fail("cannot create") }
        var ok = false
        defer { if !ok { close(fd) } }
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write(fd, $0.baseAddress! + offset, bytes.count - offset) }
            if n < 0 {
                if errno == EINTR { continue }
                throw fail("write failed")
            }
            offset += n
        }
        guard fsync(fd) == 0 else { throw fail("fsync failed") }
        ok = true
        guard close(fd) == 0 else { throw fail("close failed") }
    }

    /// Renames the finished `temporary` directory to `path`. A non-empty old directory is first
    /// moved aside and removed only once the new one is in place (moved back on failure).
    static func place(_ temporary: String, at path: String, existing: DirectoryState) throws {
        func fail(_ step: String) -> TernaryKitError { .file(path: path, problem: "\(step): \(String(cString: strerror(errno)))") }
        // Re-check: the directory may have changed while the checkpoint was being written.
        let now = try existingDirectoryState(path)
        guard now != .nonEmpty || existing == .nonEmpty else {
            throw TernaryKitError.file(path: path, problem: "was filled by someone else during the export; not replaced")
        }
        if now != .nonEmpty {
            // rename(2) replaces an empty directory atomically.
            guard rename(temporary, path) == 0 else { throw fail("cannot rename the temporary directory into place") }
        } else {
            let aside = temporary.replacingOccurrences(of: ".tmp-", with: ".old-")
            guard rename(path, aside) == 0 else { throw fail("cannot move the old directory aside") }
            guard rename(temporary, path) == 0 else {
                let error = fail("cannot rename the temporary directory into place")
                _ = rename(aside, path)
                throw error
            }
            try? FileManager.default.removeItem(atPath: aside)
        }
        let parent = (path as NSString).deletingLastPathComponent
        let dirFD = open(parent.isEmpty ? "." : parent, O_RDONLY | O_CLOEXEC)
        if dirFD >= 0 { _ = fsync(dirFD); close(dirFD) }
    }
}
