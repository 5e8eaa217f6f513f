import CKernels
import Testing
import TensorCore
@testable import Backends

/// The activation packer of the AMX B tiles (`tk_bitpacked_amx_pack_x`: 16 × 16 transposes of
/// 32-bit lanes) against the layout written out byte by byte.
@Suite struct ActivationPackingTests {
    static let supported = BitPackedVariant.avx512vnni.isSupported

    /// The padded width of the 2-bit layout: full groups of 256, then a full group when more than
    /// 128 inputs remain, a half group of 128 when 1–128 remain.
    static func paddedIn(_ n: Int) -> Int {
        let full = n / 256, rest = n % 256
        return 256 * full + (rest == 0 ? 0 : rest > 128 ? 256 : 128)
    }

    @Test(.enabled(if: supported, "needs AVX-512 VNNI"))
    func amxPackerWritesTheVNNILayout() {
        var g = SeededGenerator(seed: 21)
        for n in [1, 3, 63, 64, 65, 127, 128, 129, 255, 256, 300, 1000, 2560] {
            let p = Self.paddedIn(n), stride = n + 5  // a row stride wider than the row
            for batch in [1, 2, 15, 16, 17, 31, 33] {
                let x = g.int8s(count: batch * stride)
                // AMX B tiles: tile (b, c) at 1024 (b · p/64 + c), byte 64k + 4j + i = x[16b + j][64c + 4k + i].
                var amx = [Int8](repeating: 99, count: tk_bitpacked_amx_x_bytes(batch, p))
                tk_bitpacked_amx_pack_x(x, stride, n, batch, p, &amx)
                var wrong = 0
                for b in 0..<((batch + 15) / 16) {
                    for j in 0..<16 {
                        let t = 16 * b + j
                        for i in 0..<p {
                            let v: Int8 = t < batch && i < n ? x[t * stride + i] : 0
                            let c = i / 64, k = (i % 64) / 4
                            if amx[1024 * (b * (p / 64) + c) + 64 * k + 4 * j + i % 4] != v { wrong += 1 }
                        }
                    }
                }
                #expect(wrong == 0, "in \(n) batch \(batch): \(wrong) bytes wrong")
            }
        }
    }
}
