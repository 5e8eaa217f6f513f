import ArgumentParser
import Foundation
import SafeTensors
import TensorCore

/// `ternary inspect FILE`: what a safetensors file holds, after full validation.
struct InspectCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "inspect",
        abstract: "List the tensors of a safetensors file: names, dtypes, shapes, bytes, totals and metadata.",
        discussion: """
            FILE is a .safetensors file, or a checkpoint directory (model.safetensors, or the shards of model.safetensors.index.json). \
            The whole header is validated first (offsets inside the data, no overlaps, sizes \
            matching dtype × shape); a bad file gives a one-line error and a non-zero exit.
            """
    )

    @Argument(help: "A .safetensors file or a checkpoint directory.")
    var file: String

    @Flag(help: "Print one JSON object instead of the table.")
    var json = false

    func run() throws {
        for file in try InspectCommand.open(file) {
            if json { try printJSON(JSONListing(file)) } else { print(InspectCommand.table(file), terminator: "") }
        }
    }

    /// A file, or every file of a checkpoint directory (`model.safetensors`, or the shards listed
    /// by `model.safetensors.index.json`, validated together).
    static func open(_ path: String) throws -> [SafeTensorsFile] {
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory), isDirectory.boolValue {
            return try SafeTensorsCollection(directory: path).files
        }
        return [try SafeTensorsFile(path: path)]
    }

    static func shapeText(_ shape: [Int]) -> String { "[" + shape.map(String.init).joined(separator: ", ") + "]" }

    /// The human-readable listing: one line per tensor sorted by name, totals, metadata.
    /// Names, metadata and the path come from outside: they are printed escaped
    /// (`escapedForTerminal`), so a crafted file cannot send control sequences to the terminal.
    static func table(_ file: SafeTensorsFile) -> String {
        let names = file.names
        let nameWidth = max(4, names.map(\.escapedForTerminal.count).max() ?? 0)
        let shapeWidth = max(5, names.map { shapeText(file.tensors[$0]!.shape).count }.max() ?? 0)
        func pad(_ s: String, _ w: Int) -> String { s + String(repeating: " ", count: max(0, w - s.count)) }
        func lpad(_ s: String, _ w: Int) -> String { String(repeating: " ", count: max(0, w - s.count)) + s }
        var out = "\(file.path.escapedForTerminal)\n"
        out += "  header \(file.headerByteCount) bytes, data \(file.dataByteCount) bytes, \(names.count) tensors\n\n"
        out += "  \(pad("name", nameWidth))  dtype  \(pad("shape", shapeWidth))  \(lpad("elements", 12))  \(lpad("bytes", 12))\n"
        var totalElements = 0, totalBytes = 0
        var byDType: [SafeTensorsDType: (count: Int, bytes: Int)] = [:]
        for name in names {
            let t = file.tensors[name]!
            totalElements += t.elementCount
            totalBytes += t.byteCount
            byDType[t.dtype, default: (0, 0)].count += 1
            byDType[t.dtype, default: (0, 0)].bytes += t.byteCount
            out += "  \(pad(name.escapedForTerminal, nameWidth))  \(pad(t.dtype.rawValue, 5))  \(pad(shapeText(t.shape), shapeWidth))"
            out += "  \(lpad(String(t.elementCount), 12))  \(lpad(String(t.byteCount), 12))\n"
        }
        out += "\n  total: \(names.count) tensors, \(totalElements) elements, \(totalBytes) bytes"
        let unused = file.dataByteCount - totalBytes
        out += unused > 0 ? " (\(unused) data bytes belong to no tensor)\n" : "\n"
        for dtype in SafeTensorsDType.allCases {
            if let s = byDType[dtype] { out += "    \(pad(dtype.rawValue, 5)) \(s.count) tensors, \(s.bytes) bytes\n" }
        }
        if file.metadata.isEmpty {
            out += "  metadata: none\n"
        } else {
            out += "  metadata:\n"
            for key in file.metadata.keys.sorted() {
                out += "    \(key.string.escapedForTerminal): \(file.metadata[key]!.escapedForTerminal)\n"
            }
        }
        return out
    }

    /// The JSON listing, `{"path":…,"header_bytes":…,"data_bytes":…,"tensors":[{…}],"metadata":{…}}`:
    /// tensors sorted by name, metadata by key.
    struct JSONListing: Encodable {
        struct Tensor: Encodable {
            var name: String
            var dtype: String
            var shape: [Int]
            var dataOffsets: [Int]
            var bytes: Int

            enum CodingKeys: String, CodingKey {
                case name, dtype, shape, dataOffsets = "data_offsets", bytes
            }
        }

        var path: String
        var headerBytes: Int
        var dataBytes: Int
        var tensors: [Tensor]
        var metadata: SortedStringMap

        enum CodingKeys: String, CodingKey {
            case path, headerBytes = "header_bytes", dataBytes = "data_bytes", tensors, metadata
        }

        init(_ file: SafeTensorsFile) {
            path = file.path
            headerBytes = file.headerByteCount
            dataBytes = file.dataByteCount
            tensors = file.names.compactMap { name in
                file.tensors[name].map {
                    Tensor(name: name, dtype: $0.dtype.rawValue, shape: $0.shape,
                           dataOffsets: [$0.dataOffsets.lowerBound, $0.dataOffsets.upperBound], bytes: $0.byteCount)
                }
            }
            metadata = SortedStringMap(entries: [:], orderedPairs: file.metadata.keys.sorted().map { ($0.string, file.metadata[$0]!) })
        }
    }
}
