import TensorCore

/// Backends by name. `BackendRegistry.backend(named:)` is how the CLI, the benchmarks and the
/// layers find one; the order of `all` is the order tables list them in.
public enum BackendRegistry {
    /// Every registered backend with its default configuration.
    public static var all: [any LinearBackend] {
        [NaiveBackend(), BitPackedBackend(), RSRBackend.rsr, RSRBackend.rsrPlusPlus, BLASBackend()]
    }

    /// The backend layers use when none is given: `bitpacked` with the best kernel variant this
    /// CPU runs (2 bits per weight, the fastest at every batch size measured).
    public static var defaultBackend: any LinearBackend { BitPackedBackend() }

    /// The registered names, in table order.
    public static var names: [String] { all.map(\.name) }

    /// The backend called `name` (case-sensitive, e.g. "rsr++").
    /// - Throws: `.unknownBackend` listing the valid names.
    public static func backend(named name: String) throws -> any LinearBackend {
        guard let b = all.first(where: { $0.name == name }) else {
            throw TernaryKitError.unknownBackend(name: name, valid: names)
        }
        return b
    }

    /// Parses a comma-separated list such as "naive,blas" (whitespace ignored).
    /// - Throws: `.unknownBackend` for any unknown name, `.invalidArgument` for an empty list.
    public static func backends(list: String) throws -> [any LinearBackend] {
        let parts = list.split(separator: ",").map { $0.trimmingCharacters(in: " \t") }.filter { !$0.isEmpty }
        guard !parts.isEmpty else { throw TernaryKitError.invalidArgument("empty backend list '\(list)'") }
        return try parts.map { try backend(named: String($0)) }
    }
}

extension Substring {
    fileprivate func trimmingCharacters(in set: String) -> Substring {
        var s = self
        while let f = s.first, set.contains(f) { s.removeFirst() }
        while let l = s.last, set.contains(l) { s.removeLast() }
        return s
    }
}
