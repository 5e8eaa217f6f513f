import Foundation
import TensorCore

/// Where one tensor lives in a safetensors file, as its header declares (after validation).
public struct SafeTensorInfo: Sendable, Equatable {
    /// The element type.
    public let dtype: SafeTensorsDType
    /// The shape (row-major, outermost first); `[]` is a scalar holding one element.
    public let shape: [Int]
    /// The byte range of the data, relative to the start of the data area (the header's
    /// `data_offsets`, half-open).
    public let dataOffsets: Range<Int>

    /// A description of one tensor (as a header declares it; `SafeTensorsFile` validates it).
    public init(dtype: SafeTensorsDType, shape: [Int], dataOffsets: Range<Int>) {
        self.dtype = dtype
        self.shape = shape
        self.dataOffsets = dataOffsets
    }

    /// The number of elements, the product of `shape` (1 for a scalar; 0 when any dimension is
    /// 0, whatever the others). `Int.max` if the product overflows, which a validated header
    /// never allows.
    public var elementCount: Int {
        if shape.contains(0) { return 0 }
        var product = 1
        for d in shape {
            let (p, overflow) = product.multipliedReportingOverflow(by: d)
            if overflow { return .max }
            product = p
        }
        return product
    }
    /// The number of data bytes, `dataOffsets.count`.
    public var byteCount: Int { dataOffsets.count }
}

/// A memory-mapped safetensors file: a validated header and zero-copy access to tensor data.
///
/// The file is mapped, not read: opening a multi-gigabyte checkpoint costs only the header parse,
/// and each tensor's bytes are paged in when touched. Every structural property of the header is
/// checked on open, with overflow-safe arithmetic, so that accessors afterwards cannot read
/// outside the file whatever bytes it holds:
/// - the file has at least 8 bytes; the little-endian header length `N` is at most
///   `maximumHeaderBytes` and `8 + N` fits in the file;
/// - the header is one valid JSON object (UTF-8, no duplicate keys); its optional `__metadata__`
///   is an object of string values;
/// - every other entry is an object with `dtype` (a known `SafeTensorsDType`), `shape`
///   (non-negative integers whose product, times the element size, does not overflow) and
///   `data_offsets` (`[begin, end]` with `begin ≤ end ≤` the size of the data area);
/// - `dtype size × product(shape) == end − begin`, and no two tensors' byte ranges overlap.
///
/// Gaps between tensors and trailing bytes after the last one are accepted (the format does not
/// forbid them). Each failure throws `TernaryKitError.file(path:problem:)` naming the file, the
/// tensor and the problem.
///
/// The mapping stays valid as long as the value (or a copy) lives. As with any memory map, a file
/// truncated by another process while mapped can fault on access; checkpoints are not expected
/// to change under a reader.
public struct SafeTensorsFile: Sendable {
    /// The largest header accepted (100 MB): real headers are a few hundred kilobytes at most, and
    /// the bound keeps a corrupt length from making the parser scan an arbitrary amount.
    public static let maximumHeaderBytes = 100_000_000

    /// The path the file was opened from (used in every error message).
    public let path: String
    /// The tensors by name; names are compared by their UTF-8 bytes (see `TensorName`), so two
    /// canonically equivalent but different names are two tensors.
    public let tensors: [TensorName: SafeTensorInfo]
    /// The `__metadata__` entries (empty when the header has none or `null`), keyed by bytes.
    public let metadata: [TensorName: String]
    /// The header length `N` in bytes (the data area starts at `8 + N`).
    public let headerByteCount: Int

    /// The whole file (memory-mapped when opened from a path).
    private let data: Data
    /// Offset of the data area within `data`.
    private let dataStart: Int

    /// Tensor names in ascending (byte-wise) order.
    public var names: [String] { tensors.keys.sorted().map(\.string) }

    /// The metadata keys in ascending (byte-wise) order.
    public var metadataKeys: [String] { metadata.keys.sorted().map(\.string) }

    /// The size of the data area in bytes (file size minus `8 + N`).
    public var dataByteCount: Int { data.count - dataStart }

