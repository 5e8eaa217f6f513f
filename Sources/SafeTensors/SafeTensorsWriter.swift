import Foundation
import TensorCore

/// Builds a safetensors file from named tensors and writes it atomically.
///
/// The file is written to a temporary file in the destination's directory, flushed to disk, and
/// then renamed over the destination, so a reader never sees a partial file and a failure (full
/// disk, missing directory, killed process) leaves any previous file untouched.
///
/// Layout, chosen to match what PyTorch's `safetensors` produces and to keep typed access
/// aligned: header keys sorted byte-wise (`__metadata__` included when not empty); the header
/// padded with spaces so the data area starts at a multiple of 8; tensor data ordered by element
/// size (largest first), then by name, with no gaps — so every tensor starts at a multiple of its
/// element size.
public struct SafeTensorsWriter: Sendable {
    struct Entry: Sendable {
        var dtype: SafeTensorsDType
        var shape: [Int]
        var bytes: [UInt8]
    }

    /// Free-form string metadata stored under `__metadata__` (omitted when empty), keyed by the
    /// keys' UTF-8 bytes like a file's (`SafeTensorsFile.metadata`), so copying a file's metadata
    /// keeps keys that only differ in Unicode normalisation.
    public var metadata: [TensorName: String]
    private(set) var entries: [TensorName: Entry] = [:]

    /// Testing hook: when set, `write(to:)` fails after this many bytes, as a full disk would.
    var failAfterBytes: Int?

    /// An empty writer with optional metadata (keyed by UTF-8 bytes).
    public init(metadata: [TensorName: String] = [:]) {
        self.metadata = metadata
    }

    /// An empty writer with metadata given by `String` keys.
    public init(metadata: [String: String]) {
        self.metadata = Dictionary(uniqueKeysWithValues: metadata.map { (TensorName($0.key), $0.value) })
    }

    /// The names added so far, sorted.
    public var names: [String] { entries.keys.sorted().map(\.string) }

    /// Adds a tensor from its raw little-endian bytes.
    /// - Throws: `.invalidArgument` for an empty, reserved or duplicate name, `.invalidShape` for a
    ///   negative or overflowing shape, `.lengthMismatch` when `bytes.count` is not
    ///   `dtype.byteSize × product(shape)`.
    public mutating func add(_ name: String, dtype: SafeTensorsDType, shape: [Int], bytes: [UInt8]) throws {
        guard !name.isEmpty else { throw TernaryKitError.invalidArgument("a tensor name must not be empty") }
        guard name != "__metadata__" else { throw TernaryKitError.invalidArgument("\"__metadata__\" is reserved, not a tensor name") }
        guard entries[TensorName(name)] == nil else { throw TernaryKitError.invalidArgument("tensor \"\(name.escapedForTerminal)\" added twice") }
        let count = try SafeTensorsWriter.elementCount(shape, name: name)
        let (expected, overflow) = count.multipliedReportingOverflow(by: dtype.byteSize)
        guard !overflow else { throw TernaryKitError.invalidShape("tensor \"\(name)\": shape \(shape) overflows") }
        guard bytes.count == expected else {
            throw TernaryKitError.lengthMismatch(expected: expected, actual: bytes.count,
                                                 what: "bytes of \(dtype.rawValue) tensor \"\(name)\" with shape \(shape)")
        }
        entries[TensorName(name)] = Entry(dtype: dtype, shape: shape, bytes: bytes)
    }

    /// Adds Float values stored as `dtype`, one of F32, F16, BF16 (rounded to nearest-even) or F64.
    public mutating func add(_ name: String, floats: [Float], shape: [Int], as dtype: SafeTensorsDType = .f32) throws {
        let count = try SafeTensorsWriter.elementCount(shape, name: name)
        guard floats.count == count else {
            throw TernaryKitError.lengthMismatch(expected: count, actual: floats.count, what: "values of tensor \"\(name)\" with shape \(shape)")
        }
        let bytes: [UInt8]
        switch dtype {
        case .f32: bytes = SafeTensorsWriter.encode(floats) { $0.bitPattern }
        case .f64: bytes = SafeTensorsWriter.encode(floats) { Double($0).bitPattern }
        case .bf16: bytes = SafeTensorsWriter.encode(floats) { HalfPrecision.bfloat16Bits($0) }
        case .f16: bytes = SafeTensorsWriter.encode(floats) { HalfPrecision.float16Bits($0) }
        default:
            throw TernaryKitError.invalidArgument("tensor \"\(name)\": Float values cannot be stored as \(dtype.rawValue); use F32, F16, BF16 or F64")
        }
        try add(name, dtype: dtype, shape: shape, bytes: bytes)
    }

