import TensorCore

/// A small, strict JSON parser for safetensors headers.
///
/// Why not `JSONSerialization`: a header comes from an untrusted file, and we want exact control
/// over what is accepted — integers that do not fit in `Int` are reported (not rounded through
/// `Double`), duplicate keys are refused (a duplicate tensor name would otherwise silently hide
/// one entry), nesting depth is bounded (a hostile `[[[[...` cannot exhaust the stack), strings must
/// be valid UTF-8, and every failure names its byte offset. The parser never traps: all index
/// arithmetic is bounds-checked against the buffer.
enum HeaderJSON: Equatable, Sendable {
    case object([(key: String, value: HeaderJSON)])
    case array([HeaderJSON])
    case string(String)
    /// A number, kept as its source text so integer fields can be parsed exactly.
    case number(String)
    case bool(Bool)
    case null

    static func == (a: HeaderJSON, b: HeaderJSON) -> Bool {
        switch (a, b) {
        case (.object(let x), .object(let y)):
            return x.count == y.count && zip(x, y).allSatisfy { $0.key.utf8.elementsEqual($1.key.utf8) && $0.value == $1.value }
        case (.array(let x), .array(let y)): return x == y
        case (.string(let x), .string(let y)): return x.utf8.elementsEqual(y.utf8)
        case (.number(let x), .number(let y)): return x == y
        case (.bool(let x), .bool(let y)): return x == y
        case (.null, .null): return true
        default: return false
        }
    }

    /// The deepest nesting of arrays and objects accepted. A safetensors header needs 3.
    static let maximumDepth = 64

    /// A short name of the value's kind, for error messages.
    var kind: String {
        switch self {
        case .object: return "an object"
        case .array: return "an array"
        case .string: return "a string"
        case .number: return "a number"
        case .bool: return "a boolean"
        case .null: return "null"
        }
    }

    /// The value as an exact integer, or nil when it is not an integer literal that fits in `Int`
    /// (fractions, exponents, and out-of-range literals all give nil).
    var exactInt: Int? {
        guard case .number(let text) = self else { return nil }
        guard !text.contains(where: { $0 == "." || $0 == "e" || $0 == "E" }) else { return nil }
        return Int(text)
    }

    /// Parses `bytes` as one JSON value (surrounding whitespace allowed).
    /// - Throws: `JSONProblem` naming the byte offset and what was wrong.
    static func parse(_ bytes: UnsafeRawBufferPointer) throws(JSONProblem) -> HeaderJSON {
        var parser = Parser(bytes: bytes)
        parser.skipWhitespace()
        let value = try parser.parseValue(depth: 0)
        parser.skipWhitespace()
        guard parser.position == bytes.count else {
            throw JSONProblem(offset: parser.position, message: "unexpected text after the JSON value")
        }
        return value
    }

    /// What went wrong while parsing, and where.
    struct JSONProblem: Error, Sendable {
        var offset: Int
        var message: String
        var description: String { "invalid JSON at header byte \(offset): \(message)" }
    }

    private struct Parser {
        let bytes: UnsafeRawBufferPointer
        var position = 0

        init(bytes: UnsafeRawBufferPointer) { self.bytes = bytes }

        var atEnd: Bool { position >= bytes.count }

        func peek() -> UInt8? { position < bytes.count ? bytes[position] : nil }

        func fail(_ message: String) -> JSONProblem { JSONProblem(offset: position, message: message) }

        mutating func skipWhitespace() {
            while let c = peek(), c == 0x20 || c == 0x0A || c == 0x0D || c == 0x09 { position += 1 }
        }

        mutating func expect(_ literal: StaticString, value: HeaderJSON) throws(JSONProblem) -> HeaderJSON {
            let count = literal.utf8CodeUnitCount
            guard bytes.count - position >= count else { throw fail("truncated literal") }
            let ok = literal.withUTF8Buffer { lit in
                (0..<count).allSatisfy { bytes[position + $0] == lit[$0] }
            }
            guard ok else { throw fail("unexpected character") }
            position += count
            return value
        }

