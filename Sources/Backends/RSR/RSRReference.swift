/// The RSR algorithm's steps written as plainly as possible in Swift, exactly as
/// docs/RSR.md states them (least significant digit folded first). The kernels' C loops
/// are tested against these; `enumerationTable` is also the RSR kernel's block product table.
public enum RSRReference {
    /// The weight digit `d` stands for: 0 → 0, 1 → +1, 2 → −1.
    @inline(__always) static func weight(ofDigit d: Int) -> Int { d == 2 ? -1 : d }

    /// The `k × radix^k` enumeration matrix, row-major: entry (r, c) is the weight of digit
    /// `k − 1 − r` of code c (row r of the block is the code's r-th most significant digit).
    public static func enumerationTable(k: Int, radix: Int) -> [Int] {
        var codes = 1
        for _ in 0..<k { codes *= radix }
        var table = [Int](repeating: 0, count: k * codes)
        for r in 0..<k {
            var place = 1
            for _ in 0..<(k - 1 - r) { place *= radix }
            for c in 0..<codes { table[r * codes + c] = weight(ofDigit: (c / place) % radix) }
        }
        return table
    }

    /// RSR's block product: `y[r] = Σ_c table[r][c] · u[c]`, `O(k · radix^k)`.
    public static func enumerationProduct<T: Numeric>(_ u: [T], k: Int, radix: Int) -> [T] {
        let table = enumerationTable(k: k, radix: radix)
        let codes = u.count
        precondition(table.count == k * codes, "u must have radix^k entries")
        return (0..<k).map { r in
            var s = T.zero
            for c in 0..<codes where table[r * codes + c] != 0 {
                s += table[r * codes + c] > 0 ? u[c] : T.zero - u[c]
            }
            return s
        }
    }

    /// RSR++'s fold, last digit first: per step, the output of the row whose digit is last is
    /// `Σ_q u[radix·q + 1] (− Σ_q u[radix·q + 2] in radix 3)`, then `u[q] = Σ_d u[radix·q + d]`.
    /// `O(radix^k)` in all.
    public static func fold<T: Numeric>(_ u: [T], k: Int, radix: Int) -> [T] {
        var u = u
        var size = u.count
        var y = [T](repeating: .zero, count: k)
        for c in stride(from: k - 1, through: 0, by: -1) {
            let next = size / radix
            var s = T.zero
            for q in 0..<next {
                s += u[radix * q + 1]
                if radix == 3 { s -= u[radix * q + 2] }
            }
            y[c] = s
            for q in 0..<next {
                var t = T.zero
                for d in 0..<radix { t += u[radix * q + d] }
                u[q] = t
            }
            size = next
        }
        return y
    }

    /// The segment sums of block `t` of `index` for one vector: `u[c] = Σ x[σ(i)]` over segment
    /// c, and `u[0] = 0` (pattern 0 contributes to no output and is never summed).
    public static func segmentSums<T: Numeric>(_ x: [T], index: RSRIndex, block t: Int) -> [T] {
        let sigma = index.permutation(ofBlock: t)
        let starts = index.segmentStarts(ofBlock: t)
        var u = [T](repeating: .zero, count: starts.count - 1)
        for c in 1..<(starts.count - 1) {
            for i in starts[c]..<starts[c + 1] { u[c] += x[sigma[i]] }
        }
        return u
    }
}
