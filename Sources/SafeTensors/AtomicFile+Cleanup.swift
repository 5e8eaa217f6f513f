#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CKernels
import Dispatch
import Foundation
import TensorCore

/// What happens to temporaries when a write is interrupted: by a signal (Ctrl-C, `kill`), or by
/// a crash that leaves them behind for a later writer to remove.
extension AtomicFile {
    /// Temporary files and directories being written, removed if SIGINT or SIGTERM arrives.
    ///
    /// Why a dispatch signal source instead of a signal handler: a temporary *directory* holds
    /// files written by nested atomic writes, so removing it means listing it and unlinking an
    /// unknown set of names, which async-signal-safe calls alone cannot do without preallocating
    /// every name. With the signals ignored and delivered to a `DispatchSource` instead, the
    /// cleanup runs on an ordinary thread, where locks and `FileManager` are allowed; it then
    /// restores the default action and re-raises the signal, so the process still ends the way
    /// the signal says (the shell sees SIGINT / SIGTERM).
    final class Registry: @unchecked Sendable {
        private let lock = NSLock()
        private var next = 0
        private var entries: [Int: (path: String, isDirectory: Bool)] = [:]

        func add(_ path: String, isDirectory: Bool) -> Int {
            lock.lock(); defer { lock.unlock() }
            next += 1
            entries[next] = (path, isDirectory)
            return next
        }

        func remove(_ token: Int) {
            lock.lock(); defer { lock.unlock() }
            entries[token] = nil
        }

        /// The registered paths, newest first (files inside a directory before the directory).
        func snapshot() -> [(path: String, isDirectory: Bool)] {
            lock.lock(); defer { lock.unlock() }
            return entries.sorted { $0.key > $1.key }.map(\.value)
        }

        /// Removes every path registered now, newest first. The entries stay registered: their
        /// writers still own them and remove their tokens when they return.
        func removeAll() {
            for entry in snapshot() {
                if entry.isDirectory {
                    // A nested writer may add a file while the tree is removed: try a few times.
                    for _ in 0..<3 where (try? FileManager.default.removeItem(atPath: entry.path)) == nil {
                        if (try? FileKind.of(entry.path)) == .absent { break }
                    }
                } else {
                    unlink(entry.path)
                }
            }
        }
    }

    static let registry = Registry()
    nonisolated(unsafe) private static var signalSources: [any DispatchSourceSignal] = []
    private static let installOnce: Void = {
        let queue = DispatchQueue(label: "TernaryKit.AtomicFile.signals")
        for signo in [SIGINT, SIGTERM] {
            signal(signo, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signo, queue: queue)
            source.setEventHandler {
                removeRegisteredTemporaries()
                // End by the signal itself. Dispatch's threads block signals: unblock it here
                // before raising; `_exit` only if the signal still did not end the process.
                signal(signo, SIG_DFL)
                var set = sigset_t()
                sigemptyset(&set)
                sigaddset(&set, signo)
                pthread_sigmask(SIG_UNBLOCK, &set, nil)
                raise(signo)
                _exit(128 + signo)
            }
            source.resume()
            signalSources.append(source)
        }
    }()

    /// Makes SIGINT and SIGTERM remove every temporary file or directory being written (see
    /// `Registry`) before the process ends by the signal. Call once, early (the `ternary` CLI
    /// does); idempotent. Without it, an interrupted write leaves its temporary behind, and the
    /// next write to the same destination removes it (`removeStaleTemporaries(for:)`).
    public static func removeTemporariesOnSignal() {
        _ = installOnce
    }

    /// Removes what is registered now, process-wide (used by the signal sources).
    static func removeRegisteredTemporaries() {
        registry.removeAll()
    }

    /// Removes the temporaries a writer of `path` left behind when its process died: entries
    /// `.NAME.tmp-PID-*` and `.NAME.old-PID-*` next to `path` whose PID is not this process and
    /// names no running process (`kill(pid, 0)` fails with `ESRCH`). Best effort: anything that
    /// cannot be removed is left.
    /// - Returns: the paths removed.
    @discardableResult
    public static func removeStaleTemporaries(for path: String) -> [String] {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        let name = url.lastPathComponent
        guard let entries = try? FileManager.default.contentsOfDirectory(atPath: directory) else { return [] }
        var removed: [String] = []
        for entry in entries {
            guard let pid = stalePID(entry, name: name), pid != getpid() else { continue }
            guard kill(pid, 0) == -1, errno == ESRCH else { continue }
            let full = (directory as NSString).appendingPathComponent(entry)
            if (try? FileManager.default.removeItem(atPath: full)) != nil { removed.append(full) }
        }
        return removed
    }

    /// The PID in `.NAME.tmp-PID-RAND` or `.NAME.old-PID-RAND`, or nil for another name.
    static func stalePID(_ entry: String, name: String) -> pid_t? {
        for kind in [".tmp-", ".old-"] {
            let prefix = "." + name + kind
            guard entry.utf8.starts(with: prefix.utf8) else { continue }
            let rest = entry.utf8.dropFirst(prefix.utf8.count)
            guard let dash = rest.firstIndex(of: UInt8(ascii: "-")),
                  let pid = pid_t(String(decoding: rest[..<dash], as: UTF8.self)), pid > 0,
                  UInt32(String(decoding: rest[rest.index(after: dash)...], as: UTF8.self)) != nil else { continue }
            return pid
        }
        return nil
    }

    /// Exchanges two existing directory entries atomically (Linux `renameat2(RENAME_EXCHANGE)`).
    /// - Returns: false when the kernel or file system does not support the exchange (`EINVAL`,
    ///   `ENOSYS`, `ENOTSUP`), so the caller falls back to two renames.
    /// - Throws: `TernaryKitError.file` for any other failure.
    static func exchange(_ a: String, _ b: String) throws -> Bool {
        if tk_rename_exchange(a, b) == 0 { return true }
        let code = errno
        if code == EINVAL || code == ENOSYS || code == ENOTSUP || code == EOPNOTSUPP { return false }
        throw failure(b, "cannot exchange the new directory with the old one", code)
    }
}