        mutating func parseValue(depth: Int) throws(JSONProblem) -> HeaderJSON {
            guard let c = peek() else { throw fail("unexpected end of header") }
            switch c {
            case UInt8(ascii: "{"):
                guard depth < HeaderJSON.maximumDepth else { throw fail("nested deeper than \(HeaderJSON.maximumDepth) levels") }
                return try parseObject(depth: depth + 1)
            case UInt8(ascii: "["):
                guard depth < HeaderJSON.maximumDepth else { throw fail("nested deeper than \(HeaderJSON.maximumDepth) levels") }
                return try parseArray(depth: depth + 1)
            case UInt8(ascii: "\""):
                return .string(try parseString())
            case UInt8(ascii: "t"): return try expect("true", value: .bool(true))
            case UInt8(ascii: "f"): return try expect("false", value: .bool(false))
            case UInt8(ascii: "n"): return try expect("null", value: .null)
            case UInt8(ascii: "-"), UInt8(ascii: "0")...UInt8(ascii: "9"):
                return try parseNumber()
            default:
                throw fail("unexpected character \(describe(c))")
            }
        }

        func describe(_ c: UInt8) -> String {
            (0x21...0x7E).contains(c) ? "'\(Character(Unicode.Scalar(c)))'" : "byte 0x\(String(c, radix: 16))"
        }

        mutating func parseObject(depth: Int) throws(JSONProblem) -> HeaderJSON {
            position += 1  // {
            var members: [(key: String, value: HeaderJSON)] = []
            // Keys are compared by their bytes (not Swift's canonical equivalence): "café" in NFC
            // and in NFD are two keys, as for Hugging Face's reader.
            var seen = Set<TensorName>()
            skipWhitespace()
            if peek() == UInt8(ascii: "}") { position += 1; return .object(members) }
            while true {
                skipWhitespace()
                guard peek() == UInt8(ascii: "\"") else { throw fail("expected a string key") }
                let keyOffset = position
                let key = try parseString()
                guard seen.insert(TensorName(key)).inserted else {
                    throw JSONProblem(offset: keyOffset, message: "duplicate key \"\(key.escapedForTerminal)\"")
                }
                skipWhitespace()
                guard peek() == UInt8(ascii: ":") else { throw fail("expected ':' after a key") }
                position += 1
                skipWhitespace()
                let value = try parseValue(depth: depth)
                members.append((key, value))
                skipWhitespace()
                guard let c = peek() else { throw fail("unexpected end of header inside an object") }
                position += 1
                if c == UInt8(ascii: "}") { return .object(members) }
                guard c == UInt8(ascii: ",") else { position -= 1; throw fail("expected ',' or '}' in an object") }
            }
        }

        mutating func parseArray(depth: Int) throws(JSONProblem) -> HeaderJSON {
            position += 1  // [
            var elements: [HeaderJSON] = []
            skipWhitespace()
            if peek() == UInt8(ascii: "]") { position += 1; return .array(elements) }
            while true {
                skipWhitespace()
                elements.append(try parseValue(depth: depth))
                skipWhitespace()
                guard let c = peek() else { throw fail("unexpected end of header inside an array") }
                position += 1
                if c == UInt8(ascii: "]") { return .array(elements) }
                guard c == UInt8(ascii: ",") else { position -= 1; throw fail("expected ',' or ']' in an array") }
            }
        }

        mutating func parseNumber() throws(JSONProblem) -> HeaderJSON {
            let start = position
            if peek() == UInt8(ascii: "-") { position += 1 }
            guard let first = peek(), (0x30...0x39).contains(first) else { throw fail("expected a digit") }
            if first == 0x30 {
                position += 1
            } else {
                while let c = peek(), (0x30...0x39).contains(c) { position += 1 }
            }
            if peek() == UInt8(ascii: ".") {
                position += 1
                guard let c = peek(), (0x30...0x39).contains(c) else { throw fail("expected a digit after '.'") }
                while let c = peek(), (0x30...0x39).contains(c) { position += 1 }
            }
            if let e = peek(), e == UInt8(ascii: "e") || e == UInt8(ascii: "E") {
                position += 1
                if let s = peek(), s == UInt8(ascii: "+") || s == UInt8(ascii: "-") { position += 1 }
                guard let c = peek(), (0x30...0x39).contains(c) else { throw fail("expected a digit in the exponent") }
                while let c = peek(), (0x30...0x39).contains(c) { position += 1 }
            }
            let text = String(decoding: UnsafeRawBufferPointer(rebasing: bytes[start..<position]), as: UTF8.self)
            return .number(text)
        }

