import Foundation

/// One policy for sizes that come from outside (command-line flags, config fields, file
/// headers): products and sums are computed with overflow detection, and an allocation is
/// refused with a clear error before it is attempted when it could not fit in this machine's
/// physical memory.
///
/// Every function throws `TernaryKitError` (never traps), naming `what` was being sized.
public enum SizeLimits {
    /// The machine's physical memory in bytes (`ProcessInfo.physicalMemory`).
    public static var physicalMemory: Int {
        let bytes = ProcessInfo.processInfo.physicalMemory
        return bytes > UInt64(Int.max) ? Int.max : Int(bytes)
    }

    /// The product of `factors`, all of which must be non-negative.
    /// - Throws: `.invalidShape` when a factor is negative or the product overflows `Int`.
    ///   A zero factor anywhere makes the product 0, whatever the order of the others.
    public static func product(_ factors: [Int], what: String) throws -> Int {
        if let negative = factors.first(where: { $0 < 0 }) {
            throw TernaryKitError.invalidShape("\(what): negative size \(negative)")
        }
        if factors.contains(0) { return 0 }
        var result = 1
        for f in factors {
            let (p, overflow) = result.multipliedReportingOverflow(by: f)
            guard !overflow else {
                throw TernaryKitError.invalidShape("\(what): \(factors.map(String.init).joined(separator: " × ")) overflows a 64-bit integer")
            }
            result = p
        }
        return result
    }

    /// `a + b` for non-negative sizes.
    /// - Throws: `.invalidArgument` on overflow.
    public static func sum(_ a: Int, _ b: Int, what: String) throws -> Int {
        let (s, overflow) = a.addingReportingOverflow(b)
        guard !overflow else { throw TernaryKitError.invalidArgument("\(what): \(a) + \(b) overflows a 64-bit integer") }
        return s
    }

    /// The bytes of `count` elements of `elementSize` bytes each.
    /// - Throws: `.invalidArgument` on overflow or when they exceed physical memory.
    @discardableResult
    public static func bytes(count: Int, elementSize: Int, what: String) throws -> Int {
        let total = try product([count, elementSize], what: what)
        try requireFits(bytes: total, what: what)
        return total
    }

    /// Throws unless `bytes` fit in physical memory.
    /// - Throws: `.invalidArgument` naming `what`, the bytes needed and the bytes available.
    public static func requireFits(bytes: Int, what: String) throws {
        let available = physicalMemory
        guard bytes <= available else {
            throw TernaryKitError.invalidArgument(
                "\(what) needs \(describe(bytes: bytes)), more than this machine's \(describe(bytes: available)) of memory")
        }
    }

    /// Bytes with a readable unit: "64000000032 bytes (64.0 GB)".
    public static func describe(bytes: Int) -> String {
        bytes < 1_000_000 ? "\(bytes) bytes" : "\(bytes) bytes (" + String(format: "%.1f", Double(bytes) / 1e9) + " GB)"
    }
}
