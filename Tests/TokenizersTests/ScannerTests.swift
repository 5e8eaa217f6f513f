import Foundation
import Testing
@testable import Tokenizers

/// The hand-written scanners must split exactly like the regular expressions they replace.
@Suite struct ScannerTests {
    static func scan(_ text: String, _ known: KnownPattern) -> [String] {
        let bytes = Array(text.utf8)
        var scratch = Scratch()
        var local: [Piece] = []
        bytes.withUnsafeBufferPointer { b in Scanner.decode(b, Piece(start: 0, end: Int32(bytes.count)), into: &scratch) }
        scratch.scalars.withUnsafeBufferPointer { sc in
            scratch.classes.withUnsafeBufferPointer { cl in
                if known == .llama3 { Scanner.llama3(sc, cl, &local) } else { Scanner.gpt2(sc, cl, &local) }
            }
        }
        return local.map { p in
            String(decoding: bytes[Int(scratch.offsets[Int(p.start)])..<Int(scratch.offsets[Int(p.end)])], as: UTF8.self)
        }
    }

    static func regexSplit(_ text: String, _ source: String) throws -> [String] {
        let regex = try Regex(source).matchingSemantics(.unicodeScalar)
        return text.matches(of: regex).map { String(text.unicodeScalars[$0.range]) }
    }

    static let alphabet: [String] = ["a", "B", "z", "é", "ß", "Ω", "中", "ア", "1", "9", "٣", "½", " ", " ", " ", "\t",
                                     "\n", "\r", "\u{A0}", "\u{3000}", "'", "'", "s", "S", "t", "l", "L", "e", "v", "d", "m",
                                     "r", ".", ",", "!", "(", "😀", "\u{200D}", "_", "-", "\u{0301}", "\u{1F}", "\u{85}"]

    @Test func scannersEqualOniguruma() {
        #expect(Fixtures.expected.splits.count == 600)
        for split in Fixtures.expected.splits {
            #expect(ScannerTests.scan(split.text, .llama3) == split.llama3, "llama3 \(split.text.debugDescription)")
            #expect(ScannerTests.scan(split.text, .gpt2) == split.gpt2, "gpt2 \(split.text.debugDescription)")
        }
    }

    @Test(arguments: [KnownPattern.llama3, KnownPattern.gpt2])
    func scannerEqualsSwiftRegex(pattern: KnownPattern) throws {
        let source = pattern == .llama3 ? KnownPattern.llama3Source : KnownPattern.gpt2Source
        var texts = Fixtures.expected.files["llama3-tiny.json"]!.encode.map(\.text)
        var rng = SplitMix(seed: 42)
        for _ in 0..<1500 {
            let n = Int(rng.next() % 24)
            texts.append((0..<n).map { _ in ScannerTests.alphabet[Int(rng.next() % UInt64(ScannerTests.alphabet.count))] }.joined())
        }
        for text in texts {
            let expected = try ScannerTests.regexSplit(text, source)
            #expect(ScannerTests.scan(text, pattern) == expected, "\(text.debugDescription)")
        }
    }
}

struct SplitMix {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }
}

/// The heap-based merge loop for long words must merge in the same order as the quadratic scan.
@Suite struct MergeTests {
    @Test func longWordMergeEqualsQuadraticScan() throws {
        let tok = try Fixtures.tokenizer("gpt2-tiny.json")
        let model = tok.model
        var rng = SplitMix(seed: 9)
        let pieces = ["a", "b", "e", "th", "in", "er", "an", "s", "t", " "]
        for _ in 0..<300 {
            let n = 10 + Int(rng.next() % 200)
            let text = (0..<n).map { _ in pieces[Int(rng.next() % UInt64(pieces.count))] }.joined()
            let bytes = Array(text.utf8)
            var symbols = bytes.map { model.byteIDs[Int($0)] }
            model.mergeLong(&symbols)
            // Reference: repeatedly merge the lowest-ranked adjacent pair, leftmost first.
            var reference = bytes.map { model.byteIDs[Int($0)] }
            while reference.count > 1 {
                var best = UInt64.max, at = -1
                for k in 0..<(reference.count - 1) {
                    let r = model.merges.lookup(reference[k], reference[k + 1])
                    if r < best { best = r; at = k }
                }
                if at < 0 { break }
                reference[at] = Int32(truncatingIfNeeded: best & 0xFFFF_FFFF)
                reference.remove(at: at + 1)
            }
            #expect(symbols == reference, "\(text)")
        }
    }
}