    /// Memory-maps and validates the safetensors file at `path`.
    /// - Throws: `TernaryKitError.file` when the file cannot be read or is not a valid
    ///   safetensors file (see the type's documentation for every check).
    public init(path: String) throws {
        // stat first: a directory, a device or a FIFO is named as such (and a FIFO never opened).
        try FileKind.requireRegularFile(path, expected: "a .safetensors file")
        let data: Data
        do {
            data = try Data(contentsOf: URL(fileURLWithPath: path), options: .alwaysMapped)
        } catch {
            throw TernaryKitError.file(path: path, problem: "cannot read: \(error.localizedDescription)")
        }
        try self.init(data: data, path: path)
    }

    /// Validates safetensors bytes already in memory; `path` names them in error messages.
    public init(data: Data, path: String = "<memory>") throws {
        self.path = path
        // Make the Data's indices start at 0 so byte offsets are plain integers.
        let data = data.startIndex == 0 ? data : Data(data)
        self.data = data
        func fail(_ problem: String) -> TernaryKitError { .file(path: path, problem: problem) }

        guard data.count >= 8 else {
            throw fail("file is \(data.count) bytes, too short for a safetensors header (at least 8)")
        }
        let rawLength: UInt64 = data.withUnsafeBytes { UInt64(littleEndian: $0.loadUnaligned(as: UInt64.self)) }
        guard rawLength <= UInt64(SafeTensorsFile.maximumHeaderBytes) else {
            throw fail("header length \(rawLength) exceeds the \(SafeTensorsFile.maximumHeaderBytes)-byte limit")
        }
        let headerLength = Int(rawLength)
        guard headerLength <= data.count - 8 else {
            throw fail("header length \(headerLength) runs past the end of the file (\(data.count) bytes)")
        }
        self.headerByteCount = headerLength
        self.dataStart = 8 + headerLength
        let dataSize = data.count - dataStart

        let parsed = data.withUnsafeBytes { raw -> Result<HeaderJSON, HeaderJSON.JSONProblem> in
            Result { () throws(HeaderJSON.JSONProblem) -> HeaderJSON in
                try HeaderJSON.parse(UnsafeRawBufferPointer(rebasing: raw[8..<(8 + headerLength)]))
            }
        }
        let json: HeaderJSON
        switch parsed {
        case .success(let value): json = value
        case .failure(let problem): throw fail(problem.description)
        }
        guard case .object(let entries) = json else {
            throw fail("header is \(json.kind), expected a JSON object")
        }

        var tensors: [TensorName: SafeTensorInfo] = [:]
        var metadata: [TensorName: String] = [:]
        for (name, value) in entries {
            if name.utf8.elementsEqual("__metadata__".utf8) {
                // `null` is accepted as "no metadata", as Hugging Face's reader does.
                if case .null = value { continue }
                guard case .object(let pairs) = value else {
                    throw fail("__metadata__ is \(value.kind), expected an object of strings")
                }
                for (key, v) in pairs {
                    guard case .string(let s) = v else {
                        throw fail("__metadata__ entry \"\(key.escapedForTerminal)\" is \(v.kind), expected a string")
                    }
                    metadata[TensorName(key)] = s
                }
                continue
            }
            tensors[TensorName(name)] = try SafeTensorsFile.validateEntry(name: name, value: value, dataSize: dataSize, fail: fail)
        }

        // No overlaps: sort non-empty ranges by start and check each starts at or after the
        // previous end. (Empty tensors occupy no bytes and cannot overlap anything.)
        let ordered = tensors.filter { !$0.value.dataOffsets.isEmpty }
            .sorted { ($0.value.dataOffsets.lowerBound, $0.key) < ($1.value.dataOffsets.lowerBound, $1.key) }
        for (previous, next) in zip(ordered, ordered.dropFirst())
        where next.value.dataOffsets.lowerBound < previous.value.dataOffsets.upperBound {
            throw fail("tensor \"\(next.key.string.escapedForTerminal)\": data_offsets \(SafeTensorsFile.describe(next.value.dataOffsets)) "
                       + "overlap tensor \"\(previous.key.string.escapedForTerminal)\" at \(SafeTensorsFile.describe(previous.value.dataOffsets))")
        }
        self.tensors = tensors
        self.metadata = metadata
    }

