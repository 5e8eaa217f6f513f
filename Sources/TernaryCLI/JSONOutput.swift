import Foundation
import TensorCore

/// The JSON the CLI prints: an `Encodable` value as one compact line.
///
/// Objects keep their fields in the order the value encodes them (a synthesized `encode(to:)`
/// follows the CodingKeys declaration order). Foundation's `JSONEncoder` cannot promise that on
/// Linux (its key order changes from run to run unless keys are sorted), so objects and arrays
/// are laid out here and `JSONEncoder` escapes the strings. Numbers: integers as written, a
/// finite `Float` or `Double` as its shortest round-trip text (`description`), a non-finite one
/// as `null`.
enum JSONOutput {
    /// Where `printJSON` sends its lines instead of stdout, while bound (tests read a command's
    /// JSON this way, unaffected by other tests printing at the same time).
    @TaskLocal static var capture: (@Sendable (String) -> Void)? = nil

    /// `value` as one line of JSON, without a newline.
    static func line<T: Encodable>(_ value: T) throws -> String {
        let root = JSONNode()
        try root.store(value, codingPath: [])
        var out = ""
        root.write(to: &out)
        return out
    }

    /// A string as a JSON string literal, quotes included (escaped by `JSONEncoder`; DEL, C1
    /// controls and bidirectional overrides, which `JSONEncoder` leaves raw, as `\uXXXX` too, so
    /// no string from a file reaches a terminal unescaped).
    static func quoted(_ s: String) throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.withoutEscapingSlashes]
        let text = String(decoding: try encoder.encode(s), as: UTF8.self)
        guard text.unicodeScalars.contains(where: String.needsTerminalEscape) else { return text }
        var out = ""
        for u in text.unicodeScalars {
            if String.needsTerminalEscape(u) {
                let hex = String(u.value, radix: 16)
                out += "\\u" + String(repeating: "0", count: 4 - hex.count) + hex
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// The JSON text of a number or `null` for a non-finite one.
    static func number(_ x: Float) -> String { x.isFinite ? x.description : "null" }
    static func number(_ x: Double) -> String { x.isFinite ? x.description : "null" }
}

/// Prints `value` as one line of JSON (see `JSONOutput`).
func printJSON<T: Encodable>(_ value: T) throws {
    let line = try JSONOutput.line(value)
    if let capture = JSONOutput.capture { capture(line) } else { print(line) }
}

/// `x` rounded to 6 significant digits, the precision of the CLI's JSON timings (`%.6g`);
/// non-finite values are returned unchanged (and print as `null`).
func sixDigits(_ x: Double) -> Double {
    guard x.isFinite else { return x }
    return Double(String(format: "%.6g", x)) ?? x
}

/// A `[String: String]` encoded as an object with its keys in sorted order (a dictionary's own
/// order differs from run to run).
struct SortedStringMap: Encodable {
    var entries: [String: String]
    /// Pairs already in order (keys compared by bytes, so canonically equivalent keys stay apart);
    /// when set, used instead of `entries`.
    var orderedPairs: [(key: String, value: String)]? = nil

    private struct Key: CodingKey {
        var stringValue: String
        var intValue: Int? { nil }
        init(stringValue: String) { self.stringValue = stringValue }
        init?(intValue: Int) { nil }
    }

    func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: Key.self)
        if let pairs = orderedPairs {
            for (key, value) in pairs { try container.encode(value, forKey: Key(stringValue: key)) }
            return
        }
        for key in entries.keys.sorted() { try container.encode(entries[key]!, forKey: Key(stringValue: key)) }
    }
}

// MARK: - The ordered encoder

/// One value being encoded: nothing yet, ready JSON text, an array or an object (fields in order).
private final class JSONNode {
    enum Content {
        case empty
        case text(String)
        case array([JSONNode])
        case object([(key: String, node: JSONNode)])
    }
    var content = Content.empty

    /// Encodes `value` into this node; scalars (and `[Float]` / `[Double]` rows, for speed) directly.
    func store<T: Encodable>(_ value: T, codingPath: [any CodingKey]) throws {
        switch value {
        case let s as String: content = .text(try JSONOutput.quoted(s))
        case let b as Bool: content = .text(b ? "true" : "false")
        case let x as Float: content = .text(JSONOutput.number(x))
        case let x as Double: content = .text(JSONOutput.number(x))
        case let row as [Float]: content = .text("[" + row.map(JSONOutput.number).joined(separator: ",") + "]")
        case let row as [Double]: content = .text("[" + row.map(JSONOutput.number).joined(separator: ",") + "]")
        case let i as any BinaryInteger: content = .text(String(describing: i))
        default: try value.encode(to: OrderedEncoder(node: self, codingPath: codingPath))
        }
    }

