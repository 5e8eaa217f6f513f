// libFuzzer entry point for the parsers of untrusted input: the safetensors header parser (and
// the whole-file validation around it) and the `config.json` decoder. Built by
// scripts/fuzz.sh, which compiles this file together with the sources it exercises into one
// module (their `import`s of each other removed).
import Foundation

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ start: UnsafePointer<UInt8>?, _ count: Int) -> CInt {
    let bytes = start.map { Data(bytes: $0, count: count) } ?? Data()

    // 1. The input as a whole safetensors file.
    checkSafeTensors(bytes)

    // 2. The input as a header: an 8-byte length prefix and a small data area around it, so
    //    that the JSON parser and the entry validation see every input.
    var framed = Data()
    var length = UInt64(bytes.count).littleEndian
    withUnsafeBytes(of: &length) { framed.append(contentsOf: $0) }
    framed.append(bytes)
    framed.append(Data(count: 64))
    checkSafeTensors(framed)

    // 3. The input as config.json.
    do {
        let config = try BitNetConfig.parse(bytes, path: "fuzz/config.json")
        // A decoded config has been validated: its size estimate never traps.
        _ = try config.estimatedBytes()
        precondition(config.hiddenSize > 0 && config.vocabSize > 0)
    } catch {
        checkMessage("\(error)")
    }
    return 0
}

/// Parses `data` as a safetensors file; on success checks the invariants the accessors rely on,
/// on failure that the message is one escaped line.
func checkSafeTensors(_ data: Data) {
    do {
        let file = try SafeTensorsFile(data: data, path: "fuzz.safetensors")
        for name in file.names {
            let info = try file.info(name)
            precondition(info.dataOffsets.upperBound <= file.dataByteCount)
            precondition(info.byteCount == info.elementCount * info.dtype.byteSize)
            try file.withRawBytes(name) { raw in precondition(raw.count == info.byteCount) }
            if info.elementCount < 4096 { _ = try file.floats(name) }
        }
        _ = file.metadataKeys
    } catch {
        checkMessage("\(error)")
    }
}

/// Error messages built from file content must never carry a raw control character.
func checkMessage(_ message: String) {
    precondition(!message.unicodeScalars.contains(where: String.needsTerminalEscape),
                 "unescaped control character in: \(message.debugDescription)")
}
