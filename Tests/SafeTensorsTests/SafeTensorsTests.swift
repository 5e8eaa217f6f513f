import Foundation
import Testing
@testable import SafeTensors
import TensorCore

// MARK: - Helpers

/// A safetensors file built by hand: `header` JSON text, `data` bytes, and optionally a lying
/// header length.
private func handmade(_ header: String, data: [UInt8] = [], declaredLength: UInt64? = nil) -> Data {
    let h = Array(header.utf8)
    var out = [UInt8]()
    withUnsafeBytes(of: (declaredLength ?? UInt64(h.count)).littleEndian) { out += $0 }
    return Data(out + h + data)
}

/// The problem text of the `.file` error thrown by opening `data`, or nil when it opens.
private func openProblem(_ data: Data, path: String = "test.safetensors") -> String? {
    do {
        _ = try SafeTensorsFile(data: data, path: path)
        return nil
    } catch let TernaryKitError.file(p, problem) {
        #expect(p == path)
        return problem
    } catch {
        Issue.record("unexpected error type: \(error)")
        return "\(error)"
    }
}

private func temporaryDirectory() throws -> String {
    let dir = FileManager.default.temporaryDirectory
        .appendingPathComponent("ternarykit-st-\(UInt64.random(in: 0 ... .max))").path
    try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
    return dir
}