    private static func validateEntry(
        name: String, value: HeaderJSON, dataSize: Int, fail: (String) -> TernaryKitError
    ) throws -> SafeTensorInfo {
        let label = "tensor \"\(name.escapedForTerminal)\""
        guard case .object(let fields) = value else {
            throw fail("\(label): entry is \(value.kind), expected an object with dtype, shape and data_offsets")
        }
        func field(_ key: String) throws -> HeaderJSON {
            guard let v = fields.first(where: { $0.key == key })?.value else {
                throw fail("\(label): missing \"\(key)\"")
            }
            return v
        }
        guard case .string(let dtypeName) = try field("dtype") else {
            throw fail("\(label): dtype is \(try field("dtype").kind), expected a string")
        }
        guard let dtype = SafeTensorsDType(rawValue: dtypeName) else {
            let known = SafeTensorsDType.allCases.map(\.rawValue).joined(separator: ", ")
            throw fail("\(label): unknown dtype \"\(dtypeName.escapedForTerminal)\" (known: \(known))")
        }
        guard case .array(let dims) = try field("shape") else {
            throw fail("\(label): shape is \(try field("shape").kind), expected an array of integers")
        }
        var shape: [Int] = []
        shape.reserveCapacity(dims.count)
        for (axis, d) in dims.enumerated() {
            guard let n = d.exactInt else {
                throw fail("\(label): shape dimension \(axis) (\(describe(d))) is not an integer in range")
            }
            guard n >= 0 else { throw fail("\(label): shape dimension \(axis) is negative (\(n))") }
            shape.append(n)
        }
        // Order-independent: a zero anywhere makes the product 0 (a valid empty tensor, whatever
        // the other dimensions); otherwise every partial product must fit in Int.
        var elements = 1
        if !shape.contains(0) {
            for n in shape {
                let (product, overflow) = elements.multipliedReportingOverflow(by: n)
                guard !overflow else { throw fail("\(label): shape \(describe(dims)) has too many elements (overflow)") }
                elements = product
            }
        } else {
            elements = 0
        }
        let (expectedBytes, bytesOverflow) = elements.multipliedReportingOverflow(by: dtype.byteSize)
        guard !bytesOverflow else { throw fail("\(label): shape \(shape) of \(dtype.rawValue) overflows the byte count") }

        guard case .array(let offsets) = try field("data_offsets") else {
            throw fail("\(label): data_offsets is \(try field("data_offsets").kind), expected [begin, end]")
        }
        guard offsets.count == 2 else {
            throw fail("\(label): data_offsets has \(offsets.count) elements, expected [begin, end]")
        }
        guard let begin = offsets[0].exactInt, let end = offsets[1].exactInt, begin >= 0, end >= 0 else {
            throw fail("\(label): data_offsets \(describe(offsets)) are not non-negative integers in range")
        }
        guard begin <= end else {
            throw fail("\(label): data_offsets [\(begin), \(end)] begin after they end")
        }
        guard end <= dataSize else {
            throw fail("\(label): data_offsets [\(begin), \(end)] run past the end of the data area (\(dataSize) bytes)")
        }
        guard end - begin == expectedBytes else {
            throw fail("\(label): \(dtype.rawValue) shape \(shape) needs \(expectedBytes) bytes, "
                       + "but data_offsets [\(begin), \(end)] hold \(end - begin)")
        }
        return SafeTensorInfo(dtype: dtype, shape: shape, dataOffsets: begin..<end)
    }

    // MARK: Access

    /// The validated description of tensor `name`.
    /// - Throws: `TernaryKitError.file` naming the file and the missing tensor.
    public func info(_ name: String) throws -> SafeTensorInfo {
        guard let info = tensors[TensorName(name)] else {
            throw TernaryKitError.file(path: path, problem: "no tensor named \"\(name.escapedForTerminal)\"")
        }
        return info
    }

    /// Calls `body` with the raw little-endian bytes of tensor `name`, straight from the mapping
    /// (no copy). The pointer is valid only inside `body`; it need not be aligned for the dtype.
    public func withRawBytes<R>(_ name: String, _ body: (UnsafeRawBufferPointer) throws -> R) throws -> R {
        let range = try info(name).dataOffsets
        let start = dataStart + range.lowerBound
        return try data.withUnsafeBytes { raw in
            try body(UnsafeRawBufferPointer(rebasing: raw[start..<(start + range.count)]))
        }
    }

    /// The bytes of tensor `name` as a `Data` slice sharing the mapping (no copy).
    public func bytes(_ name: String) throws -> Data {
        let range = try info(name).dataOffsets
        let start = dataStart + range.lowerBound
        return data[start..<(start + range.count)]
    }