    /// The child for `key`, replacing an earlier value of the same key in place.
    func child(forKey key: String) -> JSONNode {
        var fields: [(key: String, node: JSONNode)] = []
        if case .object(let f) = content { fields = f }
        let node = JSONNode()
        if let i = fields.firstIndex(where: { $0.key.utf8.elementsEqual(key.utf8) }) { fields[i].node = node } else { fields.append((key, node)) }
        content = .object(fields)
        return node
    }

    func appendChild() -> JSONNode {
        var items: [JSONNode] = []
        if case .array(let a) = content { items = a }
        let node = JSONNode()
        items.append(node)
        content = .array(items)
        return node
    }

    func becomeObject() { if case .object = content {} else { content = .object([]) } }
    func becomeArray() { if case .array = content {} else { content = .array([]) } }

    func write(to out: inout String) {
        switch content {
        case .empty: out += "{}"   // what JSONEncoder writes for a value that encodes nothing
        case .text(let t): out += t
        case .array(let items):
            out += "["
            for (i, item) in items.enumerated() {
                if i > 0 { out += "," }
                item.write(to: &out)
            }
            out += "]"
        case .object(let fields):
            out += "{"
            for (i, field) in fields.enumerated() {
                if i > 0 { out += "," }
                out += (try? JSONOutput.quoted(field.key)) ?? "\"\""
                out += ":"
                field.node.write(to: &out)
            }
            out += "}"
        }
    }
}

private struct OrderedEncoder: Encoder {
    let node: JSONNode
    var codingPath: [any CodingKey]
    var userInfo: [CodingUserInfoKey: Any] { [:] }

    func container<Key: CodingKey>(keyedBy type: Key.Type) -> KeyedEncodingContainer<Key> {
        node.becomeObject()
        return KeyedEncodingContainer(KeyedContainer<Key>(node: node, codingPath: codingPath))
    }

    func unkeyedContainer() -> any UnkeyedEncodingContainer {
        node.becomeArray()
        return UnkeyedContainer(node: node, codingPath: codingPath)
    }

    func singleValueContainer() -> any SingleValueEncodingContainer {
        SingleValueContainer(node: node, codingPath: codingPath)
    }
}

private struct KeyedContainer<Key: CodingKey>: KeyedEncodingContainerProtocol {
    let node: JSONNode
    var codingPath: [any CodingKey]

    mutating func encodeNil(forKey key: Key) throws { node.child(forKey: key.stringValue).content = .text("null") }

    mutating func encode<T: Encodable>(_ value: T, forKey key: Key) throws {
        try node.child(forKey: key.stringValue).store(value, codingPath: codingPath + [key])
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type, forKey key: Key)
        -> KeyedEncodingContainer<NestedKey>
    {
        OrderedEncoder(node: node.child(forKey: key.stringValue), codingPath: codingPath + [key]).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer(forKey key: Key) -> any UnkeyedEncodingContainer {
        OrderedEncoder(node: node.child(forKey: key.stringValue), codingPath: codingPath + [key]).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        OrderedEncoder(node: node.child(forKey: "super"), codingPath: codingPath)
    }

    mutating func superEncoder(forKey key: Key) -> any Encoder {
        OrderedEncoder(node: node.child(forKey: key.stringValue), codingPath: codingPath + [key])
    }
}

private struct UnkeyedContainer: UnkeyedEncodingContainer {
    let node: JSONNode
    var codingPath: [any CodingKey]
    var count: Int {
        if case .array(let items) = node.content { return items.count }
        return 0
    }

    private struct Index: CodingKey {
        var intValue: Int?
        var stringValue: String { "Index \(intValue ?? 0)" }
        init(_ i: Int) { intValue = i }
        init?(stringValue: String) { nil }
        init?(intValue: Int) { self.intValue = intValue }
    }

    mutating func encodeNil() throws { node.appendChild().content = .text("null") }

    mutating func encode<T: Encodable>(_ value: T) throws {
        let path = codingPath + [Index(count)]
        try node.appendChild().store(value, codingPath: path)
    }

    mutating func nestedContainer<NestedKey: CodingKey>(keyedBy keyType: NestedKey.Type) -> KeyedEncodingContainer<NestedKey> {
        let path = codingPath + [Index(count)]
        return OrderedEncoder(node: node.appendChild(), codingPath: path).container(keyedBy: keyType)
    }

    mutating func nestedUnkeyedContainer() -> any UnkeyedEncodingContainer {
        let path = codingPath + [Index(count)]
        return OrderedEncoder(node: node.appendChild(), codingPath: path).unkeyedContainer()
    }

    mutating func superEncoder() -> any Encoder {
        let path = codingPath + [Index(count)]
        return OrderedEncoder(node: node.appendChild(), codingPath: path)
    }
}

private struct SingleValueContainer: SingleValueEncodingContainer {
    let node: JSONNode
    var codingPath: [any CodingKey]

    mutating func encodeNil() throws { node.content = .text("null") }

    mutating func encode<T: Encodable>(_ value: T) throws { try node.store(value, codingPath: codingPath) }
}
