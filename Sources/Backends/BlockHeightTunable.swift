import TensorCore

/// A backend with a block-height parameter k (RSR and RSR++): `ternary bench --k` sweeps it.
public protocol BlockHeightTunable: LinearBackend {
    /// The same backend with block height `k`.
    /// - Throws: `.invalidArgument` when `k` is outside the backend's range.
    func withBlockHeight(_ k: Int) throws -> any LinearBackend
}
