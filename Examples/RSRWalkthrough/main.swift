// RSR walkthrough: the worked example of docs/RSR.md, step by step, with the project's own
// `RSRIndex`, `RSRReference` and `RSRKernel` next to plain Swift, then the ternary case, then a
// random matrix checked against the naive backend.
//
//   swift run RSRWalkthrough                              # the worked example + a 66×256 check
//   swift run RSRWalkthrough --out 1000 --in 4096 --k 6 --batch 8
//   swift run RSRWalkthrough --help                       # the options
//
// RSR ("Redundant Segment Reduction", arXiv 2411.06360) computes y = W·x for a 0/1 (or
// ternary) W without multiplying: per block of k rows, columns that share the same k weights
// (the same *pattern*) get their activations summed once, and the block's k outputs are built
// from those few sums.
import ArgumentParser
import Backends
import Foundation
import TensorCore

// MARK: - Small helpers (printing and checking)

/// Prints `label = value` and stops the program if `value` is not `expected` (from `source`).
func show<T: Equatable>(_ label: String, _ value: T, expected: T? = nil, source: String = "docs/RSR.md") {
    let mark = expected == nil ? "" : (value == expected! ? "   ✓ matches \(source)" : "   ✗ \(source) says \(expected!)")
    print("  " + label.padding(toLength: 24, withPad: " ", startingAt: 0) + "= \(value)" + mark)
    if let e = expected { precondition(value == e, "\(label) differs from \(source)") }
}

/// A ternary row as "+1 -1  0 ...".
func signs(_ row: ArraySlice<Int8>) -> String { row.map { $0 == 0 ? " 0" : ($0 > 0 ? "+1" : "-1") }.joined(separator: " ") }

func section(_ title: String) { print("\n== " + title + " " + String(repeating: "=", count: max(0, 66 - title.count))) }

