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
    /// grant the tile state before a process may use them: see ``amxOSGranted``.
    public let amxTile, amxInt8: Bool
    /// Whether this process may execute AMX tile instructions: the OS enabled the tile state and
    /// (Linux) granted it to the process when asked (`arch_prctl(ARCH_REQ_XCOMP_PERM)`, asked
    /// once by `detected`, only on CPUs with AMX). False wherever `amxTile` or `amxInt8` is.
    public let amxOSGranted: Bool

    /// A feature set given explicitly (tests, or describing another machine).
    public init(sse42: Bool = false, avx: Bool = false, avx2: Bool = false, fma: Bool = false, f16c: Bool = false,
                avx512f: Bool = false, avx512bw: Bool = false, avx512vl: Bool = false, avx512vnni: Bool = false,
                avxvnni: Bool = false, amxTile: Bool = false, amxInt8: Bool = false, amxOSGranted: Bool = false) {
        self.sse42 = sse42; self.avx = avx; self.avx2 = avx2; self.fma = fma; self.f16c = f16c
        self.avx512f = avx512f; self.avx512bw = avx512bw; self.avx512vl = avx512vl; self.avx512vnni = avx512vnni
        self.avxvnni = avxvnni; self.amxTile = amxTile; self.amxInt8 = amxInt8
        self.amxOSGranted = amxTile && amxInt8 && amxOSGranted
    }

    /// The features of the machine this process runs on, detected once.
    public static let detected: CPUFeatures = {
        let f = tk_cpu_features_detect()
        return CPUFeatures(
            sse42: f.sse42 != 0, avx: f.avx != 0, avx2: f.avx2 != 0, fma: f.fma != 0, f16c: f.f16c != 0,
            avx512f: f.avx512f != 0, avx512bw: f.avx512bw != 0, avx512vl: f.avx512vl != 0,
            avx512vnni: f.avx512vnni != 0, avxvnni: f.avxvnni != 0, amxTile: f.amx_tile != 0, amxInt8: f.amx_int8 != 0,
            amxOSGranted: f.amx_tile != 0 && f.amx_int8 != 0 && tk_amx_os_granted() != 0)
    }()

    /// AVX-512 F, BW and VL together: what every AVX-512 kernel here needs.
    public var avx512: Bool { avx512f && avx512bw && avx512vl }

    /// AMX-TILE, AMX-INT8 and the OS's grant together: what the AMX kernels need.
    public var amx: Bool { amxTile && amxInt8 && amxOSGranted }

    /// e.g. "sse4.2 avx avx2 fma f16c avx512f avx512bw avx512vl avx512vnni avxvnni", then
    /// "amx-tile amx-int8 (OS: granted)" (or "refused") on CPUs with AMX.
    public var summary: String {
        let pairs: [(Bool, String)] = [
            (sse42, "sse4.2"), (avx, "avx"), (avx2, "avx2"), (fma, "fma"), (f16c, "f16c"),
            (avx512f, "avx512f"), (avx512bw, "avx512bw"), (avx512vl, "avx512vl"),
            (avx512vnni, "avx512vnni"), (avxvnni, "avxvnni"), (amxTile, "amx-tile"), (amxInt8, "amx-int8"),
        ]
        var names = pairs.filter(\.0).map(\.1)
        if amxTile || amxInt8 { names.append(amxOSGranted ? "(OS: granted)" : "(OS: refused)") }
        return names.isEmpty ? "baseline x86-64 only" : names.joined(separator: " ")
    }
}
