/// Element-wise helpers the layers need. Shapes must match exactly (no broadcasting), except
/// the row-wise forms, which apply a vector of length `rowLength` to every row.
extension Tensor {
    private func checkSameShape(_ other: Tensor, _ op: String) throws {
        guard shape == other.shape else {
            throw TernaryKitError.invalidShape("\(op): shapes \(shape) and \(other.shape) differ")
        }
    }

    /// `self + other`, element-wise.
    /// - Throws: `.invalidShape` when the shapes differ (no broadcasting).
    public func adding(_ other: Tensor) throws -> Tensor {
        try checkSameShape(other, "add")
        var out = self
        out.withUnsafeMutableBufferPointer { o in
            other.withUnsafeBufferPointer { b in
                for i in 0..<o.count { o[i] += b[i] }
            }
        }
        return out
    }

    /// `self * other`, element-wise.
    /// - Throws: `.invalidShape` when the shapes differ (no broadcasting).
    public func multiplying(_ other: Tensor) throws -> Tensor {
        try checkSameShape(other, "multiply")
        var out = self
        out.withUnsafeMutableBufferPointer { o in
            other.withUnsafeBufferPointer { b in
                for i in 0..<o.count { o[i] *= b[i] }
            }
        }
        return out
    }

    /// Every element times `factor`.
    public func scaled(by factor: Float) -> Tensor {
        var out = self
        out.withUnsafeMutableBufferPointer { o in
            for i in 0..<o.count { o[i] *= factor }
        }
        return out
    }

    /// Adds `other` into `self` in place.
    public mutating func add(_ other: Tensor) throws {
        try checkSameShape(other, "add")
        withUnsafeMutableBufferPointer { o in
            other.withUnsafeBufferPointer { b in
                for i in 0..<o.count { o[i] += b[i] }
            }
        }
    }

    /// Multiplies every row element-wise by `vector` (length `rowLength`), e.g. a norm's weight.
    public func multiplyingRows(by vector: [Float]) throws -> Tensor {
        guard vector.count == rowLength else {
            throw TernaryKitError.lengthMismatch(expected: rowLength, actual: vector.count, what: "row-wise factor")
        }
        var out = self
        let n = rowLength
        out.withUnsafeMutableBufferPointer { o in
            vector.withUnsafeBufferPointer { v in
                var base = 0
                while base < o.count {
                    for j in 0..<n { o[base + j] *= v[j] }
                    base += n
                }
            }
        }
        return out
    }

    /// Adds `vector` (length `rowLength`) to every row.
    public func addingToRows(_ vector: [Float]) throws -> Tensor {
        guard vector.count == rowLength else {
            throw TernaryKitError.lengthMismatch(expected: rowLength, actual: vector.count, what: "row-wise addend")
        }
        var out = self
        let n = rowLength
        out.withUnsafeMutableBufferPointer { o in
            vector.withUnsafeBufferPointer { v in
                var base = 0
                while base < o.count {
                    for j in 0..<n { o[base + j] += v[j] }
                    base += n
                }
            }
        }
        return out
    }

    /// The largest absolute difference to `other` (same shape), for comparisons in tests.
    public func maxAbsoluteDifference(to other: Tensor) throws -> Float {
        try checkSameShape(other, "compare")
        var m: Float = 0
        for (a, b) in zip(scalars, other.scalars) { m = Swift.max(m, abs(a - b)) }
        return m
    }
}
