import Backends
import TensorCore
import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// OpenBLAS 0.3.21 (Debian 12) does not know recent CPUs (e.g. family 6 model 207) and falls
/// back to its SSE3 "Prescott" kernels, which would make the BLAS baseline several times weaker
/// than it is. Before timing, `bench` re-executes itself with `OPENBLAS_CORETYPE` set to the best
/// kernel family the CPU supports, unless the user set the variable. OpenBLAS reads it only when
/// the library loads, hence the re-exec.
enum OpenBLASCore {
    /// The core OpenBLAS should use on this CPU, or nil when it already uses a fitting one.
    static func betterCore() -> String? {
        let current = OpenBLASInfo.coreName.lowercased()
        guard current == "prescott" || current == "core2" || current == "nehalem" || current == "generic" else { return nil }
        let f = CPUFeatures.detected
        if f.avx512f && f.avx512bw && f.avx512vl { return "SkylakeX" }
        if f.avx2 && f.fma { return "Haswell" }
        return nil
    }

    /// Re-executes the current process with `OPENBLAS_CORETYPE` set, when that helps and the
    /// user has not set it. Returns normally when nothing is to be done (or exec fails).
    static func reexecWithBestCoreIfNeeded() {
        guard getenv("OPENBLAS_CORETYPE") == nil, let core = betterCore() else { return }
        setenv("OPENBLAS_CORETYPE", core, 1)
        let args = CommandLine.arguments
        var cargs: [UnsafeMutablePointer<CChar>?] = args.map { strdup($0) }
        cargs.append(nil)
        execv("/proc/self/exe", &cargs)
        // exec failed: carry on with the current core.
        unsetenv("OPENBLAS_CORETYPE")
    }
}
