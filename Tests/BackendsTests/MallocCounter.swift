// Counts heap allocations in this test process without the benchmark framework.
//
// The test binary cannot simply define `malloc` (SwiftPM does not export an executable's
// symbols, so the shared libraries would still call glibc's), so the counter redirects the
// calls instead: every loaded shared object except glibc and the dynamic loader reaches
// `malloc`, `calloc`, `realloc`, `posix_memalign`, `aligned_alloc` and `memalign` through its
// GOT, and `install` points those GOT entries at counting wrappers that forward to glibc's own
// `__libc_*` entry points (`free` stays glibc's: the memory is glibc's). That covers the Swift
// runtime (`UnsafeMutablePointer.allocate`, arrays, class instances), libdispatch, libstdc++'s
// `operator new`, OpenBLAS, and this binary. Linux x86-64 ELF only.
//
// Nothing on the counting path allocates: the counters are atomics.
import Glibc
import Synchronization

enum MallocCounter {
    /// Whether AddressSanitizer runs this process (`swift test --sanitize=address`): it intercepts
    /// the malloc family itself, and redirecting its GOT entries would hand it glibc's memory.
    static let underAddressSanitizer: Bool = dlsym(UnsafeMutableRawPointer(bitPattern: 0), "__asan_init") != nil

    /// Installs the wrappers once; the number of GOT entries redirected (0: counting impossible,
    /// or not attempted under AddressSanitizer).
    static let redirectedEntries: Int = underAddressSanitizer ? 0 : install()

    /// True when allocations made now are seen: the check that the counter works at all.
    static var isActive: Bool {
        guard redirectedEntries > 0 else { return false }
        let n = allocations {
            let p = UnsafeMutableRawPointer.allocate(byteCount: 48, alignment: 8)
            p.deallocate()
        }
        return n >= 1
    }

    /// Runs `body` with counting on; the number of allocations made meanwhile by the calling
    /// thread only (`onlyThisThread`, the default: other tests run concurrently in this process
    /// and allocate on their own threads), or by every thread of the process.
    static func allocations(onlyThisThread: Bool = true, during body: () -> Void) -> Int {
        _ = redirectedEntries
        mallocCounterAllocations.store(0, ordering: .sequentiallyConsistent)
        mallocCounterThread.store(onlyThisThread ? UInt(pthread_self()) : 0, ordering: .sequentiallyConsistent)
        mallocCounterEnabled.store(true, ordering: .sequentiallyConsistent)
        body()
        mallocCounterEnabled.store(false, ordering: .sequentiallyConsistent)
        return mallocCounterAllocations.load(ordering: .sequentiallyConsistent)
    }

    private static func install() -> Int {
        var count = 0
        _ = withUnsafeMutablePointer(to: &count) { countPointer in
            mallocCounterIteratePhdr({ info, _, data in
                guard let info, let data else { return 0 }
                data.assumingMemoryBound(to: Int.self).pointee += MallocCounter.redirect(object: info)
                return 0
            }, countPointer)
        }
        return count
    }

    /// The wrappers, by the symbol whose GOT entries they replace.
    private static let wrappers: [(String, UInt)] = [
        ("malloc", unsafeBitCast(countingMalloc as @convention(c) (Int) -> UnsafeMutableRawPointer?, to: UInt.self)),
        ("calloc", unsafeBitCast(countingCalloc as @convention(c) (Int, Int) -> UnsafeMutableRawPointer?, to: UInt.self)),
        ("realloc", unsafeBitCast(countingRealloc as @convention(c) (UnsafeMutableRawPointer?, Int) -> UnsafeMutableRawPointer?, to: UInt.self)),
        ("memalign", unsafeBitCast(countingMemalign as @convention(c) (Int, Int) -> UnsafeMutableRawPointer?, to: UInt.self)),
        ("aligned_alloc", unsafeBitCast(countingMemalign as @convention(c) (Int, Int) -> UnsafeMutableRawPointer?, to: UInt.self)),
        ("posix_memalign", unsafeBitCast(countingPosixMemalign as @convention(c) (UnsafeMutablePointer<UnsafeMutableRawPointer?>?, Int, Int) -> Int32, to: UInt.self)),
    ]

