import Foundation
import Testing
import TensorCore
@testable import SafeTensors

/// The malformed and unusual files of Tests/Fixtures/hostile (scripts/make-hostile-fixtures.py).
@Suite struct HostileFileTests {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Fixtures/hostile").path

    func open(_ name: String) throws -> SafeTensorsFile { try SafeTensorsFile(path: HostileFileTests.directory + "/" + name) }

    /// The error a fixture gives, checked to be one line with no control character.
    func failure(_ name: String) -> String {
        do {
            _ = try open(name)
            Issue.record("\(name) was accepted")
            return ""
        } catch {
            let message = "\(error)"
            #expect(!message.unicodeScalars.contains(where: String.needsTerminalEscape), "\(name): \(message.debugDescription)")
            return message
        }
    }

    @Test func canonicallyEquivalentNamesAreTwoTensors() throws {
        let file = try open("nfc-nfd-names.safetensors")
        let nfc = "caf\u{E9}", nfd = "cafe\u{301}"
        #expect(nfc == nfd)   // equal as Swift Strings, different bytes
        #expect(file.tensors.count == 2 && file.names.count == 2)
        #expect(try file.floats(nfc) == [1] && file.floats(nfd) == [2])
        #expect(file.metadata.count == 2 && file.metadata[nfc] == "composed" && file.metadata[nfd] == "decomposed")
        #expect(file.names.map { Array($0.utf8) } == [Array(nfd.utf8), Array(nfc.utf8)])   // byte order: 'e' < 0xC3
    }

    @Test func writerKeepsCanonicallyEquivalentNamesApart() throws {
        var writer = SafeTensorsWriter()
        try writer.add("caf\u{E9}", floats: [1], shape: [1])
        try writer.add("cafe\u{301}", floats: [2], shape: [1])
        #expect(throws: TernaryKitError.self) { try writer.add("caf\u{E9}", floats: [3], shape: [1]) }
        let file = try SafeTensorsFile(data: Data(writer.serialized()))
        #expect(file.tensors.count == 2)
        #expect(try file.floats("cafe\u{301}") == [2])
        let check = TensorNameCheck(expected: ["caf\u{E9}"], actual: file.tensors.keys)
        #expect(check.missing.isEmpty && check.unexpected.map { Array($0.utf8) } == [Array("cafe\u{301}".utf8)])
    }

    @Test func shardedIndexKeepsCanonicallyEquivalentNamesApart() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-shards-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let nfc = "caf\u{E9}", nfd = "cafe\u{301}"
        var a = SafeTensorsWriter(), b = SafeTensorsWriter()
        try a.add(nfc, floats: [1], shape: [1])
        try b.add(nfd, floats: [2], shape: [1])
        try a.write(to: dir + "/a.safetensors")
        try b.write(to: dir + "/b.safetensors")
        let index = "{\"weight_map\": {\"\(nfc)\": \"a.safetensors\", \"\(nfd)\": \"b.safetensors\"}}"
        try Data(index.utf8).write(to: URL(fileURLWithPath: dir + "/model.safetensors.index.json"))
        let collection = try SafeTensorsCollection(directory: dir)
        #expect(collection.names.count == 2 && collection.tensors.count == 2)
        #expect(try collection.floats(nfc) == [1] && collection.floats(nfd) == [2])
        #expect(try collection.file(containing: nfd).path.hasSuffix("b.safetensors"))
    }

    @Test func nullMetadataAndEmptyTensorsInAnyOrder() throws {
        let file = try open("metadata-null.safetensors")
        #expect(file.metadata.isEmpty && file.tensors.count == 1)
        for name in ["zero-dimension-first.safetensors", "zero-dimension-last.safetensors"] {
            let info = try open(name).info("e")
            #expect(info.elementCount == 0 && info.byteCount == 0, "\(name)")
        }
    }

    @Test func malformedFilesGiveOneEscapedLine() {
        #expect(failure("shape-overflow.safetensors").contains("overflow"))
        #expect(failure("escape-dtype.safetensors").contains("unknown dtype \"\\u{1B}[2J\\u{A}Error: forged\""))
        #expect(failure("header-length-huge.safetensors").contains("header length"))
        #expect(failure("duplicate-key.safetensors").contains("duplicate key"))
        #expect(failure("deep-nesting.safetensors").contains("nested deeper"))
        #expect(failure("offsets-overflow.safetensors").contains("data_offsets"))
    }

    @Test func hostileNamesAreLoadedAndEscapedInMessages() throws {
        let file = try open("escape-sequences.safetensors")
        #expect(file.tensors.count == 3)
        do {
            _ = try file.int8s("a\u{1B}[2Jb")
            Issue.record("an F32 tensor read as I8")
        } catch {
            #expect("\(error)".contains("a\\u{1B}[2Jb") && !"\(error)".contains("\u{1B}"))
        }
    }

    @Test func nonRegularFilesAreNamed() throws {
        #expect(throws: TernaryKitError.file(path: "/dev/zero", problem: "is a character device, expected a .safetensors file")) {
            try SafeTensorsFile(path: "/dev/zero")
        }
        #expect(throws: TernaryKitError.file(path: "/tmp", problem: "is a directory, expected a .safetensors file")) {
            try SafeTensorsFile(path: "/tmp")
        }
        let fifo = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-fifo-\(UInt32.random(in: 0 ... .max))").path
        #expect(mkfifo(fifo, 0o600) == 0)
        defer { unlink(fifo) }
        // Never opened (an open would block until a writer appears).
        #expect(throws: TernaryKitError.file(path: fifo, problem: "is a FIFO (named pipe), expected a .safetensors file")) {
            try SafeTensorsFile(path: fifo)
        }
    }
}

