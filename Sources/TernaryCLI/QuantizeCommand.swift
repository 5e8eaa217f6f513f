import ArgumentParser
import Backends
import BitNet
import Foundation
import SafeTensors
import TensorCore

/// `ternary quantize`: float weights of a safetensors file ternarized into the Hugging Face
/// BitNet layout (packed `U8 [out/4, in]` + `NAME_scale = 1/γ`), optionally with a rank-r
/// Float correction of what ternarization loses (`NAME_lowrank_a` / `NAME_lowrank_b`).
struct QuantizeCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "quantize",
        abstract: "Ternarize the 2-D float tensors of a safetensors file (BitNet absmean), with an optional low-rank correction.",
        discussion: """
            Every 2-D F32/F16/BF16 tensor whose name matches --tensors (a Swift regex searched \
            in the name; anchor it with ^...$ for whole names; default: all of them) becomes \
            NAME (U8 [out/4, in], the four-plane packing of Hugging Face BitNet checkpoints) and \
            NAME_scale (1/γ, BF16 when that reloads exactly, else F32). With --rank R > 0 it \
            also gets NAME_lowrank_a (F32 [out, R]) and NAME_lowrank_b (F32 [R, in]), the best \
            rank-R approximation of W − γT (R is lowered to min(out, in) when larger). Every \
            other tensor and the metadata are copied unchanged. The file is written atomically; \
            nothing is written when a tensor cannot be quantized (out not a multiple of 4, \
            NaN or infinity). With --json, one object per quantized tensor.
            """
    )

    @Option(name: .customLong("in"), help: "Input .safetensors file.")
    var input: String

    @Option(help: "Output .safetensors file (not the input).")
    var out: String

    @Option(help: "Rank of the low-rank Float correction (0: none).")
    var rank: Int = 0

    @Option(help: "Regex selecting tensors by name (default: every 2-D float tensor).")
    var tensors: String?

    @Option(help: "SVD method: gesvdx (default), gesdd, gesvd or randomized.")
    var method: SVDMethodName = .gesvdx

    @Option(help: "Thread count of the SVD (OpenBLAS / LAPACK).")
    var threads: Int = 1

    @Flag(help: "Print one JSON object per quantized tensor: name, out, in, gamma, relative_error, relative_error_corrected, rank.")
    var json = false

    func validate() throws {
        if rank < 0 { throw ValidationError("--rank must be at least 0, got \(rank)") }
        if threads < 1 { throw ValidationError("--threads must be at least 1, got \(threads)") }
        if threads > 1024 { throw ValidationError("--threads must be at most 1024, got \(threads)") }
        if input.isEmpty || out.isEmpty { throw ValidationError("--in and --out must name files") }
        if Self.sameFile(input, out) { throw ValidationError("--out must differ from --in (\(out))") }
        if let tensors { _ = try Self.regex(tensors) }
    }

    /// The compiled `--tensors` pattern, or a `ValidationError` with the parser's message.
    static func regex(_ pattern: String) throws -> Regex<AnyRegexOutput> {
        do { return try Regex(pattern) } catch { throw ValidationError("--tensors: invalid regex \"\(pattern)\": \(error)") }
    }

    /// True when both paths name the same file: the same standardized path (symlinks resolved),
    /// or the same device and inode when both exist.
    static func sameFile(_ a: String, _ b: String) -> Bool {
        let ua = URL(fileURLWithPath: a).standardizedFileURL.resolvingSymlinksInPath()
        let ub = URL(fileURLWithPath: b).standardizedFileURL.resolvingSymlinksInPath()
        if ua.path == ub.path { return true }
        let fm = FileManager.default
        guard let x = try? fm.attributesOfItem(atPath: a), let y = try? fm.attributesOfItem(atPath: b),
              let ix = x[.systemFileNumber] as? Int, let iy = y[.systemFileNumber] as? Int,
              let dx = x[.systemNumber] as? Int, let dy = y[.systemNumber] as? Int else { return false }
        return ix == iy && dx == dy
    }

    /// One quantized tensor, as `--json` prints it.
    struct Row: Encodable {
        var name: String
        var out: Int
        var `in`: Int
        var gamma: Float
        var relativeError: Double
        var relativeErrorCorrected: Double
        var rank: Int

        enum CodingKeys: String, CodingKey {
            case name, out, `in`, gamma
            case relativeError = "relative_error"
            case relativeErrorCorrected = "relative_error_corrected"
            case rank
        }
    }

    /// Suffixes of the tensors a quantized `NAME` adds.
    static let scaleSuffix = BitNetCheckpoint.scaleSuffix
    static let lowRankSuffixes = ["_lowrank_a", "_lowrank_b"]

    /// The tensors to quantize, in name order: 2-D F32/F16/BF16 whose name `regex` matches.
    /// - Throws: `.invalidArgument` listing every selected tensor whose `out` is not a multiple
    ///   of 4 or whose added names already exist; when nothing is selected.
    static func select(_ file: SafeTensorsFile, pattern: String?, rank: Int) throws -> [(name: String, out: Int, in: Int)] {
        let regex = try pattern.map { try Self.regex($0) }
        let floatTypes: Set<SafeTensorsDType> = [.f32, .f16, .bf16]
        var selected: [(name: String, out: Int, in: Int)] = []
        var problems: [String] = []
        for name in file.names {
            let info = file.tensors[name]!
            guard info.shape.count == 2, floatTypes.contains(info.dtype) else { continue }
            if let regex, (try? regex.firstMatch(in: name)) == nil { continue }
            let (o, i) = (info.shape[0], info.shape[1])
            if o < 1 || i < 1 {
                problems.append("\"\(name)\" is \(o)×\(i): empty")
            } else if o % 4 != 0 {
                problems.append("\"\(name)\" has \(o) rows (out), not a multiple of 4 as the packed BitNet layout [out/4, in] needs")
            }
            let added = [name + scaleSuffix] + (rank > 0 ? lowRankSuffixes.map { name + $0 } : [])
            for a in added where file.tensors[a] != nil {
                problems.append("\"\(name)\" would add \"\(a)\", which the input already holds")
            }
            selected.append((name, o, i))
        }
        if !problems.isEmpty {
            throw TernaryKitError.invalidArgument("cannot quantize \(problems.count) tensor(s): " + problems.joined(separator: "; "))
        }
        if selected.isEmpty {
            throw TernaryKitError.invalidArgument(
                "no 2-D F32/F16/BF16 tensor\(pattern.map { " matches --tensors \"\($0)\"" } ?? " in the file")")
        }
        return selected
    }

    /// Quantizes `input` into `out`; returns one row per quantized tensor. Progress and rank
    /// notes go to stderr. Nothing is written unless every tensor succeeds.
    static func quantize(input: String, out: String, rank: Int, pattern: String?, method: SVDMethod, threads: Int,
                         progress: inout Progress, note: (String) -> Void) throws -> [Row] {
        let file = try SafeTensorsFile(path: input)
        let selected = try select(file, pattern: pattern, rank: rank)
        let chosen = Set(selected.map(\.name))
        let context = try ComputeContext(threads: threads)
        var writer = SafeTensorsWriter(metadata: file.metadata)
        var rows: [Row] = []
        for name in file.names where !chosen.contains(name) {
            let info = file.tensors[name]!
            try writer.add(name, dtype: info.dtype, shape: info.shape, bytes: [UInt8](file.bytes(name)))
        }
        for t in selected {
            progress.step("\(t.name) \(t.out)×\(t.in)")
            let w = try file.floats(t.name)
            let (ternary, correction) = try Ternarization.ternarize(w, outFeatures: t.out, inFeatures: t.in, rank: rank, method: method,
                                                                     context: context, name: t.name)
            if correction.clamped {
                note("note: \"\(t.name)\": rank \(rank) lowered to \(correction.rank) = min(out, in)")
            }
            let m = ternary.matrix
            try writer.add(t.name, dtype: .u8, shape: BitNetPacking.packedShape(outFeatures: t.out, inFeatures: t.in, name: t.name),
                           bytes: BitNetPacking.pack(m, name: t.name))
            let (ws, dtype) = BitNetModel.storedWeightScale(forGamma: m.scale) ?? (1 / m.scale, .f32)
            if BitNetModel.storedWeightScale(forGamma: m.scale) == nil {
                note("note: \"\(t.name)\": no weight_scale reloads to exactly γ = \(m.scale); stored the nearest F32 1/γ = \(ws)")
            }
            try writer.add(t.name + scaleSuffix, floats: [ws], shape: [1], as: dtype)
            let c = correction.correction
            if c.rank > 0 {
                try writer.add(t.name + lowRankSuffixes[0], floats: c.a, shape: [t.out, c.rank], as: .f32)
                try writer.add(t.name + lowRankSuffixes[1], floats: c.b, shape: [c.rank, t.in], as: .f32)
            }
            rows.append(Row(name: t.name, out: t.out, in: t.in, gamma: m.scale, relativeError: ternary.relativeError,
                            relativeErrorCorrected: correction.correctedRelativeError, rank: c.rank))
        }
        progress.finish()
        try writer.write(to: out)
        return rows
    }

    func run() throws {
        OpenBLASCore.reexecWithBestCoreIfNeeded()
        let t0 = MonotonicClock.seconds()
        var progress = Progress(total: 0, quiet: true)
        if !json, let file = try? SafeTensorsFile(path: input), let n = try? Self.select(file, pattern: tensors, rank: rank).count {
            progress = Progress(total: n, quiet: false)
        }
        let rows = try Self.quantize(input: input, out: out, rank: rank, pattern: tensors, method: method.method, threads: threads,
                                     progress: &progress) { FileHandle.standardError.write(Data(($0 + "\n").utf8)) }
        let seconds = MonotonicClock.seconds() - t0
        if json {
            for row in rows { try printJSON(row) }
            return
        }
        print(Self.table(rows))
        let bytes = (try? FileManager.default.attributesOfItem(atPath: out)[.size] as? Int) ?? 0
        print(String(format: "wrote %@: %d tensor(s) quantized (rank %d, %@, %d thread(s)), %.2f MB, in %.2f s",
                     out, rows.count, rank, method.rawValue, threads, Double(bytes) / 1e6, seconds))
    }

    /// The readable table: name, shape, γ, error before and after the correction, rank.
    static func table(_ rows: [Row]) -> String {
        let width = max(4, rows.map(\.name.count).max() ?? 4)
        func pad(_ s: String, _ n: Int) -> String { s.count >= n ? s : s + String(repeating: " ", count: n - s.count) }
        func lpad(_ s: String, _ n: Int) -> String { s.count >= n ? s : String(repeating: " ", count: n - s.count) + s }
        var lines = [pad("name", width) + "  " + pad("shape", 13) + "  " + lpad("gamma", 11) + "  " + lpad("rel.err", 8)
                     + "  " + lpad("corrected", 9) + "  " + lpad("rank", 5)]
        for r in rows {
            lines.append(pad(r.name, width) + "  " + pad("\(r.out)x\(r.in)", 13) + "  " + lpad(String(format: "%.5g", r.gamma), 11)
                         + "  " + lpad(String(format: "%.4f", r.relativeError), 8) + "  "
                         + lpad(String(format: "%.4f", r.relativeErrorCorrected), 9) + "  " + lpad("\(r.rank)", 5))
        }
        return lines.joined(separator: "\n")
    }
}

/// `--method`: the SVD driver of the low-rank correction (`SVDMethod`).
enum SVDMethodName: String, CaseIterable, ExpressibleByArgument {
    case gesvdx, gesdd, gesvd, randomized

    var method: SVDMethod {
        switch self {
        case .gesvdx: return .gesvdx
        case .gesdd: return .gesdd
        case .gesvd: return .gesvd
        case .randomized: return .randomized()
        }
    }
}
