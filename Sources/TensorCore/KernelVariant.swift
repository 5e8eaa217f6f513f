/// One family of interchangeable C implementations of an inner loop (portable C, AVX2,
/// AVX-512 VNNI, ...), chosen at run time from ``CPUFeatures``.
///
/// Every family in TernaryKit (the `bitpacked` products, the RSR segment sums, the layers'
/// vector loops and LM head GEMVs) is an enum conforming to this protocol, so they all answer
/// the same three questions the same way: which variants this CPU runs (``supported``), which
/// one to use (``best``), and which one a user named (``named(_:)``). Cases are declared
/// slowest first; the first case must run on any CPU.
public protocol KernelVariant: CaseIterable, Sendable, Hashable, RawRepresentable where RawValue == String {
    /// Whether a CPU with `features` can execute this variant.
    func isSupported(by features: CPUFeatures) -> Bool
}

extension KernelVariant {
    /// Whether the running CPU can execute this variant.
    public var isSupported: Bool { isSupported(by: .detected) }

    /// The variants the running CPU supports, slowest first.
    public static var supported: [Self] { allCases.filter { $0.isSupported(by: .detected) } }

    /// The fastest variant the running CPU supports (the last supported case).
    public static var best: Self { supported.last ?? allCases.first! }

    /// The variant called `name`, checked against the running CPU.
    /// - Throws: `.invalidArgument` naming the variant and listing the valid and supported ones.
    public static func named(_ name: String) throws -> Self {
        guard let v = Self(rawValue: name) else {
            throw TernaryKitError.invalidArgument(
                "unknown kernel variant '\(name)'; valid: \(allCases.map(\.rawValue).joined(separator: ", "))")
        }
        guard v.isSupported else {
            throw TernaryKitError.invalidArgument(
                "kernel variant '\(name)' needs CPU features this machine lacks (supported here: "
                + "\(supported.map(\.rawValue).joined(separator: ", ")); CPU: \(CPUFeatures.detected.summary))")
        }
        return v
    }
}
