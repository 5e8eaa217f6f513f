/// A tensor or metadata name, compared, hashed and ordered by its UTF-8 bytes.
///
/// Swift's `String` compares by canonical equivalence: "café" written with U+00E9 and with
/// "e" + U+0301 are equal `String`s. In a safetensors header they are two different keys (the
/// format, and Hugging Face's reader, compare bytes), so every name in this module is keyed by
/// `TensorName`: two names are the same only when their bytes are.
public struct TensorName: Hashable, Comparable, Sendable, CustomStringConvertible, ExpressibleByStringLiteral {
    /// The name as a string (its `utf8` view holds the exact bytes).
    public let string: String

    /// A name from a string; its UTF-8 bytes identify it.
    public init(_ string: String) { self.string = string }

    public init(stringLiteral value: String) { self.string = value }

    public static func == (a: TensorName, b: TensorName) -> Bool { a.string.utf8.elementsEqual(b.string.utf8) }

    /// Byte-wise (UTF-8) order, the order of a safetensors header written by Hugging Face.
    public static func < (a: TensorName, b: TensorName) -> Bool {
        a.string.utf8.lexicographicallyPrecedes(b.string.utf8)
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(string.utf8.count)
        for byte in string.utf8 { hasher.combine(byte) }
    }

    /// The name itself (not escaped: escape with `escapedForTerminal` before printing).
    public var description: String { string }
}

extension Dictionary where Key == TensorName {
    /// The value for the name whose UTF-8 bytes are those of `name`.
    public subscript(_ name: String) -> Value? { self[TensorName(name)] }
}

extension Sequence where Element == String {
    /// The strings sorted by their UTF-8 bytes (canonically equivalent strings stay distinct).
    public func sortedByBytes() -> [String] {
        sorted { $0.utf8.lexicographicallyPrecedes($1.utf8) }
    }
}
