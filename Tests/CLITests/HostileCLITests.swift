import Foundation
import Testing
@testable import TernaryCLI

/// The built `ternary` binary, run as a subprocess: hostile flags and files must give one clean
/// error line (`Error: …`, exit status 1, no signal, no usage dump, no raw control byte).
enum TernaryProcess {
    /// `ternary` next to the test bundle (.build/<config>/), else in the package's .build/debug.
    static let binary: String? = {
        var candidates: [String] = []
        if let exe = Bundle.main.executablePath {
            var dir = URL(fileURLWithPath: exe).deletingLastPathComponent()
            for _ in 0..<4 {
                candidates.append(dir.appendingPathComponent("ternary").path)
                dir = dir.deletingLastPathComponent()
            }
        }
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        candidates.append(root.appendingPathComponent(".build/debug/ternary").path)
        return candidates.first { FileManager.default.isExecutableFile(atPath: $0) && !$0.hasSuffix(".xctest/ternary") }
    }()

    struct Result {
        var status: Int32
        var signaled: Bool
        var stdout: Data
        var stderr: Data
        var stderrText: String { String(decoding: stderr, as: UTF8.self) }
        var stdoutText: String { String(decoding: stdout, as: UTF8.self) }
    }

    /// Runs `ternary arguments`, killing it after `timeout` seconds (which fails the caller's check).
    static func run(_ arguments: [String], environment: [String: String] = [:], timeout: Double = 300,
                    whileRunning: ((Process) throws -> Void)? = nil) throws -> Result {
        guard let binary else { throw CocoaError(.fileNoSuchFile) }
        let p = Process()
        p.executableURL = URL(fileURLWithPath: binary)
        p.arguments = arguments
        var env = ProcessInfo.processInfo.environment
        for (k, v) in environment { env[k] = v }
        p.environment = env
        let out = Pipe(), err = Pipe()
        p.standardOutput = out
        p.standardError = err
        p.standardInput = FileHandle.nullDevice
        try p.run()
        // Read both pipes concurrently so that neither fills up.
        final class Box: @unchecked Sendable { var data = Data() }
        let box = Box()
        let group = DispatchGroup()
        let errHandle = err.fileHandleForReading
        DispatchQueue.global().async(group: group) { box.data = errHandle.readDataToEndOfFile() }
        let pid = p.processIdentifier
        let watchdog = DispatchWorkItem { kill(pid, SIGKILL) }
        DispatchQueue.global().asyncAfter(deadline: .now() + timeout, execute: watchdog)
        try whileRunning?(p)
        let outData = out.fileHandleForReading.readDataToEndOfFile()
        p.waitUntilExit()
        watchdog.cancel()
        group.wait()
        let errData = box.data
        return Result(status: p.terminationStatus, signaled: p.terminationReason == .uncaughtSignal,
                      stdout: outData, stderr: errData)
    }

    /// Bytes a terminal would interpret: C0 controls other than newline (and tab), DEL, and the
    /// UTF-8 forms of C1 controls.
    static func rawControlBytes(_ data: Data) -> Bool {
        let bytes = [UInt8](data)
        for (i, b) in bytes.enumerated() {
            if (b < 0x20 && b != 0x0A && b != 0x09) || b == 0x7F { return true }
            if b == 0xC2, i + 1 < bytes.count, (0x80...0x9F).contains(bytes[i + 1]) { return true }
        }
        return false
    }
}

@Suite(.serialized) struct HostileCLITests {
    static let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
    static let fixtures = root.appendingPathComponent("Fixtures").path
    static let huge = "9223372036854775807"

    /// A case: arguments, and whether an error is required (otherwise success is also fine).
    struct Case: CustomStringConvertible, Sendable {
        var arguments: [String]
        var mustFail: Bool
        var description: String { arguments.joined(separator: " ") }
    }

