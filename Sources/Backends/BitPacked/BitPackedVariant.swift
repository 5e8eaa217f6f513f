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
    /// AMX (TDPBSSD on 16×16 Int32 tiles) for Int8 products of at least
    /// `BitPackedKernel.amxMinimumBatch` activation rows; `avx512vnni` below that and for the
    /// Float path. Needs AMX-TILE, AMX-INT8, the OS's grant of the tile state, and everything
    /// `avx512vnni` needs.
    case amx

    /// Whether a CPU with `features` can execute this variant.
    public func isSupported(by features: CPUFeatures) -> Bool {
        switch self {
        case .portable: return true
        case .avx2: return features.avx2 && features.fma
        case .avx512vnni: return features.avx512 && features.avx512vnni
        case .amx: return features.amx && BitPackedVariant.avx512vnni.isSupported(by: features)
        }
    }

    /// The Int8 entry point (for `amx`: the one below `BitPackedKernel.amxMinimumBatch`).
    var int8Function: @convention(c) (UnsafePointer<tk_bitpacked_i8_args>?) -> Void {
        switch self {
        case .portable: return tk_bitpacked_i8_portable
        case .avx2: return tk_bitpacked_i8_avx2
        case .avx512vnni, .amx: return tk_bitpacked_i8_avx512vnni
        }
    }

    /// `Σ x` of one Int8 activation row (wrapping Int32), which the Int8 kernels subtract once
    /// per row (they multiply unsigned codes `w + 1`). The same value in every variant.
    var rowSumFunction: @convention(c) (UnsafePointer<Int8>?, Int) -> Int32 {
        switch self {
        case .portable: return tk_sum_i8_portable
        case .avx2: return tk_sum_i8_avx2
        case .avx512vnni, .amx: return tk_sum_i8_avx512
        }
    }

    /// The Float entry point.
    var floatFunction: @convention(c) (UnsafePointer<tk_bitpacked_f32_args>?) -> Void {
        switch self {
        case .portable: return tk_bitpacked_f32_portable
        case .avx2: return tk_bitpacked_f32_avx2
        case .avx512vnni, .amx: return tk_bitpacked_f32_avx512vnni
        }
    }
}