/// The command line: part 3's random matrix.
struct RSRWalkthrough: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "RSRWalkthrough", abstract: "RSR step by step, then a random matrix checked against naive.")

    @Option(help: "Rows of part 3's random matrix.") var out = 66
    @Option(name: .customLong("in"), help: ArgumentHelp("Columns of part 3's random matrix.", valueName: "in")) var inn = 256
    @Option(name: .customLong("k"), help: ArgumentHelp("RSR block height of part 3 (1 to \(RSRIndex.maxK)).", valueName: "k"))
    var kRandom = 4
    @Option(help: "Rows of activations in part 3.") var batch = 4

    func validate() throws {
        for (name, value, max) in [("out", out, 1 << 20), ("in", inn, 1 << 20), ("batch", batch, 1 << 20), ("k", kRandom, RSRIndex.maxK)]
        where !(1...max).contains(value) {
            throw ValidationError("--\(name) \(value) is not an integer from 1 to \(max)")
        }
    }

    /// `--help` prints the usage (exit 0); a bad argument, or an error thrown by `run()`, ends in
    /// one `error: ...` line on stderr and exit status 1.
    static func main() {
        do { var command = try parseAsRoot(); try command.run() } catch {
            if exitCode(for: error) == .success { print(fullMessage(for: error)); Foundation.exit(0) }
            FileHandle.standardError.write(Data("error: \(message(for: error))\n".utf8)); Foundation.exit(1)
        }
    }

    func run() throws {
        // MARK: - 1. The worked example (binary W, k = 2)

        section("1. Binary W (2×8), k = 2: the worked example of docs/RSR.md")

        // W is out × in = 2 × 8; we compute y = W·x (the paper writes r = v·B with B = Wᵀ).
        let wValues: [Int8] = [0, 1, 1, 0, 1, 1, 0, 0,
                               0, 0, 1, 1, 0, 1, 1, 1]
        let w = try TernaryMatrix(outFeatures: 2, inFeatures: 8, values: wValues)
        let x = [3, 4, 1, 0, 3, 9, 8, 4]
        let k = 2
        print("  W row 0 = \(Array(wValues[0..<8]))")
        print("  W row 1 = \(Array(wValues[8..<16]))")
        print("  x       = \(x)")

        // Step 1: each column's pattern, the block's k weights read as a binary number, row 0 = MSB.
        // (RSRIndex computes these internally and does not keep them; plain Swift here.)
        let patterns = (0..<8).map { j in (0..<k).reduce(0) { p, r in p * 2 + Int(w[r, j]) } }
        print("\nStep 1: column patterns  p(j) = 2·W[0,j] + W[1,j]")
        show("patterns", patterns, expected: [0, 2, 3, 1, 2, 3, 1, 1])

        // Step 2: the index. A stable counting sort of the columns by pattern gives the permutation σ
        // and the segment starts L (segment p is σ[L[p] ..< L[p+1]]). This is the project's RSRIndex;
        // `.positive` means "digit 1 where the weight is +1", i.e. the whole of a 0/1 matrix.
        let index = try RSRIndex(weights: w, k: k, digits: .positive)
        let sigma = index.permutation(ofBlock: 0)
        let starts = index.segmentStarts(ofBlock: 0)
        print("\nStep 2: RSRIndex(weights: W, k: 2, digits: .positive)")
        show("σ (sorted columns)", sigma, expected: [0, 3, 6, 7, 1, 4, 2, 5])
        show("L (segment starts)", starts, expected: [0, 1, 4, 6, 8])

        // The same counting sort in plain Swift: histogram of the patterns, exclusive prefix sums (these
        // are L), then a stable scatter of the columns in ascending order.
        var count = [Int](repeating: 0, count: 1 << k)
        for p in patterns { count[p] += 1 }
        var plainStarts = [0]
        for c in count { plainStarts.append(plainStarts.last! + c) }
        var next = Array(plainStarts.dropLast()), plainSigma = [Int](repeating: 0, count: 8)
        for j in 0..<8 { plainSigma[next[patterns[j]]] = j; next[patterns[j]] += 1 }
        show("σ (plain counting sort)", plainSigma, expected: sigma, source: "RSRIndex")
        show("L (plain prefix sums)", plainStarts, expected: starts, source: "RSRIndex")
        for p in 0..<4 {
            let cols = Array(sigma[starts[p]..<starts[p + 1]])
            print("    segment \(p) = \(String(p, radix: 2).leftPadded(to: 2, with: "0"))₂: columns \(cols)")
        }
        print("  The weights are no longer needed: (σ, L) is all the product reads.")

        // Step 3: segment sums u[p] = Σ x[σ(i)] over segment p. docs/RSR.md lists u[0] = 3 too; the
        // library never sums segment 0 (pattern 00 feeds no output), so its u[0] is 0.
        var u = (0..<4).map { p in (starts[p]..<starts[p + 1]).reduce(0) { $0 + x[sigma[$1]] } }
        print("\nStep 3: segment sums  u[p] = Σ_{i in segment p} x[σ(i)]")
        show("u (plain Swift)", u, expected: [3, 12, 7, 10])
        let uLibrary = RSRReference.segmentSums(x, index: index, block: 0)
        show("u (RSRReference)", uLibrary, expected: [0, 12, 7, 10], source: "docs/RSR.md, u[0] skipped")

        // Step 4a, RSR: the block product as an enumeration: y[r] = Σ_p bit_r(p)·u[p], where row r of
        // the block is bit k-1-r of p. The table has one row per output row, one column per pattern.
        let table = RSRReference.enumerationTable(k: k, radix: 2)
        print("\nStep 4a: RSR, enumeration product  y[r] = Σ_p table[r][p]·u[p]   O(k·2^k)")
        print("  table row 0 = \(Array(table[0..<4]))   (the MSB of p = 0,1,2,3)")
        print("  table row 1 = \(Array(table[4..<8]))   (the LSB)")
        show("y = table · u", RSRReference.enumerationProduct(u, k: k, radix: 2), expected: [17, 22])

        // Step 4b, RSR++: the fold. The LSB is the block's last row: sum the odd entries to get that
        // row's output, then add pairs (u[2q] + u[2q+1]) so the next row up becomes the LSB. O(2^k).
        print("\nStep 4b: RSR++, the fold (last row first)   O(2^k)")
        var yFold = [Int](repeating: 0, count: k)
        var size = 4
        for r in stride(from: k - 1, through: 0, by: -1) {
            yFold[r] = stride(from: 1, to: size, by: 2).reduce(0) { $0 + u[$1] }
            print("  row \(r): y[\(r)] = Σ odd entries of \(Array(u[0..<size])) = \(yFold[r])")
            size /= 2
            for q in 0..<size { u[q] = u[2 * q] + u[2 * q + 1] }
            if r > 0 { print("         fold pairs → \(Array(u[0..<size]))") }
        }
        show("y (plain fold)", yFold, expected: [17, 22])
        show("y (RSRReference.fold)", RSRReference.fold(uLibrary, k: k, radix: 2), expected: [17, 22])

        // Step 5: the real kernels (the C/SIMD loops the `rsr` and `rsr++` backends run) on Int8 input.
        print("\nStep 5: the real kernels, exact Int8 → Int32 path")
        let x8 = x.map { Int8($0) }
        for variant in [RSRBackend.Variant.rsr, .rsrPlusPlus] {
            let kernel = try RSRBackend(variant: variant, k: .fixed(k)).prepare(w, context: .singleThreaded)
            show("\(kernel.backendName) kernel y", try kernel.apply(x8), expected: [17, 22] as [Int32])
        }

        // MARK: - 2. Ternary weights

        section("2. Ternary W ∈ {-1, 0, +1}, k = 2")

        let tValues: [Int8] = [1, -1, 0, 1, -1, 0, 1, 1,
                               0, 1, -1, 1, -1, 0, 0, -1]
        let wt = try TernaryMatrix(outFeatures: 2, inFeatures: 8, values: tValues)
        let naiveY = try NaiveBackend().prepare(wt, context: .singleThreaded).apply(x8).map(Int.init)
        print("  W row 0 = [\(signs(tValues[0..<8]))]")
        print("  W row 1 = [\(signs(tValues[8..<16]))]")
        print("  x       = \(x)")
        show("naive y = W·x", naiveY)

        // 2a. The paper's method: W = B⁺ − B⁻ with B⁺ = [W = +1], B⁻ = [W = −1]. Two binary indexes
        // with the same k, two binary products, one subtraction.
        print("\n2a. Two-part form: y = RSR(B⁺)·x − RSR(B⁻)·x")
        var twoPart = [0, 0]
        for (digits, sign) in [(RSRIndex.Digits.positive, 1), (.negative, -1)] {
            let part = try RSRIndex(weights: wt, k: k, digits: digits)
            let uPart = RSRReference.segmentSums(x, index: part, block: 0)
            let yPart = RSRReference.fold(uPart, k: k, radix: 2)
            print("  \(digits == .positive ? "B⁺" : "B⁻"): σ = \(part.permutation(ofBlock: 0)), L = \(part.segmentStarts(ofBlock: 0)), "
                  + "u = \(uPart), y = \(yPart)")
            for r in 0..<k { twoPart[r] += sign * yPart[r] }
        }
        show("y = y⁺ − y⁻", twoPart, expected: naiveY, source: "naive")

        // 2b. The fused form: one base-3 code per column, digit 0/1/2 for weight 0/+1/−1, row 0 the
        // most significant digit. One sort, one pass of segment sums (3^k of them), then a base-3 fold:
        // the last digit's row gets Σ u[3q+1] − Σ u[3q+2], then triples are added.
        print("\n2b. Fused base-3 form: codes c(j) = 3·d(W[0,j]) + d(W[1,j]),  d(0,+1,−1) = 0,1,2")
        let digit: (Int8) -> Int = { $0 == 0 ? 0 : ($0 > 0 ? 1 : 2) }
        let codes = (0..<8).map { j in 3 * digit(wt[0, j]) + digit(wt[1, j]) }
        show("codes", codes)
        let fused = try RSRIndex(weights: wt, k: k, digits: .ternary)
        show("σ", fused.permutation(ofBlock: 0))
        show("L (3^k + 1 = 10)", fused.segmentStarts(ofBlock: 0))
        // Check the index against the plain codes: every column sits in the segment of its code.
        let fs = fused.permutation(ofBlock: 0), fl = fused.segmentStarts(ofBlock: 0)
        for c in 0..<9 { for i in fl[c]..<fl[c + 1] { precondition(codes[fs[i]] == c, "column \(fs[i]) in the wrong segment") } }
        let uFused = RSRReference.segmentSums(x, index: fused, block: 0)
        show("u (3^k sums, u[0] = 0)", uFused)
        show("y (base-3 fold)", RSRReference.fold(uFused, k: k, radix: 3), expected: naiveY, source: "naive")
        show("y (enumeration)", RSRReference.enumerationProduct(uFused, k: k, radix: 3), expected: naiveY, source: "naive")
        for (variant, form) in [(RSRBackend.Variant.rsr, RSRBackend.Form.twoPart), (.rsr, .fused),
                                (.rsrPlusPlus, .twoPart), (.rsrPlusPlus, .fused)] {
            let kernel = try RSRBackend(variant: variant, k: .fixed(k), form: form).prepare(wt, context: .singleThreaded)
            show("\(kernel.backendName) kernel, \(form)", try kernel.apply(x8).map(Int.init), expected: naiveY, source: "naive")
        }

        // MARK: - 3. A random matrix, checked against naive

        section("3. Random ternary W (\(out)×\(inn)), k = \(kRandom), batch \(batch), vs naive")

        var rng = SeededGenerator(seed: 8)
        let wRandom = try TernaryMatrix.random(outFeatures: out, inFeatures: inn, using: &rng)
        let xr = rng.int8s(count: batch * inn)
        let reference = try NaiveBackend().prepare(wRandom, context: .singleThreaded).apply(xr)
        print("  \((out + kRandom - 1) / kRandom) blocks of \(kRandom) rows"
              + (out % kRandom == 0 ? "" : "; the last has \(out % kRandom) (its own height: x is never padded)"))

        // The plain-Swift steps of sections 1–2, block by block, on the first batch row.
        let fusedIndex = try RSRIndex(weights: wRandom, k: min(kRandom, RSRIndex.maxFusedK), digits: .ternary)
        let x0 = xr[0..<inn].map(Int.init)
        var plain: [Int] = []
        for b in 0..<fusedIndex.blockCount {
            let uB = RSRReference.segmentSums(x0, index: fusedIndex, block: b)
            plain += RSRReference.fold(uB, k: fusedIndex.rows(ofBlock: b), radix: 3)
        }
        let plainOK = plain == reference[0..<out].map(Int.init)
        print("  " + "plain Swift (fused, fold)".padding(toLength: 28, withPad: " ", startingAt: 0)
              + (plainOK ? "identical to naive (batch row 0)" : "DIFFERS from naive"))
        precondition(plainOK)

        // The real kernels on the whole batch: every variant, both forms.
        print("  " + "kernel".padding(toLength: 28, withPad: " ", startingAt: 0) + "Int8 path (exact)       bits/weight")
        // Last, the registry's own `rsr` and `rsr++` (fused form, k from the measured default rule).
        var failures = 0
        let candidates = [RSRBackend.Variant.rsr, .rsrPlusPlus].flatMap { v in
            [RSRBackend.Form.twoPart, .fused].map { RSRBackend(variant: v, k: .fixed(kRandom), form: $0) }
        } + [RSRBackend.rsr, RSRBackend.rsrPlusPlus]
        for backend in candidates {
            do {
                let kernel = try backend.prepareKernel(wRandom, context: .singleThreaded)
                let mismatch = KernelCheck.firstMismatch(try kernel.apply(xr), reference, outFeatures: out)
                if mismatch != nil { failures += 1 }
                let label = "\(kernel.backendName), \(kernel.form), k=\(kernel.blockHeight)"
                print("  " + label.padding(toLength: 28, withPad: " ", startingAt: 0)
                      + (mismatch.map { "DIFFERS: " + $0 } ?? "identical to naive").padding(toLength: 24, withPad: " ", startingAt: 0)
                      + String(format: "%5.2f", kernel.storageBitsPerWeight))
            }
        }
        precondition(failures == 0, "\(failures) kernel(s) differ from naive")
        print("\nAll steps match docs/RSR.md and the naive backend.")
    }
}

extension String {
    func leftPadded(to n: Int, with pad: Character) -> String { String(repeating: pad, count: max(0, n - count)) + self }
}

RSRWalkthrough.main()