        mutating func parseHex4() throws(JSONProblem) -> UInt32 {
            guard bytes.count - position >= 4 else { throw fail("truncated \\u escape") }
            var value: UInt32 = 0
            for _ in 0..<4 {
                let c = bytes[position]
                let digit: UInt32
                switch c {
                case 0x30...0x39: digit = UInt32(c - 0x30)
                case 0x41...0x46: digit = UInt32(c - 0x41 + 10)
                case 0x61...0x66: digit = UInt32(c - 0x61 + 10)
                default: throw fail("invalid hex digit in \\u escape")
                }
                value = value << 4 | digit
                position += 1
            }
            return value
        }

        mutating func parseString() throws(JSONProblem) -> String {
            position += 1  // opening quote
            var utf8: [UInt8] = []
            while true {
                guard let c = peek() else { throw fail("unterminated string") }
                position += 1
                switch c {
                case UInt8(ascii: "\""):
                    guard let s = String(validating: utf8, as: UTF8.self) else {
                        throw fail("string is not valid UTF-8")
                    }
                    return s
                case UInt8(ascii: "\\"):
                    guard let e = peek() else { throw fail("unterminated escape") }
                    position += 1
                    switch e {
                    case UInt8(ascii: "\""): utf8.append(0x22)
                    case UInt8(ascii: "\\"): utf8.append(0x5C)
                    case UInt8(ascii: "/"): utf8.append(0x2F)
                    case UInt8(ascii: "b"): utf8.append(0x08)
                    case UInt8(ascii: "f"): utf8.append(0x0C)
                    case UInt8(ascii: "n"): utf8.append(0x0A)
                    case UInt8(ascii: "r"): utf8.append(0x0D)
                    case UInt8(ascii: "t"): utf8.append(0x09)
                    case UInt8(ascii: "u"):
                        var scalar = try parseHex4()
                        if (0xD800...0xDBFF).contains(scalar) {
                            guard bytes.count - position >= 2, bytes[position] == UInt8(ascii: "\\"),
                                  bytes[position + 1] == UInt8(ascii: "u") else {
                                throw fail("unpaired surrogate in \\u escape")
                            }
                            position += 2
                            let low = try parseHex4()
                            guard (0xDC00...0xDFFF).contains(low) else { throw fail("unpaired surrogate in \\u escape") }
                            scalar = 0x10000 + ((scalar - 0xD800) << 10) + (low - 0xDC00)
                        } else if (0xDC00...0xDFFF).contains(scalar) {
                            throw fail("unpaired surrogate in \\u escape")
                        }
                        guard let u = Unicode.Scalar(scalar) else { throw fail("invalid \\u escape") }
                        utf8.append(contentsOf: Array(String(Character(u)).utf8))
                    default:
                        position -= 1
                        throw fail("invalid escape \(describe(e))")
                    }
                case 0x00..<0x20:
                    position -= 1
                    throw fail("control character in a string")
                default:
                    utf8.append(c)
                }
            }
        }
    }
}

extension HeaderJSON {
    /// Serialises a string as a JSON string literal (quotes, backslashes and control characters
    /// escaped; everything else written as UTF-8).
    static func quoted(_ s: String) -> String {
        var out = "\""
        for u in s.unicodeScalars {
            switch u {
            case "\"": out += "\\\""
            case "\\": out += "\\\\"
            case "\n": out += "\\n"
            case "\r": out += "\\r"
            case "\t": out += "\\t"
            default:
                if u.value < 0x20 {
                    let hex = String(u.value, radix: 16)
                    out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
                } else {
                    out.unicodeScalars.append(u)
                }
            }
        }
        out += "\""
        return out
    }
}
