import Foundation
import Testing
@testable import SafeTensors
import TensorCore

/// `SafeTensorsFile.floats` converts large tensors in parallel chunks: the result must equal the
/// element-by-element conversion, for a count that is not a multiple of the chunk size.
@Suite struct LargeTensorTests {
    @Test func parallelConversionEqualsElementwise() throws {
        let count = (1 << 22) + 12_345
        // Every BF16 bit pattern occurs (NaNs included: the conversion is a shift, bits are kept).
        let bytes = [UInt8](unsafeUninitializedCapacity: 2 * count) { b, n in
            for i in 0..<count {
                let bits = UInt16(truncatingIfNeeded: i &* 40_503)
                b[2 &* i] = UInt8(truncatingIfNeeded: bits)
                b[2 &* i &+ 1] = UInt8(truncatingIfNeeded: bits >> 8)
            }
            n = 2 * count
        }
        var writer = SafeTensorsWriter()
        try writer.add("big", dtype: .bf16, shape: [count], bytes: bytes)
        let file = try SafeTensorsFile(data: Data(writer.serialized()))
        let big = try file.floats("big")
        #expect(big.count == count)
        var mismatches = 0
        big.withUnsafeBufferPointer { f in
            for i in 0..<count where f[i].bitPattern != UInt32(UInt16(bytes[2 &* i]) | UInt16(bytes[2 &* i &+ 1]) << 8) << 16 {
                mismatches += 1
            }
        }
        #expect(mismatches == 0)
    }
}
