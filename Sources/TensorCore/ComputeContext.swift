import Foundation

/// How much of the machine a product may use. Backends split their work across `threads`
/// threads (and tell OpenBLAS the same number).
public struct ComputeContext: Sendable, Equatable, CustomStringConvertible {
    /// The number of threads, ≥ 1.
    public let threads: Int

    /// The most threads a context accepts (far beyond any machine this runs on; the bound keeps
    /// per-thread buffers sized from a thread count finite).
    public static let maximumThreads = 1024

    /// A context with `threads` threads.
    /// - Throws: `.invalidArgument` when `threads` is outside `1 ... maximumThreads`.
    public init(threads: Int) throws {
        guard threads >= 1 else { throw TernaryKitError.invalidArgument("thread count must be at least 1, got \(threads)") }
        guard threads <= ComputeContext.maximumThreads else {
            throw TernaryKitError.invalidArgument("thread count \(threads) exceeds \(ComputeContext.maximumThreads)")
        }
        self.threads = threads
    }

    private init(validThreads: Int) { threads = validThreads }

    /// One thread: the default context of layers, models and checkpoint loading.
    public static let singleThreaded = ComputeContext(validThreads: 1)

    /// One thread per active processor.
    public static var allCores: ComputeContext {
        ComputeContext(validThreads: max(1, ProcessInfo.processInfo.activeProcessorCount))
    }

    /// e.g. "ComputeContext(threads: 2)".
    public var description: String { "ComputeContext(threads: \(threads))" }
}