    /// Tensor `name` converted to Float32, whatever its dtype (F16 and BF16 exactly; 64-bit and
    /// 32-bit integers and F64 rounded to nearest; BOOL as 0 / 1).
    ///
    /// Large tensors (an embedding table) are converted on all cores: the time goes mostly to
    /// page faults (reading the mapping, touching the new array), which then also run in parallel.
    public func floats(_ name: String) throws -> [Float] {
        let info = try info(name)
        let count = info.elementCount
        let size = info.dtype.byteSize
        // A 1-byte dtype becomes 4 bytes per element: refuse what memory cannot hold.
        do { try SizeLimits.bytes(count: count, elementSize: MemoryLayout<Float>.size, what: "tensor as Float32") } catch {
            throw TernaryKitError.file(path: path, problem: "tensor \"\(name.escapedForTerminal)\": \(error)")
        }
        return try withRawBytes(name) { raw in
            [Float](unsafeUninitializedCapacity: count) { out, initialized in
                let dtype = info.dtype
                if count < 1 << 22 {
                    SafeTensorsFile.convertToFloat(raw, dtype: dtype, count: count, into: out)
                } else {
                    let source = SendableConstPointer(raw.baseAddress!.assumingMemoryBound(to: UInt8.self))
                    let target = SendablePointer(out)
                    Parallel.forEachChunk(count: count, threads: ComputeContext.allCores.threads, granularity: 1 << 14,
                                          costPerItem: 4, minimumWork: 1 << 22) { range in
                        SafeTensorsFile.convertToFloat(
                            UnsafeRawBufferPointer(start: source.base + range.lowerBound &* size, count: range.count &* size),
                            dtype: dtype, count: range.count,
                            into: UnsafeMutableBufferPointer(start: target.base + range.lowerBound, count: range.count))
                    }
                }
                initialized = count
            }
        }
    }

    /// Tensor `name` as a `Tensor` (Float32, same shape; a scalar becomes shape `[1]`).
    public func tensor(_ name: String) throws -> Tensor {
        let info = try info(name)
        return try Tensor(shape: info.shape.isEmpty ? [1] : info.shape, scalars: floats(name))
    }

    /// Tensor `name`, which must be `I8`, as Int8 values.
    public func int8s(_ name: String) throws -> [Int8] {
        try requireDType(name, .i8)
        return try withRawBytes(name) { raw in
            [Int8](unsafeUninitializedCapacity: raw.count) { buffer, initialized in
                UnsafeMutableRawBufferPointer(buffer).copyMemory(from: raw)
                initialized = raw.count
            }
        }
    }

    /// Tensor `name`, which must be `U8`, as UInt8 values.
    public func uint8s(_ name: String) throws -> [UInt8] {
        try requireDType(name, .u8)
        return try withRawBytes(name) { Array($0) }
    }

    /// Throws unless tensor `name` has dtype `dtype`.
    public func requireDType(_ name: String, _ dtype: SafeTensorsDType) throws {
        let actual = try info(name).dtype
        guard actual == dtype else {
            throw TernaryKitError.file(path: path, problem: "tensor \"\(name.escapedForTerminal)\" is \(actual.rawValue), expected \(dtype.rawValue)")
        }
    }

    /// Throws unless tensor `name` has exactly `shape`.
    public func requireShape(_ name: String, _ shape: [Int]) throws {
        let actual = try info(name).shape
        guard actual == shape else {
            throw TernaryKitError.file(path: path, problem: "tensor \"\(name.escapedForTerminal)\" has shape \(actual), expected \(shape)")
        }
    }

