import TensorCore

/// The `bitpacked` backend: 2 bits per weight, SIMD byte dot products, run-time CPU dispatch.
///
/// The strong conventional baseline: it streams the packed weights once per product and does
/// O(out · in) multiply-adds on the vector units, like bitnet.cpp's I2_S kernel. It is the
/// fastest way to decode one token at a time and the bar that RSR has to clear.
public struct BitPackedBackend: LinearBackend {
    /// The registry name, used by `--backends bitpacked` and `BackendRegistry.backend(named:)`.
    public var name: String { "bitpacked" }
    /// The forced C variant, or nil for the best one the CPU supports.
    public let variant: BitPackedVariant?

    /// - Parameter variant: force one C variant (tests, benchmarks); nil picks
    ///   `BitPackedVariant.best`.
    public init(variant: BitPackedVariant? = nil) {
        self.variant = variant
    }

    /// Packs `weights` (2 bits per weight).
    /// - Throws: `.invalidArgument` when a forced variant is not supported by this CPU.
    public func prepare(_ weights: TernaryMatrix, context: ComputeContext) throws -> any LinearKernel {
        try BitPackedKernel(weights: weights, context: context, variant: variant ?? .best)
    }
}
