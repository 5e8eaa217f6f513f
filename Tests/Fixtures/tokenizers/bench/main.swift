// Throughput and load-time measurement for the Tokenizers sources (not a test, not a package target).
// Build and run (after `make_tokenizer_fixtures.py --bench /tmp/tk-bench`):
//   swiftc -O -module-name TokenizersBench -o /tmp/tk-bench/bench \
//       Tests/Fixtures/tokenizers/bench/main.swift Sources/Tokenizers/*.swift
//   /tmp/tk-bench/bench /tmp/tk-bench Tests/Fixtures/tokenizers
import Foundation

func now() -> Double { Double(DispatchTime.now().uptimeNanoseconds) / 1e9 }

func best<T>(_ reps: Int, _ body: () throws -> T) rethrows -> (Double, T) {
    var bestTime = Double.infinity
    var result: T?
    for _ in 0..<reps {
        let t = now()
        let r = try body()
        bestTime = min(bestTime, now() - t)
        result = r
    }
    return (bestTime, result!)
}

let args = CommandLine.arguments
let benchDir = URL(fileURLWithPath: args.count > 1 ? args[1] : "/tmp/tk-bench")
let fixtureDir = URL(fileURLWithPath: args.count > 2 ? args[2] : "Tests/Fixtures/tokenizers")
let text = try String(contentsOf: benchDir.appendingPathComponent("bench.txt"), encoding: .utf8)
let mb = Double(text.utf8.count) / 1e6
let expected = try JSONSerialization.jsonObject(with: Data(contentsOf: benchDir.appendingPathComponent("bench-expected.json"))) as! [String: Any]

let tinyURL = fixtureDir.appendingPathComponent("llama3-tiny.json")
let bigURL = benchDir.appendingPathComponent("llama3-128k.json")
let (tinyLoad, _) = try best(5) { try Tokenizer(contentsOf: tinyURL) }
print(String(format: "load llama3-tiny.json: %.1f ms", tinyLoad * 1e3))
let bigData = try Data(contentsOf: bigURL)
let (bigLoad, big) = try best(3) { try Tokenizer(contentsOf: bigURL) }
print(String(format: "load llama3-128k.json (%.1f MB, vocab %d): %.3f s (best of 3, includes reading the file)", Double(bigData.count) / 1e6, big.vocabularySize, bigLoad))
let (jsonOnly, _) = try best(3) { try JSON.parse([UInt8](bigData)) }
let (foundationJSON, _) = try best(3) { try JSONSerialization.jsonObject(with: bigData) }
print(String(format: "  of which own JSON parse: %.3f s; JSONSerialization of the same file: %.3f s", jsonOnly, foundationJSON))
let bigIDs = big.encode(String(text.unicodeScalars.prefix(20000)), addSpecialTokens: false)
print("  128k tokenizer ids for the first 20000 scalars equal HF's:", bigIDs == (expected["big_ids"] as! [Int]))

// Encode: a fresh tokenizer (cold pre-token cache) per repetition.
let (coldOne, ids) = try best(3) { () -> [Int] in
    let tok = try Tokenizer(contentsOf: tinyURL)
    return tok.encode(text, addSpecialTokens: false)
}
print(String(format: "encode %.2f MB as one string, cold cache: %.3f s = %.2f MB/s (%d ids; HF count %d)", mb, coldOne, mb / coldOne, ids.count, expected["ids_no_special_count"] as! Int))
let tok = try Tokenizer(contentsOf: tinyURL)
_ = tok.encode(text, addSpecialTokens: false)
let (warmOne, _) = best(3) { tok.encode(text, addSpecialTokens: false) }
print(String(format: "encode as one string, warm cache: %.3f s = %.2f MB/s", warmOne, mb / warmOne))
let lines = text.unicodeScalars.split(separator: "\n", omittingEmptySubsequences: false).map { String(String.UnicodeScalarView($0)) }
let (perLine, count) = try best(3) { () -> Int in
    let fresh = try Tokenizer(contentsOf: tinyURL)
    var n = 0
    for line in lines { n += fresh.encode(line, addSpecialTokens: false).count }
    return n
}
print(String(format: "encode per line (%d calls), cold cache: %.3f s = %.2f MB/s (%d ids)", lines.count, perLine, mb / perLine, count))

// Scanner against Swift Regex on the same text (pre-tokenization only).
let bytes = Array(text.utf8)
let (scanTime, scanCount) = best(3) { () -> Int in
    var scratch = Scratch()
    var out: [Piece] = []
    bytes.withUnsafeBufferPointer { b in Scanner.decode(b, Piece(start: 0, end: Int32(bytes.count)), into: &scratch) }
    scratch.scalars.withUnsafeBufferPointer { sc in scratch.classes.withUnsafeBufferPointer { cl in Scanner.llama3(sc, cl, &out) } }
    return out.count
}
let regex = try Regex(KnownPattern.llama3Source).matchingSemantics(.unicodeScalar)
let sample = String(text.prefix(text.count / 20))
let sampleMB = Double(sample.utf8.count) / 1e6
let (regexTime, regexCount) = best(1) { sample.matches(of: regex).count }
print(String(format: "Llama 3 split, hand-written scanner: %.3f s for %.2f MB = %.1f MB/s (%d pieces)", scanTime, mb, mb / scanTime, scanCount))
print(String(format: "Llama 3 split, Swift Regex: %.3f s for %.2f MB = %.2f MB/s (%d pieces)", regexTime, sampleMB, sampleMB / regexTime, regexCount))

// One 1 MB "word" (no spaces): exercises the heap merge path; must stay near-linear.
let longWord = String(repeating: "abcdefghij", count: 100_000)
let (longTime, longIDs) = best(1) { tok.encode(longWord, addSpecialTokens: false) }
print(String(format: "encode one 1 MB word: %.3f s (%d ids)", longTime, longIDs.count))
