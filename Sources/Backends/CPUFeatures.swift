import CKernels

/// The SIMD features of the running CPU, detected at run time (the C kernels dispatch on them).
public struct CPUFeatures: Sendable, Equatable {
    /// One flag per instruction-set extension, as `__builtin_cpu_supports` reports it.
    public let sse42, avx, avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avxvnni: Bool

    /// The features of the machine this process runs on, detected once; backends choose their C variants from it.
    public static let detected: CPUFeatures = {
        let f = tk_cpu_features_detect()
        return CPUFeatures(
            sse42: f.sse42 != 0, avx: f.avx != 0, avx2: f.avx2 != 0, fma: f.fma != 0, f16c: f.f16c != 0,
            avx512f: f.avx512f != 0, avx512bw: f.avx512bw != 0, avx512vl: f.avx512vl != 0,
            avx512vnni: f.avx512vnni != 0, avxvnni: f.avxvnni != 0)
    }()

    /// e.g. "sse4.2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512vnni avxvnni".
    public var summary: String {
        let pairs: [(Bool, String)] = [
            (sse42, "sse4.2"), (avx, "avx"), (avx2, "avx2"), (fma, "fma"), (f16c, "f16c"),
            (avx512f, "avx512f"), (avx512bw, "avx512bw"), (avx512vl, "avx512vl"),
            (avx512vnni, "avx512vnni"), (avxvnni, "avxvnni"),
        ]
        let names = pairs.filter(\.0).map(\.1)
        return names.isEmpty ? "baseline x86-64 only" : names.joined(separator: " ")
    }
}