/// Interrupted exports: stale temporaries, the atomic exchange, the signal registry.
@Suite struct AtomicFileCleanupTests {
    func scratch() throws -> String {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("atomic-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        return dir
    }

    /// A PID that named a process which has exited.
    func deadPID() throws -> Int32 {
        let p = Process()
        p.executableURL = URL(fileURLWithPath: "/bin/true")
        try p.run()
        p.waitUntilExit()
        return p.processIdentifier
    }

    @Test func staleTemporariesOfDeadWritersAreRemoved() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let dead = try deadPID()
        let stale = ["\(dir)/.ck.tmp-\(dead)-123", "\(dir)/.ck.old-\(dead)-456"]
        let kept = ["\(dir)/.ck.tmp-\(getpid())-789", "\(dir)/.ck.tmp-1-5", "\(dir)/.other.tmp-\(dead)-1", "\(dir)/.ck.tmp-x-1"]
        for p in stale + kept { try FileManager.default.createDirectory(atPath: p + "/sub", withIntermediateDirectories: true) }
        try AtomicFile.writeDirectory(at: dir + "/ck", replacing: false) { tmp in
            try SafeTensorsWriter().write(to: tmp + "/model.safetensors")
        }
        for p in stale { #expect(!FileManager.default.fileExists(atPath: p), "\(p)") }
        for p in kept { #expect(FileManager.default.fileExists(atPath: p), "\(p)") }   // live (pid 1, ours) or another name
        #expect(AtomicFile.stalePID(".ck.tmp-42-7", name: "ck") == 42)
        #expect(AtomicFile.stalePID(".ck.tmp-42", name: "ck") == nil)
        #expect(AtomicFile.stalePID(".ckx.tmp-42-7", name: "ck") == nil)
    }

    @Test func replacingExchangesAtomicallyAndLeavesNoTemporary() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try AtomicFile.writeDirectory(at: dir + "/ck", replacing: false) { tmp in
            try Data("old".utf8).write(to: URL(fileURLWithPath: tmp + "/a"))
        }
        try AtomicFile.writeDirectory(at: dir + "/ck", replacing: true) { tmp in
            try Data("new".utf8).write(to: URL(fileURLWithPath: tmp + "/a"))
        }
        #expect(try String(contentsOfFile: dir + "/ck/a", encoding: .utf8) == "new")
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["ck"])
    }

    @Test func registeredTemporariesAreRemovedOnRequest() throws {
        let dir = try scratch()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let tmp = dir + "/.x.tmp-1-1"
        try FileManager.default.createDirectory(atPath: tmp + "/deep/er", withIntermediateDirectories: true)
        // A registry of its own: the process-wide one also holds the temporaries of tests that
        // write files concurrently, and removing those would break them.
        let registry = AtomicFile.Registry()
        let token = registry.add(tmp, isDirectory: true)
        registry.removeAll()
        registry.remove(token)
        #expect(!FileManager.default.fileExists(atPath: tmp))
    }
}
