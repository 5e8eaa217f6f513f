import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Large, long-lived weight buffers on transparent huge pages where the OS offers them.
///
/// Decoding streams every weight once per token; with 4 KiB pages that is one TLB entry per
/// 4 KiB read, with 2 MiB pages one per 2 MiB. Buffers of at least 2 MiB are allocated on a
/// 2 MiB boundary, rounded up to whole 2 MiB pages, and advised with `madvise(MADV_HUGEPAGE)`
/// (Linux; this project's hosts run THP in `madvise` mode, so nothing gets huge pages without
/// asking). Smaller buffers, and other systems, get plain 64-byte-aligned memory.
public enum HugePages {
    /// The huge page size this code asks for.
    public static let pageSize = 2 << 20

    /// False when the environment sets `TERNARYKIT_NO_HUGEPAGES` (for A/B runs with one binary).
    public static let enabled = ProcessInfo.processInfo.environment["TERNARYKIT_NO_HUGEPAGES"] == nil

    /// At least `byteCount` bytes (≥ 1), 64-byte aligned, uninitialized; release them with ``deallocate(_:)``.
    public static func allocate(byteCount: Int) -> UnsafeMutableRawPointer {
        let n = max(1, byteCount)
        var p: UnsafeMutableRawPointer?
        #if os(Linux)
        if enabled && n >= pageSize {
            let rounded = (n + pageSize - 1) / pageSize * pageSize
            guard posix_memalign(&p, pageSize, rounded) == 0, let q = p else { fatalError("out of memory (\(rounded) bytes)") }
            _ = madvise(q, rounded, MADV_HUGEPAGE)
            return q
        }
        #endif
        guard posix_memalign(&p, 64, n) == 0, let q = p else { fatalError("out of memory (\(n) bytes)") }
        return q
    }

    /// Advises the whole 2 MiB pages inside `region` for huge pages (Linux; nothing elsewhere or
    /// when disabled). Call it before the memory is first written: pages already touched stay
    /// small until the kernel's background collapsing gets to them.
    public static func advise(_ region: UnsafeMutableRawBufferPointer) {
        #if os(Linux)
        guard enabled, let base = region.baseAddress else { return }
        let start = (Int(bitPattern: base) + pageSize - 1) / pageSize * pageSize
        let end = (Int(bitPattern: base) + region.count) / pageSize * pageSize
        if end > start { _ = madvise(UnsafeMutableRawPointer(bitPattern: start), end - start, MADV_HUGEPAGE) }
        #endif
    }

    /// Releases a buffer from ``allocate(byteCount:)``.
    public static func deallocate(_ pointer: UnsafeMutableRawPointer) { free(pointer) }
}