    /// Every numeric flag of every subcommand at 0, −1 and Int.max (with small other flags so
    /// that accepted values finish quickly), absurd shapes, and the commands of the issue.
    static let cases: [Case] = {
        var cases: [Case] = []
        func add(_ base: [String], _ flags: [String], mustFailAt: (String, String) -> Bool) {
            for flag in flags {
                for value in ["0", "-1", huge] {
                    // The base without the flag under test (single-value options keep the last value,
                    // repeatable ones would append).
                    var args: [String] = []
                    var i = 0
                    while i < base.count {
                        if base[i] == flag { i += 2; continue }
                        args.append(base[i]); i += 1
                    }
                    cases.append(Case(arguments: args + ["\(flag)=\(value)"], mustFail: mustFailAt(flag, value)))
                }
            }
        }
        let kernels = ["bench", "kernels", "--shape", "8x8", "--backends", "naive", "--repeat", "3", "--warmup", "0",
                       "--budget", "0.01", "--quiet"]
        add(kernels, ["--batch", "--threads", "--k", "--repeat", "--warmup", "--budget", "--seed"]) { flag, value in
            value == "-1" || (value == "0" && !["--warmup", "--seed"].contains(flag)) || (value == huge && flag != "--seed")
        }
        let model = ["bench", "model", "--preset", "tiny", "--prompt-tokens", "2", "--new-tokens", "2", "--backends", "naive", "--quiet"]
        add(model, ["--threads", "--prompt-tokens", "--new-tokens", "--repeat", "--seed"]) { flag, value in
            value == "-1" || (flag != "--seed" && (value == "0" || value == huge))
        }
        let generate = ["generate", "--preset", "tiny", "--tokens", "1,2", "--max-new-tokens", "2"]
        add(generate, ["--max-new-tokens", "--threads", "--seed", "--temperature", "--top-k", "--top-p", "--repeat",
                       "--compare-lm-head"]) { flag, value in
            switch flag {
            case "--seed": return value == "-1"
            case "--temperature", "--top-k": return value == "-1"
            case "--compare-lm-head": return value != "0"
            default: return true
            }
        }
        let logits = ["logits", "--model", fixtures + "/tiny-bitnet", "--tokens", "1,2"]
        add(logits, ["--threads", "--top"]) { flag, value in flag == "--threads" || value != huge }
        let out = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-export-\(UInt32.random(in: 0 ... .max))").path
        for (i, value) in ["0", "-1", huge].enumerated() {
            cases.append(Case(arguments: ["export", "--preset", "tiny", "--out", "\(out)-\(i)", "--seed=\(value)"], mustFail: value == "-1"))
        }
        for shape in ["100000x100000", "1000000000x16", "\(huge)x2", "2x\(huge)", "0x5", "-1x4", "4x", "x"] {
            cases.append(Case(arguments: ["bench", "--shape=\(shape)", "--quiet"], mustFail: true))
        }
        cases += [
            Case(arguments: ["generate", "--preset", "tiny", "--tokens", "1,2,3", "--max-new-tokens", huge], mustFail: true),
            Case(arguments: ["bench", "model", "--prompt-tokens", huge], mustFail: true),
            Case(arguments: ["bench", "--batch", huge], mustFail: true),
            Case(arguments: ["bench", "--shape", "64x64", "--batch", "1000000000"], mustFail: true),
            Case(arguments: ["generate", "--preset", "tiny", "--tokens", "1,\(huge)"], mustFail: true),
            Case(arguments: ["generate", "--tokens", "1"], mustFail: false),
            Case(arguments: ["bench", "--bogus"], mustFail: true),
            Case(arguments: ["generate"], mustFail: true),
            Case(arguments: ["inspect", "/dev/zero"], mustFail: true),
            Case(arguments: ["inspect", fixtures + "/hostile/escape-dtype.safetensors"], mustFail: true),
            Case(arguments: ["inspect", fixtures + "/hostile/escape-sequences.safetensors"], mustFail: false),
            Case(arguments: ["inspect", "--json", fixtures + "/hostile/escape-sequences.safetensors"], mustFail: false),
            Case(arguments: ["logits", "--model", fixtures + "/hostile/config-escape", "--tokens", "1"], mustFail: true),
            Case(arguments: ["logits", "--model", fixtures + "/hostile/config-vocab-overflow", "--tokens", "1"], mustFail: true),
            Case(arguments: ["generate", "--model", fixtures + "/hostile/config-huge-model", "--tokens", "1"], mustFail: true),
        ]
        return cases
    }()

    @Test(arguments: cases)
    func cleanOutcome(_ c: Case) throws {
        let r = try TernaryProcess.run(c.arguments)
        #expect(!r.signaled, "\(c): killed by a signal (status \(r.status))")
        #expect(r.status == 0 || r.status == 1, "\(c): exit status \(r.status)")
        if c.mustFail { #expect(r.status == 1, "\(c): expected an error, got status \(r.status): \(r.stdoutText.prefix(200))") }
        if r.status != 0 {
            let lines = r.stderrText.split(separator: "\n", omittingEmptySubsequences: false)
            #expect(lines.count == 2 && lines[1].isEmpty && lines[0].hasPrefix("Error: "),
                    "\(c): stderr is not one error line: \(r.stderrText.debugDescription)")
        }
        #expect(!TernaryProcess.rawControlBytes(r.stdout), "\(c): raw control byte on stdout")
        #expect(!TernaryProcess.rawControlBytes(r.stderr), "\(c): raw control byte on stderr")
    }

    @Test func helpGoesToStdoutWithStatusZero() throws {
        let r = try TernaryProcess.run(["generate", "--help"])
        #expect(r.status == 0 && r.stdoutText.contains("USAGE") && r.stderr.isEmpty)
    }

    @Test func canonicallyEquivalentNamesAreListedTwice() throws {
        let r = try TernaryProcess.run(["inspect", HostileCLITests.fixtures + "/hostile/nfc-nfd-names.safetensors"])
        #expect(r.status == 0 && r.stdoutText.contains("2 tensors"))
        #expect(r.stdoutText.contains("caf\u{E9} ") || r.stdoutText.utf8.count > 0)
        let lines = r.stdoutText.split(separator: "\n").filter { $0.hasPrefix("  caf") }
        #expect(lines.count == 2, "\(r.stdoutText)")
    }

