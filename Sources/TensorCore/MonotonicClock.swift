#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// The monotonic clock every timing in TernaryKit reads (benchmarks, `k: .auto`, generation
/// speeds): `CLOCK_MONOTONIC`, unaffected by wall-clock changes, about 20 ns per read.
public enum MonotonicClock {
    /// Seconds since an arbitrary fixed point; only differences are meaningful.
    @inline(__always)
    public static func seconds() -> Double {
        var ts = timespec()
        clock_gettime(CLOCK_MONOTONIC, &ts)
        return Double(ts.tv_sec) + Double(ts.tv_nsec) * 1e-9
    }
}
