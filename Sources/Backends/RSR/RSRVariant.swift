import TensorCore

/// Which C implementation of the RSR inner loops (prefix sums, segment sums, folds) runs.
///
/// Both variants read the same index and return identical Int8-path results.
public enum RSRVariant: String, KernelVariant {
    /// Plain C: any CPU.
    case portable
    /// AVX-512 F/BW/VL: gathers and 16-lane adds.
    case avx512

    /// Whether a CPU with `features` can execute this variant.
    public func isSupported(by features: CPUFeatures) -> Bool {
        switch self {
        case .portable: return true
        case .avx512: return features.avx512
        }
    }
}