    /// A tokenizer.json or tokenizer_config.json that is not a regular file is named for what it
    /// is, never opened (a FIFO would block) and never read to the end (/dev/zero never ends).
    @Test func tokenizerFilesThatAreNotRegularAreNamed() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-tok-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: dir + "/sub", withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let fifo = dir + "/fifo.json"
        #expect(mkfifo(fifo, 0o600) == 0)
        let tokenizer = HostileCLITests.root.appendingPathComponent("Fixtures/tokenizers/llama3-tiny.json").path
        var cases: [(arguments: [String], message: String)] = [
            (["tokenize", "--tokenizer", "/dev/zero", "--text", "hi"], "/dev/zero: is a character device, expected a tokenizer.json file"),
            (["tokenize", "--tokenizer", fifo, "--text", "hi"], "\(fifo): is a FIFO (named pipe), expected a tokenizer.json file"),
            (["tokenize", "--tokenizer", dir + "/sub", "--text", "hi"], "\(dir)/sub: is a directory, expected a tokenizer.json file"),
            (["tokenize", "--tokenizer", dir + "/none.json", "--text", "hi"], "no tokenizer file at \(dir)/none.json"),
        ]
        // Larger than any tokenizer (a sparse file: no disk space used): refused before reading.
        let huge = dir + "/huge.json"
        #expect(FileManager.default.createFile(atPath: huge, contents: nil))
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: huge))
        try handle.truncate(atOffset: UInt64(TokenizerFiles.tokenizerByteLimit) + 1)
        try handle.close()
        cases.append((["tokenize", "--tokenizer", huge, "--text", "hi"],
                      "is \(TokenizerFiles.tokenizerByteLimit + 1) bytes, more than the \(TokenizerFiles.tokenizerByteLimit) bytes accepted"))
        for c in cases {
            let r = try TernaryProcess.run(c.arguments, timeout: 60)
            #expect(r.status == 1 && !r.signaled && r.stderrText.contains(c.message), "\(c.arguments): \(r.stderrText.debugDescription)")
        }
        // tokenizer_config.json (read for --chat) as a directory next to a valid tokenizer.json.
        try FileManager.default.copyItem(atPath: tokenizer, toPath: dir + "/tokenizer.json")
        try FileManager.default.createDirectory(atPath: dir + "/tokenizer_config.json", withIntermediateDirectories: false)
        let chat = try TernaryProcess.run(["generate", "--preset", "tiny", "--tokenizer", dir + "/tokenizer.json", "--prompt", "hi",
                                           "--chat", "--max-new-tokens", "1"], timeout: 60)
        #expect(chat.status == 1 && chat.stderrText.contains("tokenizer_config.json: is a directory, expected a tokenizer_config.json file"),
                "\(chat.stderrText.debugDescription)")
    }

    @Test func exportInterruptedBySignalLeavesNoTemporary() throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("hostile-sig-\(UInt32.random(in: 0 ... .max))").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        func temporaries() -> [String] {
            ((try? FileManager.default.contentsOfDirectory(atPath: dir)) ?? []).filter { $0.hasPrefix(".ck.") }
        }
        func waitForTemporary() {
            for _ in 0..<600 where temporaries().isEmpty { usleep(50_000) }
        }
        let pause = ["TERNARYKIT_TEST_PAUSE_BEFORE_PLACE": "60"]
        for signo in [SIGINT, SIGTERM] {
            let r = try TernaryProcess.run(["export", "--preset", "tiny", "--out", dir + "/ck"], environment: pause) { p in
                waitForTemporary()
                #expect(!temporaries().isEmpty)
                kill(p.processIdentifier, signo)
            }
            #expect(r.signaled && r.status == signo, "ended by signal \(signo)")
            #expect(temporaries().isEmpty, "temporaries left after signal \(signo): \(temporaries())")
            #expect(!FileManager.default.fileExists(atPath: dir + "/ck"))
        }
        // SIGKILL cannot be handled: the temporary stays, and the next export removes it.
        _ = try TernaryProcess.run(["export", "--preset", "tiny", "--out", dir + "/ck"], environment: pause) { p in
            waitForTemporary()
            kill(p.processIdentifier, SIGKILL)
        }
        #expect(temporaries().count == 1)
        let ok = try TernaryProcess.run(["export", "--preset", "tiny", "--out", dir + "/ck"])
        #expect(ok.status == 0 && temporaries().isEmpty, "\(ok.stderrText)")
        let old = try Data(contentsOf: URL(fileURLWithPath: dir + "/ck/model.safetensors"))
        // --force killed while the new checkpoint waits: the old one is complete under the name.
        _ = try TernaryProcess.run(["export", "--preset", "tiny", "--seed", "9", "--force", "--out", dir + "/ck"], environment: pause) { p in
            waitForTemporary()
            kill(p.processIdentifier, SIGKILL)
        }
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/ck/model.safetensors")) == old)
        let forced = try TernaryProcess.run(["export", "--preset", "tiny", "--seed", "9", "--force", "--out", dir + "/ck"])
        #expect(forced.status == 0 && temporaries().isEmpty)
        #expect(try Data(contentsOf: URL(fileURLWithPath: dir + "/ck/model.safetensors")) != old)
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["ck"])
    }
}
