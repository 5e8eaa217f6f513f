import Foundation
import TensorCore

/// The tensors of a checkpoint directory, whether in one `model.safetensors` or sharded as
/// `model.safetensors.index.json` plus shard files (the Hugging Face layout).
///
/// A model loader asks for tensors by name without caring which file holds them. The index is
/// validated as strictly as a header: it must be a JSON object whose `weight_map` maps each tensor
/// name to a shard file name (a plain name inside the directory: no `/`, no `..`); every mapped
/// tensor must be in its shard; no tensor may be in two shards, and no shard may hold a tensor the
/// map does not list. Errors are `TernaryKitError.file` naming the index or shard and the tensor.
public struct SafeTensorsCollection: Sendable {
    /// The checkpoint directory.
    public let directory: String
    /// The opened files, in file-name order (one when the checkpoint is not sharded).
    public let files: [SafeTensorsFile]
    /// Which file (index into `files`) holds each tensor, by the name's bytes.
    private let location: [TensorName: Int]

    /// The file name of a single-file checkpoint.
    public static let singleFileName = "model.safetensors"
    /// The file name of a sharded checkpoint's index.
    public static let indexFileName = "model.safetensors.index.json"

    /// Opens `directory/model.safetensors.index.json` and its shards when the index exists,
    /// otherwise `directory/model.safetensors`.
    public init(directory: String) throws {
        self.directory = directory
        let indexPath = (directory as NSString).appendingPathComponent(Self.indexFileName)
        let singlePath = (directory as NSString).appendingPathComponent(Self.singleFileName)
        let directoryKind = try FileKind.of(directory)
        guard directoryKind == .directory else {
            throw TernaryKitError.file(path: directory, problem: directoryKind == .absent ? "no such checkpoint directory"
                                       : "\(directoryKind.phrase), expected a checkpoint directory")
        }
        guard try FileKind.of(indexPath) != .absent else {
            guard try FileKind.of(singlePath) != .absent else {
                throw TernaryKitError.file(path: directory, problem: "holds neither \(Self.singleFileName) nor \(Self.indexFileName)")
            }
            let file = try SafeTensorsFile(path: singlePath)
            files = [file]
            location = file.tensors.mapValues { _ in 0 }
            return
        }
        let weightMap = try Self.readWeightMap(indexPath)
        let shardNames = Set(weightMap.values).sorted()
        var files: [SafeTensorsFile] = []
        var location: [TensorName: Int] = [:]
        for (i, shard) in shardNames.enumerated() {
            let file = try SafeTensorsFile(path: (directory as NSString).appendingPathComponent(shard.string))
            for name in file.tensors.keys.sorted() {
                let shown = name.string.escapedForTerminal
                if let other = location[name] {
                    throw TernaryKitError.file(path: file.path, problem: "tensor \"\(shown)\" is also in \(files[other].path)")
                }
                guard let mapped = weightMap[name] else {
                    throw TernaryKitError.file(path: file.path, problem: "tensor \"\(shown)\" is not listed in \(Self.indexFileName)")
                }
                guard mapped == shard else {
                    throw TernaryKitError.file(path: file.path, problem: "tensor \"\(shown)\" is listed in \(Self.indexFileName) under \(mapped.string.escapedForTerminal)")
                }
                location[name] = i
            }
            files.append(file)
        }
        let absent = weightMap.keys.filter { location[$0] == nil }.sorted()
        if !absent.isEmpty {
            let shown = absent.prefix(10).map { "\"\($0.string.escapedForTerminal)\" (in \(weightMap[$0]!.string.escapedForTerminal))" }.joined(separator: ", ")
            throw TernaryKitError.file(path: indexPath, problem: "\(absent.count) listed tensor(s) missing from their shards: \(shown)\(absent.count > 10 ? ", ..." : "")")
        }
        self.files = files
        self.location = location
    }

    /// Reads and validates an index file's `weight_map` (tensor and shard names keyed by bytes).
    static func readWeightMap(_ path: String) throws -> [TensorName: TensorName] {
        func fail(_ problem: String) -> TernaryKitError { .file(path: path, problem: problem) }
        _ = try FileKind.regularFileSize(path, expected: "a JSON index file", limit: SafeTensorsFile.maximumHeaderBytes)
        let data: Data
        do { data = try Data(contentsOf: URL(fileURLWithPath: path)) } catch {
            throw fail("cannot read: \(error.localizedDescription)")
        }
        guard data.count <= SafeTensorsFile.maximumHeaderBytes else { throw fail("index of \(data.count) bytes is too large") }
        let parsed = data.withUnsafeBytes { raw in
            Result { () throws(HeaderJSON.JSONProblem) -> HeaderJSON in try HeaderJSON.parse(raw) }
        }
        let json: HeaderJSON
        switch parsed {
        case .success(let v): json = v
        case .failure(let p): throw fail(p.description.replacingOccurrences(of: "header byte", with: "byte"))
        }
        guard case .object(let members) = json else { throw fail("index is \(json.kind), expected an object") }
        guard let mapValue = members.first(where: { $0.key == "weight_map" })?.value else { throw fail("missing \"weight_map\"") }
        guard case .object(let entries) = mapValue else { throw fail("weight_map is \(mapValue.kind), expected an object") }
        var map: [TensorName: TensorName] = [:]
        for (name, value) in entries {
            guard case .string(let shard) = value else { throw fail("weight_map entry \"\(name.escapedForTerminal)\" is \(value.kind), expected a file name") }
            guard !shard.isEmpty, !shard.utf8.contains(UInt8(ascii: "/")), !shard.utf8.contains(0), shard != ".", shard != ".." else {
                throw fail("weight_map entry \"\(name.escapedForTerminal)\" names \"\(shard.escapedForTerminal)\", not a file in the checkpoint directory")
            }
            map[TensorName(name)] = TensorName(shard)
        }
        guard !map.isEmpty else { throw fail("weight_map is empty") }
        return map
    }

    /// Every tensor of the checkpoint, by name.
    public var tensors: [TensorName: SafeTensorInfo] {
        var all: [TensorName: SafeTensorInfo] = [:]
        for file in files { all.merge(file.tensors) { a, _ in a } }
        return all
    }

    /// All tensor names, sorted.
    public var names: [String] { location.keys.sorted().map(\.string) }

    /// The file holding tensor `name`.
    /// - Throws: `TernaryKitError.file` naming the directory when no file has it.
    public func file(containing name: String) throws -> SafeTensorsFile {
        guard let i = location[TensorName(name)] else {
            throw TernaryKitError.file(path: directory, problem: "no tensor named \"\(name.escapedForTerminal)\"")
        }
        return files[i]
    }

    /// The validated description of tensor `name`.
    public func info(_ name: String) throws -> SafeTensorInfo { try file(containing: name).info(name) }

    /// Tensor `name` converted to Float32 (see `SafeTensorsFile.floats`).
    public func floats(_ name: String) throws -> [Float] { try file(containing: name).floats(name) }

    /// Tensor `name`, which must be U8, as bytes.
    public func uint8s(_ name: String) throws -> [UInt8] { try file(containing: name).uint8s(name) }

    /// Tensor `name`, which must be I8, as Int8 values.
    public func int8s(_ name: String) throws -> [Int8] { try file(containing: name).int8s(name) }

    /// Compares the checkpoint's tensor names with the names a model expects.
    public func nameCheck(expected: some Sequence<String>) -> TensorNameCheck {
        TensorNameCheck(expected: expected, actual: location.keys)
    }
}
