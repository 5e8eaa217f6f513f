import Foundation
import Testing
import TensorCore
@testable import TernaryCLI

@Suite struct InspectCommandTests {
    let fixture = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/tiny-bitnet").path

    @Test func listsTensorsSortedWithTotalsAndMetadata() throws {
        let files = try InspectCommand.open(fixture)
        #expect(files.count == 1)
        let file = files[0]
        #expect(file.path.hasSuffix("tiny-bitnet/model.safetensors"))
        let text = InspectCommand.table(file)
        let lines = text.split(separator: "\n").map(String.init)
        let tensorLines = lines.filter { $0.hasPrefix("  model.") }
        #expect(tensorLines.count == file.tensors.count)
        #expect(tensorLines.map { $0.split(separator: " ")[0] } == file.names.map { Substring($0) })
        #expect(lines.contains { $0.hasPrefix("  model.layers.0.self_attn.q_proj.weight ") && $0.contains("U8") && $0.contains("[16, 64]") && $0.hasSuffix(" 1024") })
        #expect(text.contains("total: \(file.tensors.count) tensors"))
        #expect(text.contains("writer: make_bitnet_fixture.py"))
        let json = try JSONLines.capture { try InspectCommand.parse([fixture, "--json"]).run() }
        #expect(json.count == 1)
        let object = try JSONSerialization.jsonObject(with: Data(json.joined().utf8)) as? [String: Any]
        #expect((object?["tensors"] as? [Any])?.count == file.tensors.count)
    }

    @Test func badFilesThrowAFileError() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("inspect-\(UInt64.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try Data([1, 2, 3]).write(to: URL(fileURLWithPath: dir + "/short.safetensors"))
        for path in [dir + "/short.safetensors", dir + "/absent.safetensors", dir] {
            let command = try InspectCommand.parse([path])
            #expect(throws: TernaryKitError.self, "\(path)") { try command.run() }
        }
        #expect(throws: (any Error).self) { try InspectCommand.parse([]) }
    }
}
