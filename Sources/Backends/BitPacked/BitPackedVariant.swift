import CKernels
import TensorCore

/// Which C implementation of the `bitpacked` inner loops runs.
///
/// All variants read the same `PackedTernaryMatrix` layout and return identical Int8-path
/// results; they differ only in the instructions they use. The backend picks the best one the
/// CPU supports (`best`); tests and benchmarks may force any supported one.
public enum BitPackedVariant: String, KernelVariant {
    /// Plain C: any CPU.
    case portable
    /// AVX2 + FMA: `vpmaddubsw` on 32-byte vectors.
    case avx2
    /// AVX-512 F/BW/VL + VNNI: `vpdpbusd` on 64-byte vectors.
    case avx512vnni

    /// Whether a CPU with `features` can execute this variant.
    public func isSupported(by features: CPUFeatures) -> Bool {
        switch self {
        case .portable: return true
        case .avx2: return features.avx2 && features.fma
        case .avx512vnni: return features.avx512 && features.avx512vnni
        }
    }

    /// The Int8 entry point.
    var int8Function: @convention(c) (UnsafePointer<tk_bitpacked_i8_args>?) -> Void {
        switch self {
        case .portable: return tk_bitpacked_i8_portable
        case .avx2: return tk_bitpacked_i8_avx2
        case .avx512vnni: return tk_bitpacked_i8_avx512vnni
        }
    }

    /// The Float entry point.
    var floatFunction: @convention(c) (UnsafePointer<tk_bitpacked_f32_args>?) -> Void {
        switch self {
        case .portable: return tk_bitpacked_f32_portable
        case .avx2: return tk_bitpacked_f32_avx2
        case .avx512vnni: return tk_bitpacked_f32_avx512vnni
        }
    }
}
