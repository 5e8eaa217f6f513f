/// A dense Float32 tensor: a shape and row-major contiguous storage.
///
/// `Tensor` has value semantics: copies share storage until one of them is written
/// (copy on write, through Swift's `Array`). The last dimension is the contiguous one; for a
/// 2-D tensor `[rows, columns]` element `(r, c)` is at `r * columns + c`.
///
/// The pointer accessors (`withUnsafeBufferPointer`) are the fast path into the backends.
public struct Tensor: Sendable, Equatable, CustomStringConvertible {
    /// The size of each dimension, outermost first (a dimension of 0 makes an empty tensor).
    public private(set) var shape: [Int]
    /// The elements in row-major order.
    public private(set) var scalars: [Float]

    /// The number of elements (the product of `shape`).
    public var count: Int { scalars.count }
    /// The number of dimensions.
    public var rank: Int { shape.count }

    /// A tensor of `shape` holding `scalars` (row-major).
    /// - Throws: `TernaryKitError.invalidShape` for a negative dimension or an overflowing
    ///   element count, `.lengthMismatch` when `scalars.count` differs from the shape's count.
    public init(shape: [Int], scalars: [Float]) throws {
        let n = try Tensor.elementCount(of: shape)
        guard scalars.count == n else {
            throw TernaryKitError.lengthMismatch(expected: n, actual: scalars.count, what: "tensor data for shape \(shape)")
        }
        self.shape = shape
        self.scalars = scalars
    }

    /// A tensor of `shape` with every element equal to `value` (default 0).
    public init(shape: [Int], repeating value: Float = 0) throws {
        let n = try Tensor.elementCount(of: shape)
        self.shape = shape
        self.scalars = [Float](repeating: value, count: n)
    }

    /// Internal initializer for shapes already known valid.
    @usableFromInline
    init(validShape shape: [Int], scalars: [Float]) {
        self.shape = shape
        self.scalars = scalars
    }

    /// The number of elements of `shape`, or a thrown error for a negative or overflowing shape.
    public static func elementCount(of shape: [Int]) throws -> Int {
        var n = 1
        for d in shape {
            guard d >= 0 else { throw TernaryKitError.invalidShape("negative dimension in \(shape)") }
            let (p, overflow) = n.multipliedReportingOverflow(by: d)
            guard !overflow else { throw TernaryKitError.invalidShape("element count of \(shape) overflows Int") }
            n = p
        }
        return n
    }

    /// The row-major offset of a multi-index (checked with `precondition`).
    @inlinable
    func offset(_ indices: [Int]) -> Int {
        precondition(indices.count == shape.count, "index rank \(indices.count) != tensor rank \(shape.count)")
        var o = 0
        for (i, d) in zip(indices, shape) {
            precondition(i >= 0 && i < d, "index \(indices) out of bounds for shape \(shape)")
            o = o * d + i
        }
        return o
    }

    /// The element at a multi-index, e.g. `t[2, 3]`.
    public subscript(indices: Int...) -> Float {
        get { scalars[offset(indices)] }
        set { scalars[offset(indices)] = newValue }
    }

    /// The same elements under another shape with the same element count.
    /// - Throws: `.invalidShape` when the counts differ.
    public func reshaped(_ newShape: [Int]) throws -> Tensor {
        let n = try Tensor.elementCount(of: newShape)
        guard n == count else {
            throw TernaryKitError.invalidShape("cannot reshape \(shape) (\(count) elements) to \(newShape) (\(n) elements)")
        }
        return Tensor(validShape: newShape, scalars: scalars)
    }

    /// For a tensor of rank ≥ 1: the number of rows when viewed as `[rows, lastDimension]`.
    public var rowCount: Int { shape.isEmpty ? 1 : (shape.last! == 0 ? 0 : count / shape.last!) }
    /// The size of the last (contiguous) dimension; 1 for a scalar.
    public var rowLength: Int { shape.last ?? 1 }

    /// Row `r` of the tensor viewed as `[rowCount, rowLength]` (a slice sharing storage).
    public func row(_ r: Int) -> ArraySlice<Float> {
        precondition(r >= 0 && r < rowCount, "row \(r) out of bounds (\(rowCount) rows)")
        return scalars[(r * rowLength)..<((r + 1) * rowLength)]
    }

    /// Calls `body` with a pointer to row `r` (read-only).
    public func withRow<R>(_ r: Int, _ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(r >= 0 && r < rowCount, "row \(r) out of bounds (\(rowCount) rows)")
        return try scalars.withUnsafeBufferPointer { p in
            try body(UnsafeBufferPointer(rebasing: p[(r * rowLength)..<((r + 1) * rowLength)]))
        }
    }

    /// Calls `body` with a mutable pointer to row `r`.
    public mutating func withMutableRow<R>(_ r: Int, _ body: (UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        precondition(r >= 0 && r < rowCount, "row \(r) out of bounds (\(rowCount) rows)")
        let length = rowLength
        return try scalars.withUnsafeMutableBufferPointer { p in
            try body(UnsafeMutableBufferPointer(rebasing: p[(r * length)..<((r + 1) * length)]))
        }
    }

    /// Read-only access to the contiguous storage.
    public func withUnsafeBufferPointer<R>(_ body: (UnsafeBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeBufferPointer(body)
    }

    /// Mutable access to the contiguous storage (triggers the copy if storage is shared).
    public mutating func withUnsafeMutableBufferPointer<R>(_ body: (inout UnsafeMutableBufferPointer<Float>) throws -> R) rethrows -> R {
        try scalars.withUnsafeMutableBufferPointer(body)
    }

    /// The shape and the first few elements.
    public var description: String {
        let preview = scalars.prefix(8).map { "\($0)" }.joined(separator: ", ")
        return "Tensor(shape: \(shape), [\(preview)\(count > 8 ? ", …" : "")])"
    }
}