private let fixtureDirectory = URL(fileURLWithPath: #filePath)
    .deletingLastPathComponent().deletingLastPathComponent()
    .appendingPathComponent("Fixtures/tiny-bitnet").path

// MARK: - Round trips

@Suite struct SafeTensorsRoundTripTests {
    @Test(arguments: SafeTensorsDType.allCases)
    func everyDTypeRoundTrips(dtype: SafeTensorsDType) throws {
        var rng = SeededGenerator(seed: 7)
        var writer = SafeTensorsWriter(metadata: ["format": "pt", "note": "quote \" backslash \\ newline \n é"])
        let shape = [3, 5]
        var expected: [Float]
        switch dtype {
        case .f32, .f64, .f16, .bf16:
            // Values exactly representable in every float format (small integers and halves).
            expected = (0..<15).map { _ in Float(Int.random(in: -64...64, using: &rng)) / 2 }
            try writer.add("t", floats: expected, shape: shape, as: dtype)
        case .i8:
            let v = rng.int8s(count: 15); expected = v.map { Float($0) }
            try writer.add("t", integers: v, shape: shape)
        case .u8:
            let v = (0..<15).map { _ in UInt8.random(in: 0 ... .max, using: &rng) }; expected = v.map { Float($0) }
            try writer.add("t", integers: v, shape: shape)
        case .i16:
            let v = (0..<15).map { _ in Int16.random(in: .min ... .max, using: &rng) }; expected = v.map { Float($0) }
            try writer.add("t", integers: v, shape: shape)
        case .u16:
            let v = (0..<15).map { _ in UInt16.random(in: 0 ... .max, using: &rng) }; expected = v.map { Float($0) }
            try writer.add("t", integers: v, shape: shape)
        case .i32:
            let v = (0..<15).map { _ in Int32.random(in: -1_000_000...1_000_000, using: &rng) }; expected = v.map { Float($0) }
            try writer.add("t", integers: v, shape: shape)
        case .u32:
            let v = (0..<15).map { _ in UInt32.random(in: 0...1_000_000, using: &rng) }; expected = v.map { Float($0) }
            try writer.add("t", integers: v, shape: shape)
        case .i64:
            let v = (0..<15).map { _ in Int64.random(in: -1_000_000...1_000_000, using: &rng) }; expected = v.map { Float($0) }
            try writer.add("t", integers: v, shape: shape)
        case .u64:
            let v = (0..<15).map { _ in UInt64.random(in: 0...1_000_000, using: &rng) }; expected = v.map { Float($0) }
            try writer.add("t", integers: v, shape: shape)
        case .bool:
            let v = (0..<15).map { _ in UInt8.random(in: 0...1, using: &rng) }; expected = v.map { Float($0) }
            try writer.add("t", dtype: .bool, shape: shape, bytes: v)
        }
        // A second tensor of another size so alignment and ordering are exercised.
        try writer.add("a.scalar", floats: [0.25], shape: [], as: .bf16)
        try writer.add("z.empty", floats: [], shape: [0, 4])

        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.safetensors"
        try writer.write(to: path)
        let bytes = try Data(contentsOf: URL(fileURLWithPath: path))
        #expect(Array(bytes) == writer.serialized())

        let file = try SafeTensorsFile(path: path)
        #expect(file.names == ["a.scalar", "t", "z.empty"])
        #expect(file.metadata == Dictionary(uniqueKeysWithValues: writer.metadata.map { (TensorName($0.key), $0.value) }))
        let info = try file.info("t")
        #expect(info.dtype == dtype && info.shape == shape && info.byteCount == 15 * dtype.byteSize)
        let got = try file.floats("t")
        #expect(got == expected, "\(got) vs \(expected)")
        #expect(try file.floats("a.scalar") == [0.25])
        #expect(try file.info("a.scalar").shape == [])
        #expect(try file.floats("z.empty") == [])
        #expect(try file.tensor("t").shape == shape)
        // Raw bytes come back identical to what was added.
        try file.withRawBytes("t") { raw in #expect(Array(raw) == writer.entries["t"]!.bytes) }
        #expect(Array(try file.bytes("t")) == writer.entries["t"]!.bytes)
        if dtype == .i8 { #expect(try file.int8s("t").map(Float.init) == expected) }
        if dtype == .u8 { #expect(try file.uint8s("t").map(Float.init) == expected) }
        // Layout: data area 8-aligned, each tensor aligned to its element size.
        #expect((8 + file.headerByteCount) % 8 == 0)
        for (_, i) in file.tensors { #expect(i.dataOffsets.lowerBound % i.dtype.byteSize == 0) }
    }

    @Test func headerKeysAreSortedAndPaddedWithSpaces() throws {
        var writer = SafeTensorsWriter(metadata: ["k": "v"])
        try writer.add("b", floats: [1, 2, 3], shape: [3])
        try writer.add("a", integers: [Int8(1)], shape: [1])
        try writer.add("B", floats: [1], shape: [1], as: .f16)
        let bytes = writer.serialized()
        let n = Int(bytes[0..<8].enumerated().reduce(UInt64(0)) { $0 | UInt64($1.element) << (8 * UInt64($1.offset)) })
        let header = String(decoding: bytes[8..<(8 + n)], as: UTF8.self)
        #expect(header.hasPrefix("{\"B\":{\"data_offsets\":[12,14],\"dtype\":\"F16\",\"shape\":[1]},\"__metadata__\":{\"k\":\"v\"},\"a\":"))
        #expect(header.hasSuffix(String(repeating: " ", count: header.count - header.trimmingCharacters(in: .whitespaces).count)))
        #expect((8 + n) % 8 == 0)
    }

    @Test func writerRefusesBadInput() {
        var w = SafeTensorsWriter()
        #expect(throws: TernaryKitError.self) { try w.add("x", floats: [1, 2], shape: [3]) }
        #expect(throws: TernaryKitError.self) { try w.add("x", floats: [1], shape: [-1]) }
        #expect(throws: TernaryKitError.self) { try w.add("__metadata__", floats: [1], shape: [1]) }
        #expect(throws: TernaryKitError.self) { try w.add("", floats: [1], shape: [1]) }
        #expect(throws: TernaryKitError.self) { try w.add("x", floats: [1], shape: [1], as: .i8) }
        #expect(throws: TernaryKitError.self) { try w.add("x", dtype: .f32, shape: [2], bytes: [0, 0, 0]) }
        #expect(throws: TernaryKitError.self) { try w.add("x", floats: [], shape: [Int.max, 2]) }
        #expect(throws: Never.self) { try w.add("x", floats: [1], shape: [1]) }
        #expect(throws: TernaryKitError.self) { try w.add("x", floats: [1], shape: [1]) }
    }

    @Test func readsUnalignedDataFromOtherWriters() throws {
        // Header of odd length (no padding): F32 data starts at an odd file offset.
        let f: Float = -1.5, g: Float = 3.25
        var data = [UInt8]()
        for v in [f, g] { withUnsafeBytes(of: v.bitPattern.littleEndian) { data += $0 } }
        let file = try SafeTensorsFile(data: handmade(#"{"x":{"dtype":"F32","shape":[2],"data_offsets":[0,8]}} "#, data: data))
        #expect(file.headerByteCount % 2 == 1)
        #expect(try file.floats("x") == [f, g])
    }
}

// MARK: - Conversions

@Suite struct HalfPrecisionTests {
    @Test func bfloat16RoundsToNearestEven() {
        let ulp = Float(1) / 128  // bfloat16 spacing at 1.0
        #expect(HalfPrecision.bfloat16Bits(1) == 0x3F80)
        #expect(HalfPrecision.bfloat16Bits(1 + ulp) == 0x3F81)
        #expect(HalfPrecision.bfloat16Bits(1 + ulp / 2) == 0x3F80)           // tie → even (down)
        #expect(HalfPrecision.bfloat16Bits(1 + 3 * ulp / 2) == 0x3F82)       // tie → even (up)
        #expect(HalfPrecision.bfloat16Bits(1 + ulp / 2 + ulp / 64) == 0x3F81) // above the tie → up
        #expect(HalfPrecision.bfloat16Bits(-(1 + 3 * ulp / 2)) == 0xBF82)
        #expect(HalfPrecision.bfloat16Bits(0) == 0 && HalfPrecision.bfloat16Bits(-0.0) == 0x8000)
        #expect(HalfPrecision.bfloat16Bits(.infinity) == 0x7F80)
        #expect(HalfPrecision.bfloat16Bits(-.infinity) == 0xFF80)
        #expect(HalfPrecision.bfloat16Bits(.greatestFiniteMagnitude) == 0x7F80)  // rounds past the largest bfloat16
        #expect(HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits(.nan)).isNaN)
        #expect(HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits(Float(bitPattern: 0x7F80_0001))).isNaN)  // payload only in low bits
        #expect(HalfPrecision.float(bfloat16Bits: HalfPrecision.bfloat16Bits(-.nan)).sign == .minus)
        #expect(HalfPrecision.float(bfloat16Bits: 0x0001) == Float(bitPattern: 0x0001_0000))  // subnormal, exact
        #expect(HalfPrecision.float(bfloat16Bits: 0x4049) == 3.140625)
        // Every bfloat16 value survives Float and back.
        let mismatches = (UInt16.min ... UInt16.max).filter {
            let f = HalfPrecision.float(bfloat16Bits: $0)
            return !f.isNaN && HalfPrecision.bfloat16Bits(f) != $0
        }
        #expect(mismatches.isEmpty)
    }

    @Test func float16RoundsToNearestEven() {
        let ulp = Float(1) / 1024
        #expect(HalfPrecision.float16Bits(1) == 0x3C00)
        #expect(HalfPrecision.float16Bits(1 + ulp / 2) == 0x3C00)
        #expect(HalfPrecision.float16Bits(1 + 3 * ulp / 2) == 0x3C02)
        #expect(HalfPrecision.float16Bits(65504) == 0x7BFF)
        #expect(HalfPrecision.float16Bits(65519) == 0x7BFF)
        #expect(HalfPrecision.float16Bits(65520) == 0x7C00)  // tie between 65504 and 65536 → even → ∞
        #expect(HalfPrecision.float16Bits(.infinity) == 0x7C00 && HalfPrecision.float16Bits(-.infinity) == 0xFC00)
        #expect(HalfPrecision.float(float16Bits: HalfPrecision.float16Bits(.nan)).isNaN)
        #expect(HalfPrecision.float16Bits(0x1p-24) == 0x0001)
        #expect(HalfPrecision.float16Bits(0x1p-25) == 0x0000)        // tie → even (zero)
        #expect(HalfPrecision.float16Bits(0x1.8p-24) == 0x0002)      // tie between 1 and 2 subnormal ulps → even
        let mismatches = (UInt16.min ... UInt16.max).filter {
            let f = HalfPrecision.float(float16Bits: $0)
            return !f.isNaN && HalfPrecision.float16Bits(f) != $0
        }
        #expect(mismatches.isEmpty)
    }
}

// MARK: - Corrupted input

@Suite struct SafeTensorsValidationTests {
    let good = #"{"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#
    let sixteen = [UInt8](repeating: 0, count: 16)

    @Test func goodHandmadeFileOpens() throws {
        let f = try SafeTensorsFile(data: handmade(good, data: sixteen))
        #expect(f.tensors["x"]?.shape == [2, 2])
    }

    @Test(arguments: [
        // (header, data length, declared length or nil, expected words)
        (#"{"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,16]}}"#, 8, nil, "run past the end of the data area"),
        (#"{"x":{"dtype":"F32","shape":[2,2],"data_offsets":[8,4]}}"#, 16, nil, "begin after they end"),
        (#"{"x":{"dtype":"F32","shape":[2,2],"data_offsets":[0,12]}}"#, 16, nil, "needs 16 bytes"),
        (#"{"x":{"dtype":"F32","shape":[3],"data_offsets":[0,12]},"y":{"dtype":"F32","shape":[1],"data_offsets":[8,12]}}"#, 16, nil, "overlap"),
        (#"{"x":{"dtype":"Q4","shape":[2,2],"data_offsets":[0,16]}}"#, 16, nil, "unknown dtype \"Q4\""),
        (#"{"x":{"dtype":"F32","shape":[-2,-2],"data_offsets":[0,16]}}"#, 16, nil, "negative"),
        (#"{"x":{"dtype":"F32","shape":[4294967296,4294967296],"data_offsets":[0,16]}}"#, 16, nil, "overflow"),
        (#"{"x":{"dtype":"F32","shape":[1073741824,1073741824,4],"data_offsets":[0,16]}}"#, 16, nil, "overflow"),
        (#"{"x":{"dtype":"F32","shape":[99999999999999999999],"data_offsets":[0,16]}}"#, 16, nil, "not an integer in range"),
        (#"{"x":{"dtype":"F32","shape":[2.5],"data_offsets":[0,16]}}"#, 16, nil, "not an integer in range"),
        (#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,1e1]}}"#, 16, nil, "not non-negative integers"),
        (#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[-4,16]}}"#, 16, nil, "not non-negative integers"),
        (#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0]}}"#, 16, nil, "expected [begin, end]"),
        (#"{"x":{"shape":[4],"data_offsets":[0,16]}}"#, 16, nil, "missing \"dtype\""),
        (#"{"x":{"dtype":"F32","data_offsets":[0,16]}}"#, 16, nil, "missing \"shape\""),
        (#"{"x":{"dtype":"F32","shape":[4]}}"#, 16, nil, "missing \"data_offsets\""),
        (#"{"x":[1,2]}"#, 16, nil, "entry is an array"),
        (#"{"x":{"dtype":7,"shape":[4],"data_offsets":[0,16]}}"#, 16, nil, "dtype is a number"),
        (#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]},"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}}"#, 16, nil, "duplicate key"),
        (#"{"__metadata__":{"a":1}}"#, 0, nil, "__metadata__ entry \"a\" is a number"),
        (#"{"__metadata__":[]}"#, 0, nil, "__metadata__ is an array"),
        (#"[1,2,3]"#, 0, nil, "expected a JSON object"),
        (#""just a string""#, 0, nil, "expected a JSON object"),
        (#"{"x":{"dtype":"F32","shape":[4],"data_offsets":[0,16]}"#, 16, nil, "invalid JSON"),
        (#"{"x":}"#, 0, nil, "invalid JSON"),
        (#"{"x":{}} trailing"#, 0, nil, "invalid JSON"),
        ("{\"x\u{1}\":{}}", 0, nil, "control character"),
        (#"{"\ud800":{}}"#, 0, nil, "surrogate"),
        ("", 0, nil, "invalid JSON"),
        (#"{}"#, 0, 3, "runs past the end of the file"),
        (#"{}"#, 0, 1 << 40, "exceeds"),
        (#"{}"#, 0, UInt64.max, "exceeds"),
    ] as [(String, Int, UInt64?, String)])
    func corruptHeaderIsRejected(header: String, dataLength: Int, declared: UInt64?, words: String) {
        let problem = openProblem(handmade(header, data: [UInt8](repeating: 0, count: dataLength), declaredLength: declared))
        #expect(problem?.contains(words) == true, "\(problem ?? "opened without error")")
    }

    @Test func errorsNameTheFileAndTheTensor() {
        do {
            _ = try SafeTensorsFile(data: handmade(#"{"layer.0.w":{"dtype":"F32","shape":[5],"data_offsets":[0,16]}}"#, data: sixteen),
                                    path: "/models/bad.safetensors")
            Issue.record("no error")
        } catch {
            #expect("\(error)".hasPrefix("/models/bad.safetensors: tensor \"layer.0.w\":"))
        }
    }

    @Test func deepNestingIsRejectedWithoutRecursingForever() {
        let deep = "{\"x\":" + String(repeating: "[", count: 100_000) + String(repeating: "]", count: 100_000) + "}"
        #expect(openProblem(handmade(deep))?.contains("nested deeper") == true)
    }

    @Test func shortFilesAreRejected() {
        for n in 0..<8 {
            #expect(openProblem(Data(repeating: 0, count: n))?.contains("too short") == true)
        }
    }

    @Test func everyTruncationOfAValidFileIsRejected() throws {
        var w = SafeTensorsWriter(metadata: ["m": "v"])
        try w.add("a", floats: [1, 2, 3], shape: [3], as: .bf16)
        try w.add("b", integers: [Int32(5), 6], shape: [2])
        let bytes = w.serialized()
        #expect(throws: Never.self) { try SafeTensorsFile(data: Data(bytes)) }
        for n in 0..<bytes.count {
            #expect(openProblem(Data(bytes[0..<n])) != nil, "prefix of \(n) bytes opened")
        }
    }

    @Test func randomBytesNeverCrash() {
        var rng = SeededGenerator(seed: 2024)
        for _ in 0..<3000 {
            let n = Int(rng.next() % 96)
            var bytes = (0..<n).map { _ in UInt8(truncatingIfNeeded: rng.next()) }
            // Half the time, make the length field plausible so the JSON parser sees the bytes.
            if n >= 8, rng.next() % 2 == 0 {
                let len = UInt64(rng.next() % UInt64(n - 7))
                for i in 0..<8 { bytes[i] = UInt8(truncatingIfNeeded: len >> (8 * UInt64(i))) }
            }
            _ = openProblem(Data(bytes))
        }
    }

    @Test func mutatedValidFilesNeverCrash() throws {
        var w = SafeTensorsWriter(metadata: ["m": "v"])
        try w.add("a", floats: [1, 2, 3, 4], shape: [2, 2], as: .bf16)
        try w.add("bb", integers: [Int64(5), 6], shape: [2])
        try w.add("c", integers: [UInt8(9)], shape: [1, 1])
        let original = w.serialized()
        var rng = SeededGenerator(seed: 99)
        var opened = 0
        for _ in 0..<3000 {
            var bytes = original
            for _ in 0..<(1 + Int(rng.next() % 3)) {
                let i = Int(rng.next() % UInt64(bytes.count))
                // Mostly plausible header characters, so mutations reach the deeper checks.
                let alphabet = Array("0123456789[]{},:\"-. eE".utf8)
                bytes[i] = rng.next() % 2 == 0 ? alphabet[Int(rng.next() % UInt64(alphabet.count))]
                                               : UInt8(truncatingIfNeeded: rng.next())
            }
            if rng.next() % 4 == 0 { bytes.removeLast(Int(rng.next() % 8)) }
            if let file = try? SafeTensorsFile(data: Data(bytes)) {
                opened += 1
                for name in file.names { _ = try file.floats(name) }  // reading what validated never traps
            } else {
                #expect(openProblem(Data(bytes)) != nil)
            }
        }
        #expect(opened > 0)  // some mutations hit only data bytes
    }

    @Test func missingTensorAndWrongTypeAccessorsThrow() throws {
        let f = try SafeTensorsFile(data: handmade(good, data: sixteen), path: "p")
        #expect(throws: TernaryKitError.file(path: "p", problem: "no tensor named \"y\"")) { try f.floats("y") }
        #expect(throws: TernaryKitError.file(path: "p", problem: "tensor \"x\" is F32, expected I8")) { try f.int8s("x") }
        #expect(throws: TernaryKitError.file(path: "p", problem: "tensor \"x\" is F32, expected U8")) { try f.uint8s("x") }
        #expect(throws: TernaryKitError.file(path: "p", problem: "tensor \"x\" has shape [2, 2], expected [4]")) { try f.requireShape("x", [4]) }
    }

    @Test func missingFilesAndDirectoriesGiveFileErrors() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: TernaryKitError.file(path: dir + "/nope.safetensors", problem: "no such file")) {
            try SafeTensorsFile(path: dir + "/nope.safetensors")
        }
        #expect(throws: TernaryKitError.self) { try SafeTensorsFile(path: dir) }
    }
}

// MARK: - Atomic writes

@Suite struct SafeTensorsWriterAtomicityTests {
    @Test func writingIntoAMissingDirectoryThrowsAndLeavesNothing() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        var w = SafeTensorsWriter()
        try w.add("x", floats: [1], shape: [1])
        let path = dir + "/missing/m.safetensors"
        #expect(throws: TernaryKitError.self) { try w.write(to: path) }
        #expect(!FileManager.default.fileExists(atPath: dir + "/missing"))
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir).isEmpty)
    }

    @Test func aFailureMidwayLeavesTheOldFileIntact() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let path = dir + "/m.safetensors"
        var old = SafeTensorsWriter()
        try old.add("old", floats: [1, 2, 3], shape: [3])
        try old.write(to: path)
        let before = try Data(contentsOf: URL(fileURLWithPath: path))

        var new = SafeTensorsWriter()
        try new.add("new", floats: [Float](repeating: 4, count: 1000), shape: [1000])
        for cut in [0, 7, 100, 1500] {
            new.failAfterBytes = cut
            #expect(throws: TernaryKitError.self) { try new.write(to: path) }
            #expect(try Data(contentsOf: URL(fileURLWithPath: path)) == before)
            #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["m.safetensors"])  // no temporary left
        }
        new.failAfterBytes = nil
        try new.write(to: path)
        #expect(try SafeTensorsFile(path: path).names == ["new"])
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["m.safetensors"])
    }

    @Test func renamingOntoADirectoryFailsCleanly() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try FileManager.default.createDirectory(atPath: dir + "/taken", withIntermediateDirectories: false)
        try "keep".write(toFile: dir + "/taken/inner", atomically: false, encoding: .utf8)
        var w = SafeTensorsWriter()
        try w.add("x", floats: [1], shape: [1])
        #expect(throws: TernaryKitError.self) { try w.write(to: dir + "/taken") }
        #expect(try FileManager.default.contentsOfDirectory(atPath: dir) == ["taken"])
        #expect(try String(contentsOfFile: dir + "/taken/inner", encoding: .utf8) == "keep")
    }
}

// MARK: - Name checks

@Suite struct TensorNameCheckTests {
    @Test func listsMissingAndUnexpectedNames() {
        let check = TensorNameCheck(expected: ["a", "b", "c"], actual: ["b", "c", "d", "e"])
        #expect(check.missing == ["a"] && check.unexpected == ["d", "e"] && !check.isExact)
        #expect(check.summary() == "1 missing tensor: \"a\"; 2 unexpected tensors: \"d\", \"e\"")
        #expect(throws: TernaryKitError.file(path: "m", problem: check.summary())) { try check.check(path: "m") }
        #expect(throws: TernaryKitError.file(path: "m", problem: "1 missing tensor: \"a\"")) { try check.check(path: "m", allowUnexpected: true) }
        #expect(throws: Never.self) { try TensorNameCheck(expected: ["a"], actual: ["a", "z"]).check(path: "m", allowUnexpected: true) }
        let many = TensorNameCheck(expected: (0..<30).map { "t\($0)" }, actual: [])
        #expect(many.summary(limit: 2).hasSuffix(", and 28 more"))
    }
}

// MARK: - Checkpoint directories (single file and sharded)

@Suite struct SafeTensorsCollectionTests {
    func writeShards(_ dir: String, index: String) throws {
        var a = SafeTensorsWriter()
        try a.add("w.0", floats: [1, 2], shape: [2])
        try a.add("w.1", integers: [UInt8(3)], shape: [1])
        try a.write(to: dir + "/model-00001-of-00002.safetensors")
        var b = SafeTensorsWriter()
        try b.add("w.2", floats: [4], shape: [1], as: .bf16)
        try b.write(to: dir + "/model-00002-of-00002.safetensors")
        try index.write(toFile: dir + "/model.safetensors.index.json", atomically: true, encoding: .utf8)
    }

    let goodIndex = #"{"metadata":{"total_size":11},"weight_map":{"w.0":"model-00001-of-00002.safetensors","w.1":"model-00001-of-00002.safetensors","w.2":"model-00002-of-00002.safetensors"}}"#

    @Test func readsShardedCheckpoints() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeShards(dir, index: goodIndex)
        let c = try SafeTensorsCollection(directory: dir)
        #expect(c.files.count == 2 && c.names == ["w.0", "w.1", "w.2"])
        #expect(try c.floats("w.0") == [1, 2] && c.uint8s("w.1") == [3] && c.floats("w.2") == [4])
        #expect(c.nameCheck(expected: ["w.0", "w.1", "w.2"]).isExact)
        #expect(throws: TernaryKitError.self) { try c.floats("w.3") }
    }

    @Test func readsSingleFileCheckpoints() throws {
        let c = try SafeTensorsCollection(directory: fixtureDirectory)
        #expect(c.files.count == 1 && c.names.count == 38)
    }

    @Test(arguments: [
        (#"{"weight_map":{"w.0":"model-00001-of-00002.safetensors","w.2":"model-00002-of-00002.safetensors"}}"#, "\"w.1\" is not listed"),
        (#"{"weight_map":{"w.0":"model-00001-of-00002.safetensors","w.1":"model-00002-of-00002.safetensors","w.2":"model-00002-of-00002.safetensors"}}"#, "listed in"),
        (#"{"weight_map":{"w.0":"model-00001-of-00002.safetensors","w.1":"model-00001-of-00002.safetensors","w.2":"model-00002-of-00002.safetensors","w.9":"model-00002-of-00002.safetensors"}}"#, "missing from their shards: \"w.9\""),
        (#"{"weight_map":{"w.0":"../model-00001-of-00002.safetensors"}}"#, "not a file in the checkpoint directory"),
        (#"{"weight_map":{"w.0":"absent.safetensors"}}"#, "no such file"),
        (#"{"weight_map":{}}"#, "empty"),
        (#"{"weight_map":[]}"#, "expected an object"),
        (#"{"metadata":{}}"#, "missing \"weight_map\""),
        (#"{"weight_map":"#, "invalid JSON"),
    ])
    func badIndexesAreRejected(index: String, words: String) throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        try writeShards(dir, index: index)
        do {
            _ = try SafeTensorsCollection(directory: dir)
            Issue.record("opened")
        } catch let TernaryKitError.file(_, problem) {
            #expect(problem.contains(words), "\(problem)")
        }
    }

    @Test func emptyDirectoryIsAnError() throws {
        let dir = try temporaryDirectory()
        defer { try? FileManager.default.removeItem(atPath: dir) }
        #expect(throws: TernaryKitError.self) { try SafeTensorsCollection(directory: dir) }
    }
}
