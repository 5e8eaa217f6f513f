import BitNet
import Foundation
import Layers
import Testing
import TensorCore

/// Configs with sizes that overflow or exceed memory, and generation limits at Int.max.
@Suite struct HostileConfigTests {
    static let hostile = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/hostile").path

    @Test func overflowingSizesAreRefusedWhenDecoded() {
        #expect(throws: TernaryKitError.self) { try BitNetConfig.read(directory: HostileConfigTests.hostile + "/config-vocab-overflow") }
        var c = BitNetConfig.tiny
        c.vocabSize = 1 << 62
        #expect(throws: TernaryKitError.self) { try c.validate() }
        c = .tiny
        c.numHiddenLayers = Int.max
        #expect(throws: TernaryKitError.self) { try c.validate() }
    }

    @Test func modelsLargerThanMemoryAreRefusedBeforeAllocation() throws {
        let config = try BitNetConfig.read(directory: HostileConfigTests.hostile + "/config-huge-model")
        #expect(try config.estimatedBytes() > SizeLimits.physicalMemory)
        #expect(throws: TernaryKitError.self) { try BitNetModel(config: config) }
        #expect(throws: TernaryKitError.self) { try BitNetModel.load(checkpoint: HostileConfigTests.hostile + "/config-huge-model") }
    }

    @Test func escapedMessages() {
        do {
            _ = try BitNetConfig.read(directory: HostileConfigTests.hostile + "/config-escape")
            Issue.record("a model_type of escape sequences was accepted")
        } catch {
            #expect(!"\(error)".unicodeScalars.contains(where: String.needsTerminalEscape), "\(error)")
        }
    }

    @Test func nonRegularConfigFilesAreNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-config-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: dir + "/config.json", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: TernaryKitError.file(path: dir + "/config.json", problem: "is a directory, expected a JSON file")) {
            try BitNetConfig.read(directory: dir)
        }
        #expect(throws: TernaryKitError.self) { try BitNetConfig.read(directory: "/dev/null") }
    }

    @Test func generationLimitsNeverTrap() throws {
        let model = try BitNetModel.random(config: .tiny, seed: 1)
        for maxNew in [Int.max, Int.max - 1] {
            #expect(throws: TernaryKitError.self) {
                try model.generate(prompt: [1, 2, 3], parameters: GenerationParameters(maxNewTokens: maxNew))
            }
        }
        #expect(throws: TernaryKitError.self) { try model.makeCache(capacity: .max) }
    }
}