    /// Redirects one object's relocations of the wrapped symbols; returns how many.
    private static func redirect(object info: UnsafeMutableRawPointer) -> Int {
        // struct dl_phdr_info { ElfW(Addr) dlpi_addr; const char *dlpi_name; const ElfW(Phdr) *dlpi_phdr; ElfW(Half) dlpi_phnum; ... }
        let base = UInt(info.load(as: UInt64.self))
        let name = info.load(fromByteOffset: 8, as: UnsafePointer<CChar>?.self).map { String(cString: $0) } ?? ""
        if name.contains("libc.so") || name.contains("ld-linux") || name.contains("linux-vdso") { return 0 }
        guard let phdr = info.load(fromByteOffset: 16, as: UnsafePointer<Elf64_Phdr>?.self) else { return 0 }
        let phnum = Int(info.load(fromByteOffset: 24, as: UInt16.self))
        guard let dynamicHeader = (0..<phnum).map({ phdr[$0] }).first(where: { $0.p_type == UInt32(PT_DYNAMIC) }),
              var dyn = UnsafePointer<Elf64_Dyn>(bitPattern: base + UInt(dynamicHeader.p_vaddr)) else { return 0 }
        // glibc relocates the address entries of a writable dynamic section in place; not all objects.
        func address(_ value: UInt64) -> UInt { UInt(value) < base ? UInt(value) + base : UInt(value) }
        var symtab: UInt = 0, strtab: UInt = 0, jmprel: UInt = 0, pltrelsz = 0, rela: UInt = 0, relasz = 0
        while dyn.pointee.d_tag != Int64(DT_NULL) {
            let v = dyn.pointee.d_un.d_val
            switch dyn.pointee.d_tag {
            case Int64(DT_SYMTAB): symtab = address(v)
            case Int64(DT_STRTAB): strtab = address(v)
            case Int64(DT_JMPREL): jmprel = address(v)
            case Int64(DT_PLTRELSZ): pltrelsz = Int(v)
            case Int64(DT_RELA): rela = address(v)
            case Int64(DT_RELASZ): relasz = Int(v)
            default: break
            }
            dyn += 1
        }
        guard symtab != 0, strtab != 0 else { return 0 }
        let symbols = UnsafePointer<Elf64_Sym>(bitPattern: symtab)!
        let strings = UnsafePointer<CChar>(bitPattern: strtab)!
        let pageSize = UInt(sysconf(Int32(_SC_PAGESIZE)))
        var redirected = 0
        for (table, bytes) in [(jmprel, pltrelsz), (rela, relasz)] where table != 0 {
            let relocations = UnsafePointer<Elf64_Rela>(bitPattern: table)!
            for i in 0..<(bytes / MemoryLayout<Elf64_Rela>.stride) {
                let r = relocations[i]
                let type = UInt32(truncatingIfNeeded: r.r_info), symbol = Int(r.r_info >> 32)
                guard type == UInt32(R_X86_64_JUMP_SLOT) || type == UInt32(R_X86_64_GLOB_DAT), symbol != 0 else { continue }
                let symbolName = String(cString: strings + Int(symbols[symbol].st_name))
                guard let wrapper = wrappers.first(where: { $0.0 == symbolName })?.1 else { continue }
                let slot = base + UInt(r.r_offset)
                let page = slot & ~(pageSize - 1)
                guard mprotect(UnsafeMutableRawPointer(bitPattern: page), Int(pageSize), PROT_READ | PROT_WRITE) == 0 else { continue }
                UnsafeMutablePointer<UInt>(bitPattern: slot)!.pointee = wrapper
                redirected += 1
            }
        }
        return redirected
    }
}

let mallocCounterEnabled = Atomic<Bool>(false)
let mallocCounterAllocations = Atomic<Int>(0)
/// The one thread whose allocations count (its `pthread_self()`), or 0 for every thread.
let mallocCounterThread = Atomic<UInt>(0)

@inline(__always)
private func noteAllocation() {
    if mallocCounterEnabled.load(ordering: .relaxed) {
        let only = mallocCounterThread.load(ordering: .relaxed)
        if only == 0 || only == UInt(pthread_self()) {
            mallocCounterAllocations.wrappingAdd(1, ordering: .relaxed)
        }
    }
}

@_silgen_name("dl_iterate_phdr")
private func mallocCounterIteratePhdr(
    _ callback: @convention(c) (UnsafeMutableRawPointer?, Int, UnsafeMutableRawPointer?) -> Int32,
    _ data: UnsafeMutableRawPointer?) -> Int32
@_silgen_name("__libc_malloc") private func libcMalloc(_ size: Int) -> UnsafeMutableRawPointer?
@_silgen_name("__libc_calloc") private func libcCalloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer?
@_silgen_name("__libc_realloc") private func libcRealloc(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer?
@_silgen_name("__libc_memalign") private func libcMemalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer?

private func countingMalloc(_ size: Int) -> UnsafeMutableRawPointer? {
    noteAllocation()
    return libcMalloc(size)
}

private func countingCalloc(_ count: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    noteAllocation()
    return libcCalloc(count, size)
}

private func countingRealloc(_ p: UnsafeMutableRawPointer?, _ size: Int) -> UnsafeMutableRawPointer? {
    noteAllocation()
    return libcRealloc(p, size)
}

private func countingMemalign(_ alignment: Int, _ size: Int) -> UnsafeMutableRawPointer? {
    noteAllocation()
    return libcMemalign(alignment, size)
}

private func countingPosixMemalign(_ result: UnsafeMutablePointer<UnsafeMutableRawPointer?>?,
                                   _ alignment: Int, _ size: Int) -> Int32 {
    noteAllocation()
    guard let p = libcMemalign(alignment, size) else { return ENOMEM }
    result?.pointee = p
    return 0
}
