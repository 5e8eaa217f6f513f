import CKernels
import Testing
import TensorCore
@testable import Backends

/// `Σ x` of an Int8 row (`BitPackedVariant.rowSumFunction`), which the unsigned-code kernels
/// subtract once per activation row: every supported variant against a plain wrapping sum.
@Suite struct RowSumTests {
    static func reference(_ x: UnsafePointer<Int8>, _ n: Int) -> Int32 {
        var s: UInt32 = 0
        for i in 0..<n { s = s &+ UInt32(bitPattern: Int32(x[i])) }
        return Int32(bitPattern: s)
    }

    @Test(arguments: BitPackedVariant.supported)
    func everyLengthAndOffset(_ variant: BitPackedVariant) {
        var g = SeededGenerator(seed: 5)
        let x = g.int8s(count: 1200)
        let sum = variant.rowSumFunction
        var wrong: [String] = []
        x.withUnsafeBufferPointer { xb in
            // Lengths around every vector width and tail mask, from unaligned starts.
            for n in Array(0...300) + [383, 384, 385, 511, 512, 513, 1000, 1100] {
                for offset in [0, 1, 7, 63] where offset + n <= x.count {
                    let p = xb.baseAddress! + offset
                    let got = sum(p, n), want = Self.reference(p, n)
                    if got != want { wrong.append("n \(n) offset \(offset): \(got) != \(want)") }
                }
            }
        }
        let failures = wrong.count
        #expect(failures == 0, "\(variant): \(wrong.prefix(5))")
    }

    @Test(arguments: BitPackedVariant.supported)
    func extremesAreExact(_ variant: BitPackedVariant) {
        let sum = variant.rowSumFunction
        // |Σ x| up to 2^31: all −128 over 2^24 values is exactly Int32.min; all 127 just below it.
        for (value, n) in [(Int8.min, 1 << 24), (Int8.max, 1 << 24), (Int8.min, 65_537), (Int8.max, 131_071)] {
            let x = [Int8](repeating: value, count: n)
            let got = x.withUnsafeBufferPointer { sum($0.baseAddress!, n) }
            #expect(got == Int32(truncatingIfNeeded: Int64(value) * Int64(n)), "\(variant): \(value) × \(n)")
        }
    }
}