    /// Converts `count` little-endian elements of `dtype` (possibly unaligned) to Float32.
    static func convertToFloat(_ raw: UnsafeRawBufferPointer, dtype: SafeTensorsDType, count: Int,
                               into out: UnsafeMutableBufferPointer<Float>) {
        precondition(raw.count >= count * dtype.byteSize && out.count >= count)
        switch dtype {
        case .f32:
            for i in 0..<count { out[i] = Float(bitPattern: UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))) }
        case .f64:
            for i in 0..<count { out[i] = Float(Double(bitPattern: UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self)))) }
        case .bf16:
            for i in 0..<count { out[i] = HalfPrecision.float(bfloat16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))) }
        case .f16:
            for i in 0..<count { out[i] = HalfPrecision.float(float16Bits: UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))) }
        case .i8:
            for i in 0..<count { out[i] = Float(Int8(bitPattern: raw[i])) }
        case .u8:
            for i in 0..<count { out[i] = Float(raw[i]) }
        case .bool:
            for i in 0..<count { out[i] = raw[i] == 0 ? 0 : 1 }
        case .i16:
            for i in 0..<count { out[i] = Float(Int16(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 2, as: Int16.self))) }
        case .u16:
            for i in 0..<count { out[i] = Float(UInt16(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 2, as: UInt16.self))) }
        case .i32:
            for i in 0..<count { out[i] = Float(Int32(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 4, as: Int32.self))) }
        case .u32:
            for i in 0..<count { out[i] = Float(UInt32(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 4, as: UInt32.self))) }
        case .i64:
            for i in 0..<count { out[i] = Float(Int64(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 8, as: Int64.self))) }
        case .u64:
            for i in 0..<count { out[i] = Float(UInt64(littleEndian: raw.loadUnaligned(fromByteOffset: i &* 8, as: UInt64.self))) }
        }
    }

    static func describe(_ range: Range<Int>) -> String { "[\(range.lowerBound), \(range.upperBound)]" }

    static func describe(_ value: HeaderJSON) -> String {
        switch value {
        case .number(let text): return text
        case .string(let s): return HeaderJSON.quoted(s).escapedForTerminal
        case .bool(let b): return b ? "true" : "false"
        case .null: return "null"
        case .array(let a): return describe(a)
        case .object: return "{...}"
        }
    }

    static func describe(_ values: [HeaderJSON]) -> String { "[" + values.map { describe($0) }.joined(separator: ", ") + "]" }
}

/// Which expected tensor names a file lacks and which of its names nobody asked for.
///
/// Independent of any model type: a loader builds the set of names its layers need and reports
/// both lists in one error, so a user sees every problem at once instead of one per run.
public struct TensorNameCheck: Sendable, Equatable {
    /// Expected names absent from the file, sorted.
    public let missing: [String]
    /// Names in the file that were not expected, sorted.
    public let unexpected: [String]

    /// Compares `actual` names with `expected`, by their UTF-8 bytes (see `TensorName`).
    public init(expected: some Sequence<String>, actual: some Sequence<String>) {
        self.init(expected: expected, actual: actual.map { TensorName($0) })
    }

    /// Compares `actual` names (e.g. `SafeTensorsFile.tensors.keys`) with `expected`, by bytes.
    @_disfavoredOverload
    public init(expected: some Sequence<String>, actual: some Sequence<TensorName>) {
        let e = Set(expected.map { TensorName($0) }), a = Set(actual)
        missing = e.subtracting(a).sorted().map(\.string)
        unexpected = a.subtracting(e).sorted().map(\.string)
    }

    /// True when the file holds exactly the expected names.
    public var isExact: Bool { missing.isEmpty && unexpected.isEmpty }

    /// A one-paragraph summary listing up to `limit` names of each kind (then "and N more").
    public func summary(limit: Int = 20) -> String {
        func list(_ names: [String]) -> String {
            let shown = names.prefix(limit).map { "\"\($0.escapedForTerminal)\"" }.joined(separator: ", ")
            return names.count > limit ? shown + ", and \(names.count - limit) more" : shown
        }
        var parts: [String] = []
        if !missing.isEmpty { parts.append("\(missing.count) missing tensor\(missing.count == 1 ? "" : "s"): \(list(missing))") }
        if !unexpected.isEmpty { parts.append("\(unexpected.count) unexpected tensor\(unexpected.count == 1 ? "" : "s"): \(list(unexpected))") }
        return parts.isEmpty ? "tensor names match" : parts.joined(separator: "; ")
    }

    /// Throws `TernaryKitError.file(path:problem:)` listing the names when they do not match;
    /// `allowUnexpected` tolerates extra tensors (e.g. a checkpoint that also stores a tied LM head).
    public func check(path: String, allowUnexpected: Bool = false) throws {
        guard !missing.isEmpty || (!allowUnexpected && !unexpected.isEmpty) else { return }
        let shown = allowUnexpected ? TensorNameCheck(missing: missing, unexpected: []) : self
        throw TernaryKitError.file(path: path, problem: shown.summary())
    }

    private init(missing: [String], unexpected: [String]) {
        self.missing = missing
        self.unexpected = unexpected
    }
}
