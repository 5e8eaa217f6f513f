import CKernels
import TensorCore

/// Which C implementation of a ``LowRankCorrection``'s two thin products runs.
///
/// Every variant is batch-invariant: a row's result does not depend on the other rows of the
/// call, its position in the batch or the thread count. `avx2` and `avx512` compute each value
/// as the same chain of single-rounding FMAs, so they return the same bits as each other;
/// `portable` rounds products and sums separately and may differ from them in the last bits.
public enum LowRankVariant: String, KernelVariant {
    /// Plain C: any CPU.
    case portable
    /// AVX2 + FMA: 8 lanes, 4 rows × 2 vectors per register tile.
    case avx2
    /// AVX-512 F: 16 lanes, 4 rows × 4 vectors per register tile, masked tails.
    case avx512

    /// Whether a CPU with `features` can execute this variant.
    public func isSupported(by features: CPUFeatures) -> Bool {
        switch self {
        case .portable: return true
        case .avx2: return features.avx2 && features.fma
        case .avx512: return features.avx512f
        }
    }

    /// The variant `apply` uses when none is named: the fastest this CPU runs, detected once.
    public static let selected: LowRankVariant = .best

    typealias Step = @convention(c) (UnsafePointer<Float>?, Int64, Int64, UnsafePointer<Float>?, Int64,
                                     UnsafeMutablePointer<Float>?, Int64, Int64) -> Void

    /// Step 1, `t = B·x` on `Bᵀ` (`tk_lowrank_bx_*`).
    var bx: Step {
        switch self {
        case .portable: return tk_lowrank_bx_portable
        case .avx2: return tk_lowrank_bx_avx2
        case .avx512: return tk_lowrank_bx_avx512
        }
    }

    /// Step 2, `y += A·t` on `Aᵀ` (`tk_lowrank_at_*`).
    var at: Step {
        switch self {
        case .portable: return tk_lowrank_at_portable
        case .avx2: return tk_lowrank_at_avx2
        case .avx512: return tk_lowrank_at_avx512
        }
    }
}