    /// Adds integer values; the dtype follows the element type (Int8 → I8, UInt8 → U8, Int16 → I16,
    /// UInt16 → U16, Int32 → I32, UInt32 → U32, Int64/Int → I64, UInt64 → U64).
    public mutating func add<T: FixedWidthInteger>(_ name: String, integers: [T], shape: [Int]) throws {
        let dtype: SafeTensorsDType
        switch (T.isSigned, T.bitWidth) {
        case (true, 8): dtype = .i8
        case (false, 8): dtype = .u8
        case (true, 16): dtype = .i16
        case (false, 16): dtype = .u16
        case (true, 32): dtype = .i32
        case (false, 32): dtype = .u32
        case (true, 64): dtype = .i64
        case (false, 64): dtype = .u64
        default: throw TernaryKitError.invalidArgument("tensor \"\(name)\": no safetensors dtype for \(T.self)")
        }
        let count = try SafeTensorsWriter.elementCount(shape, name: name)
        guard integers.count == count else {
            throw TernaryKitError.lengthMismatch(expected: count, actual: integers.count, what: "values of tensor \"\(name)\" with shape \(shape)")
        }
        try add(name, dtype: dtype, shape: shape, bytes: SafeTensorsWriter.encode(integers) { $0 })
    }

    static func elementCount(_ shape: [Int], name: String) throws -> Int {
        do { return try Tensor.elementCount(of: shape) } catch let TernaryKitError.invalidShape(message) {
            throw TernaryKitError.invalidShape("tensor \"\(name)\": \(message)")
        }
    }

    /// Encodes each element as the little-endian bytes of `bits(element)`, without per-element
    /// array growth (export of a large model encodes hundreds of millions of values).
    @inline(__always)
    static func encode<E, T: FixedWidthInteger>(_ values: [E], _ bits: (E) -> T) -> [UInt8] {
        let size = MemoryLayout<T>.size
        return [UInt8](unsafeUninitializedCapacity: values.count * size) { buffer, initialized in
            let raw = UnsafeMutableRawBufferPointer(buffer)
            for (i, v) in values.enumerated() {
                raw.storeBytes(of: bits(v).littleEndian, toByteOffset: i &* size, as: T.self)
            }
            initialized = values.count * size
        }
    }

    static func appendLittleEndian<T: FixedWidthInteger>(_ value: T, to bytes: inout [UInt8]) {
        var v = value.littleEndian
        withUnsafeBytes(of: &v) { bytes.append(contentsOf: $0) }
    }

    /// The tensor names in data order: element size descending, then name.
    var dataOrder: [TensorName] {
        entries.keys.sorted { a, b in
            let sa = entries[a]!.dtype.byteSize, sb = entries[b]!.dtype.byteSize
            return sa != sb ? sa > sb : a < b
        }
    }

    /// The header bytes, padded with spaces to make `8 + count` a multiple of 8.
    func headerBytes() -> [UInt8] {
        var offsets: [TensorName: Range<Int>] = [:]
        var position = 0
        for name in dataOrder {
            let n = entries[name]!.bytes.count
            offsets[name] = position..<(position + n)
            position += n
        }
        var members: [(key: String, text: String)] = []
        if !metadata.isEmpty {
            let pairs = metadata.keys.sorted()
                .map { "\(HeaderJSON.quoted($0.string)):\(HeaderJSON.quoted(metadata[$0]!))" }
            members.append(("__metadata__", "\"__metadata__\":{" + pairs.joined(separator: ",") + "}"))
        }
        for (name, e) in entries {
            let r = offsets[name]!
            let shape = e.shape.map(String.init).joined(separator: ",")
            members.append((name.string, "\(HeaderJSON.quoted(name.string)):{\"data_offsets\":[\(r.lowerBound),\(r.upperBound)],"
                                  + "\"dtype\":\"\(e.dtype.rawValue)\",\"shape\":[\(shape)]}"))
        }
        // Members sorted by key, byte-wise ("__metadata__" among them).
        let sorted = members.sorted { Array($0.key.utf8).lexicographicallyPrecedes(Array($1.key.utf8)) }.map(\.text)
        var header = Array(("{" + sorted.joined(separator: ",") + "}").utf8)
        while (8 + header.count) % 8 != 0 { header.append(0x20) }
        return header
    }

    /// The whole file as bytes (for small files and tests; `write(to:)` streams instead).
    public func serialized() -> [UInt8] {
        let header = headerBytes()
        var out: [UInt8] = []
        SafeTensorsWriter.appendLittleEndian(UInt64(header.count), to: &out)
        out += header
        for name in dataOrder { out += entries[name]!.bytes }
        return out
    }

    /// Writes the file to `path` atomically (temporary file in the same directory, `fsync`,
    /// `rename`). On any failure the temporary file is removed and whatever was at `path` before
    /// is left as it was.
    /// - Throws: `TernaryKitError.file(path:problem:)` naming the failing step and the system error.
    public func write(to path: String) throws {
        let header = headerBytes()
        try AtomicFile.write(to: path, failAfterBytes: failAfterBytes) { out in
            var length = UInt64(header.count).littleEndian
            try withUnsafeBytes(of: &length) { try out.write($0) }
            try out.write(header)
            for name in dataOrder {
                try entries[name]!.bytes.withUnsafeBytes { raw in
                    if raw.count > 0 { try out.write(raw) }
                }
            }
        }
    }
}
