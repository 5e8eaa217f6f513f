import Backends
import TensorCore

/// The RSR k sweep of `ternary bench --k`.
extension RSRBackend {
    /// `backends` with every RSR backend replaced by one per block height in `k` (all in the given
    /// form); unchanged when `k` is empty and the form is the default. Used by `ternary bench --k`.
    static func sweep(_ backends: [any LinearBackend], k: [Int], form: Form = .fused) -> [any LinearBackend] {
        backends.flatMap { backend -> [any LinearBackend] in
            guard let rsr = backend as? RSRBackend else { return [backend] }
            if k.isEmpty { return [RSRBackend(variant: rsr.variant, k: rsr.kChoice, form: form)] }
            return k.map { RSRBackend(variant: rsr.variant, k: .fixed($0), form: form) }
        }
    }
}
