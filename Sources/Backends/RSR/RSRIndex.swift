import TensorCore

/// The preprocessing of RSR and RSR++ ("Redundant Segment Reduction", arXiv 2411.06360), in this
/// project's orientation `y = W·x` (W is `out × in`; the paper's B is `Wᵀ`).
///
/// The output rows are cut into blocks of `k` consecutive rows (the last block keeps its own,
/// shorter height `out mod k`, so no activation is ever read past its end). In block `t`, input
/// column `j` gets a *code*: the block's `k` weights of column j read as the digits of a number,
/// the block's first row being the most significant digit. The index keeps, per block,
/// - the permutation `σ_t` of the columns sorted by code (a stable counting sort, so columns
///   stay ascending inside a segment, which helps the gather), and
/// - the `radix^k + 1` segment starts `L_t` (segment `c` is `[L_t[c], L_t[c+1])`, empty when
///   code c does not occur, `L_t[radix^k] = in`).
///
/// After that the weights are no longer needed: a product sums the activations of each
/// segment (`u[c]`) and combines the `radix^k` sums into the block's `k` outputs.
///
/// Which weight becomes which digit is the index's `digits`:
/// - `.positive` / `.negative`: the binary parts `B⁺ = [W = +1]`, `B⁻ = [W = −1]` (radix 2,
///   the paper's method for ternary weights: `W·x = B⁺·x − B⁻·x`);
/// - `.ternary`: the fused form, one base-3 code per column (digit 0, 1, 2 for weight 0, +1,
///   −1), one sort and one pass of segment sums for both signs.
///
/// Storage: permutation entries are `UInt16` when `in ≤ 65536`, else `UInt32`; segment starts
/// (which reach `in` itself) are `UInt32`. Immutable after `init`, so it is safely shared
/// between threads; the storage is raw memory so that the product loops get plain pointers.
public final class RSRIndex: @unchecked Sendable {
    /// Which weights a code digit records.
    public enum Digits: Sendable, Equatable {
        /// Radix 2, digit 1 where the weight is +1 (the binary part B⁺; for a binary matrix, all of it).
        case positive
        /// Radix 2, digit 1 where the weight is −1 (the binary part B⁻).
        case negative
        /// Radix 3, digit 1 for +1 and 2 for −1 (the fused ternary form).
        case ternary
    }

    /// The largest block height: 2^16 codes per block for the binary parts.
    public static let maxK = 16
    /// The largest block height of the fused (radix-3) form: 3^10 = 59049 codes per block.
    /// Above it the segment starts alone would outweigh the matrix for any realistic `in`.
    public static let maxFusedK = 10

    /// Rows of the indexed matrix (outputs).
    public let outFeatures: Int
    /// Columns of the indexed matrix (inputs; the permutation entries index these).
    public let inFeatures: Int
    /// The block height (the last block may be shorter, see `rows(ofBlock:)`).
    public let k: Int
    /// Which weights the code digits record.
    public let digits: Digits
    /// 2 for the binary parts, 3 for the fused form.
    public let radix: Int
    /// Blocks of `k` rows, `⌈out / k⌉`: the last one is shorter when `k` does not divide `out`.
    public let blockCount: Int
    /// `radix^k`, the codes of a full block.
    public let codeCount: Int
    /// True when permutation entries are `UInt32` (`in > 65536`).
    public let usesWidePermutation: Bool

    /// Permutation entries, `blockCount × in`, block-major (`UInt16` or `UInt32`).
    let permutation: UnsafeMutableRawPointer
    /// Segment starts, `blockCount × (codeCount + 1)` (a short last block fills its first
    /// `radix^rows + 1` entries and repeats `in` after them).
    let starts: UnsafeMutablePointer<UInt32>

    /// Bytes of one permutation entry.
    public var permutationEntryBytes: Int { usesWidePermutation ? 4 : 2 }
    /// `codeCount + 1`, the stride of the segment starts.
    public var startsStride: Int { codeCount + 1 }

    /// Bytes this index keeps: the permutations and the segment starts.
    public var storageBytes: Int {
        blockCount * inFeatures * permutationEntryBytes + blockCount * startsStride * MemoryLayout<UInt32>.size
    }

    /// Indexes `weights` with blocks of `k` rows.
    /// - Throws: `.invalidArgument` when `k` is outside 1…16 (1…10 for `.ternary`).
    public init(weights: TernaryMatrix, k: Int, digits: Digits) throws {
        let limit = digits == .ternary ? RSRIndex.maxFusedK : RSRIndex.maxK
        guard k >= 1 && k <= limit else {
            throw TernaryKitError.invalidArgument(
                "RSR block height k = \(k) is outside 1…\(limit)\(digits == .ternary ? " (fused ternary form)" : "")")
        }
        let m = weights.outFeatures, n = weights.inFeatures
        outFeatures = m
        inFeatures = n
        self.k = k
        self.digits = digits
        radix = digits == .ternary ? 3 : 2
        blockCount = (m + k - 1) / k
        var codes = 1
        for _ in 0..<k { codes *= radix }
        codeCount = codes
        usesWidePermutation = n > 65536
        permutation = UnsafeMutableRawPointer.allocate(byteCount: max(1, blockCount * n * (n > 65536 ? 4 : 2)), alignment: 64)
        starts = UnsafeMutablePointer<UInt32>.allocate(capacity: blockCount * (codes + 1))
        weights.values.withUnsafeBufferPointer { w in build(w.baseAddress!) }
    }

