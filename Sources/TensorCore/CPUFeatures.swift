import CKernels

/// The SIMD features of the running CPU, detected once at run time.
///
/// This is the one place TernaryKit asks the CPU what it can do: every choice of a C kernel
/// variant (``KernelVariant``) is made from it, never from compile-time flags, so the same binary
/// runs the best code on an AVX-512 VNNI server and the portable code elsewhere.
public struct CPUFeatures: Sendable, Equatable {
    /// One flag per instruction-set extension, as `__builtin_cpu_supports` reports it.
    public let sse42, avx, avx2, fma, f16c, avx512f, avx512bw, avx512vl, avx512vnni, avxvnni: Bool
    /// AMX tile and Int8 instructions, as CPUID reports them. The operating system must also
    /// grant the tile state before a process may use them; kernels that use AMX ask for it.
    public let amxTile, amxInt8: Bool

    /// A feature set given explicitly (tests, or describing another machine).
    public init(sse42: Bool = false, avx: Bool = false, avx2: Bool = false, fma: Bool = false, f16c: Bool = false,
                avx512f: Bool = false, avx512bw: Bool = false, avx512vl: Bool = false, avx512vnni: Bool = false,
                avxvnni: Bool = false, amxTile: Bool = false, amxInt8: Bool = false) {
        self.sse42 = sse42; self.avx = avx; self.avx2 = avx2; self.fma = fma; self.f16c = f16c
        self.avx512f = avx512f; self.avx512bw = avx512bw; self.avx512vl = avx512vl; self.avx512vnni = avx512vnni
        self.avxvnni = avxvnni; self.amxTile = amxTile; self.amxInt8 = amxInt8
    }

    /// The features of the machine this process runs on, detected once.
    public static let detected: CPUFeatures = {
        let f = tk_cpu_features_detect()
        return CPUFeatures(
            sse42: f.sse42 != 0, avx: f.avx != 0, avx2: f.avx2 != 0, fma: f.fma != 0, f16c: f.f16c != 0,
            avx512f: f.avx512f != 0, avx512bw: f.avx512bw != 0, avx512vl: f.avx512vl != 0,
            avx512vnni: f.avx512vnni != 0, avxvnni: f.avxvnni != 0, amxTile: f.amx_tile != 0, amxInt8: f.amx_int8 != 0)
    }()

    /// AVX-512 F, BW and VL together: what every AVX-512 kernel here needs.
    public var avx512: Bool { avx512f && avx512bw && avx512vl }

    /// e.g. "sse4.2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512vnni avxvnni".
    public var summary: String {
        let pairs: [(Bool, String)] = [
            (sse42, "sse4.2"), (avx, "avx"), (avx2, "avx2"), (fma, "fma"), (f16c, "f16c"),
            (avx512f, "avx512f"), (avx512bw, "avx512bw"), (avx512vl, "avx512vl"),
            (avx512vnni, "avx512vnni"), (avxvnni, "avxvnni"), (amxTile, "amx-tile"), (amxInt8, "amx-int8"),
        ]
        let names = pairs.filter(\.0).map(\.1)
        return names.isEmpty ? "baseline x86-64 only" : names.joined(separator: " ")
    }
}