    deinit {
        permutation.deallocate()
        starts.deallocate()
    }

    /// Rows of block `t`: `k`, or `out mod k` for a short last block.
    @inline(__always) public func rows(ofBlock t: Int) -> Int { min(k, outFeatures - t * k) }

    /// `radix^rows(ofBlock: t)`: the codes block `t` can have.
    @inline(__always) public func codes(ofBlock t: Int) -> Int {
        let r = rows(ofBlock: t)
        if r == k { return codeCount }
        var c = 1
        for _ in 0..<r { c *= radix }
        return c
    }

    /// The permutation σ_t of block `t` (sorted position → input column).
    public func permutation(ofBlock t: Int) -> [Int] {
        precondition(t >= 0 && t < blockCount)
        let n = inFeatures
        if usesWidePermutation {
            let p = permutation.assumingMemoryBound(to: UInt32.self) + t * n
            return (0..<n).map { Int(p[$0]) }
        }
        let p = permutation.assumingMemoryBound(to: UInt16.self) + t * n
        return (0..<n).map { Int(p[$0]) }
    }

    /// The segment starts L_t of block `t`: `codes(ofBlock: t) + 1` entries, the last is `in`.
    public func segmentStarts(ofBlock t: Int) -> [Int] {
        precondition(t >= 0 && t < blockCount)
        let s = starts + t * startsStride
        return (0...codes(ofBlock: t)).map { Int(s[$0]) }
    }

    /// Pointer to the permutation of block `t`.
    @inline(__always) func permutationPointer(block t: Int) -> UnsafeRawPointer {
        UnsafeRawPointer(permutation + t * inFeatures * permutationEntryBytes)
    }

    /// Pointer to the segment starts of block `t`.
    @inline(__always) func startsPointer(block t: Int) -> UnsafePointer<UInt32> {
        UnsafePointer(starts + t * startsStride)
    }

    /// Codes, histogram, then the stable scatter, block by block: O(k·in + in + radix^k) per
    /// block with sequential reads of the weight rows.
    private func build(_ w: UnsafePointer<Int8>) {
        let n = inFeatures, stride = startsStride
        let code = UnsafeMutablePointer<UInt32>.allocate(capacity: n)
        let count = UnsafeMutablePointer<UInt32>.allocate(capacity: stride)
        defer { code.deallocate(); count.deallocate() }
        let wide = usesWidePermutation
        let p16 = permutation.assumingMemoryBound(to: UInt16.self)
        let p32 = permutation.assumingMemoryBound(to: UInt32.self)
        let radix32 = UInt32(radix)
        for t in 0..<blockCount {
            let rows = self.rows(ofBlock: t)
            let codes = self.codes(ofBlock: t)
            code.update(repeating: 0, count: n)
            for r in 0..<rows {
                let row = w + (t * k + r) * n
                // The digit of each weight, without a branch: Int8 −1 is 0xFF.
                switch digits {
                case .positive:
                    for j in 0..<n {
                        let v = UInt32(truncatingIfNeeded: UInt8(bitPattern: row[j]))
                        code[j] = code[j] &* 2 &+ (v & 1 & ~(v >> 7))
                    }
                case .negative:
                    for j in 0..<n {
                        let v = UInt32(truncatingIfNeeded: UInt8(bitPattern: row[j]))
                        code[j] = code[j] &* 2 &+ (v >> 7)
                    }
                case .ternary:
                    for j in 0..<n {
                        let v = UInt32(truncatingIfNeeded: UInt8(bitPattern: row[j]))
                        code[j] = code[j] &* radix32 &+ (v & 1) &+ (v >> 7)
                    }
                }
            }
            // Histogram, exclusive prefix sums (the segment starts), stable scatter.
            count.update(repeating: 0, count: stride)
            for j in 0..<n { count[Int(code[j])] &+= 1 }
            let s = starts + t * stride
            var running: UInt32 = 0
            for c in 0..<codes {
                s[c] = running
                let here = count[c]
                count[c] = running
                running &+= here
            }
            for c in codes..<stride { s[c] = UInt32(n) }
            if wide {
                let p = p32 + t * n
                for j in 0..<n {
                    let c = Int(code[j])
                    p[Int(count[c])] = UInt32(truncatingIfNeeded: j)
                    count[c] &+= 1
                }
            } else {
                let p = p16 + t * n
                for j in 0..<n {
                    let c = Int(code[j])
                    p[Int(count[c])] = UInt16(truncatingIfNeeded: j)
                    count[c] &+= 1
                }
            }
        }
    }
}
