#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import Foundation
import TensorCore

/// Writing a file or a directory so that its final name only ever holds a complete result.
///
/// Every writer in TernaryKit (safetensors files, checkpoint directories, `config.json`) goes
/// through these two functions: the content is produced under a hidden temporary name in the
/// destination's own directory (so the final `rename(2)` never crosses file systems), flushed
/// with `fsync`, and renamed into place. A failure, or a thrown error from the caller's `body`,
/// removes the temporary file and leaves whatever was at the destination untouched.
///
/// Interruptions: while a temporary exists it is registered, and SIGINT / SIGTERM remove it when
/// `removeTemporariesOnSignal()` was called (the CLI does); temporaries of a process that died
/// anyway (SIGKILL, power loss) are removed by the next write to the same destination.
public enum AtomicFile {
    /// The hidden temporary name used next to `path`: `.<name>.tmp-<pid>-<random>`.
    ///
    /// The pid lets a later writer recognise temporaries whose process is gone.
    public static func temporaryPath(for path: String) -> String {
        let url = URL(fileURLWithPath: path)
        let directory = url.deletingLastPathComponent().path
        return directory + "/." + url.lastPathComponent + ".tmp-\(getpid())-\(UInt32.random(in: 0 ... .max))"
    }

    /// A file being written: `write` appends bytes, retrying short writes and `EINTR`.
    public struct Output {
        let fd: Int32
        let path: String
        /// Bytes written so far.
        public private(set) var bytesWritten = 0
        /// Testing hook: fail with `ENOSPC` once this many bytes are written, as a full disk would.
        var failAfterBytes: Int?

        /// Appends `bytes` to the file.
        /// - Throws: `TernaryKitError.file` naming the destination and the system error.
        public mutating func write(_ bytes: UnsafeRawBufferPointer) throws {
            var offset = 0
            while offset < bytes.count {
                var chunk = min(bytes.count - offset, 1 << 30)
                if let limit = failAfterBytes {
                    guard bytesWritten < limit else { throw AtomicFile.failure(path, "write failed", ENOSPC) }
                    chunk = min(chunk, limit - bytesWritten)
                }
                #if canImport(Glibc)
                let n = Glibc.write(fd, bytes.baseAddress! + offset, chunk)
                #else
                let n = Darwin.write(fd, bytes.baseAddress! + offset, chunk)
                #endif
                if n < 0 {
                    if errno == EINTR { continue }
                    throw AtomicFile.failure(path, "write failed", errno)
                }
                offset += n
                bytesWritten += n
            }
        }

        /// Appends the bytes of an array.
        public mutating func write(_ bytes: [UInt8]) throws {
            try bytes.withUnsafeBytes { try write($0) }
        }
    }

    static func failure(_ path: String, _ step: String, _ code: Int32) -> TernaryKitError {
        .file(path: path, problem: "\(step): \(String(cString: strerror(code)))")
    }

    /// Creates or replaces the file at `path` with what `body` writes, atomically.
    /// - Throws: `TernaryKitError.file` naming the failing step and the system error, or what
    ///   `body` throws; in every case the destination is left as it was.
    public static func write(to path: String, _ body: (inout Output) throws -> Void) throws {
        try write(to: path, failAfterBytes: nil, body)
    }

    static func write(to path: String, failAfterBytes: Int?, _ body: (inout Output) throws -> Void) throws {
        let directory = URL(fileURLWithPath: path).deletingLastPathComponent().path
        removeStaleTemporaries(for: path)
        let temporary = temporaryPath(for: path)
        let token = registry.add(temporary, isDirectory: false)
        defer { registry.remove(token) }
        let fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0o644)
        guard fd >= 0 else { throw failure(path, "cannot create a temporary file in \(directory)", errno) }
        var closed = false
        var renamed = false
        defer {
            if !closed { close(fd) }
            if !renamed { unlink(temporary) }
        }
        var output = Output(fd: fd, path: path, failAfterBytes: failAfterBytes)
        try body(&output)
        guard fsync(fd) == 0 else { throw failure(path, "fsync failed", errno) }
        closed = true
        guard close(fd) == 0 else { throw failure(path, "close failed", errno) }
        guard rename(temporary, path) == 0 else { throw failure(path, "cannot rename the temporary file into place", errno) }
        renamed = true
        syncDirectory(directory)
    }

    /// Flushes a directory's entries (a finished rename) to disk; best effort, since some file
    /// systems refuse `fsync` on directories.
    public static func syncDirectory(_ directory: String) {
        let fd = open(directory.isEmpty ? "." : directory, O_RDONLY | O_CLOEXEC)
        if fd >= 0 { _ = fsync(fd); close(fd) }
    }

    /// Builds a directory atomically: `body` fills a new hidden temporary directory next to
    /// `path`, which is then renamed to `path`.
    ///
    /// - An absent or empty destination is replaced by one `rename(2)`.
    /// - A non-empty destination is replaced only when `replacing` is true: the new directory
    ///   and the old one are exchanged atomically (`renameat2(RENAME_EXCHANGE)`, so the name
    ///   always holds a complete directory), then the old one is removed. Where the exchange is
    ///   not supported, the old directory is renamed aside and the new one renamed into place.
    /// - Stale temporaries of earlier writers of `path` whose process is gone are removed first.
    /// - Parameters:
    ///   - path: the directory to create.
    ///   - replacing: whether an existing non-empty directory may be replaced.
    ///   - body: writes the contents; it receives the temporary directory's path.
    /// - Throws: `TernaryKitError.file` for a missing parent, a destination that is a file or
    ///   (without `replacing`) a non-empty directory, or a failed step; what `body` throws.
    public static func writeDirectory(at path: String, replacing: Bool, _ body: (String) throws -> Void) throws {
        let target = URL(fileURLWithPath: path).standardizedFileURL
        let destination = target.path
        let parent = target.deletingLastPathComponent().path
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: parent, isDirectory: &isDirectory), isDirectory.boolValue else {
            throw TernaryKitError.file(path: destination, problem: "the parent directory \(parent) does not exist")
        }
        let existing = try directoryState(destination)
        if existing == .nonEmpty && !replacing {
            throw TernaryKitError.file(path: destination, problem: "exists and is not empty (choose another directory, or replace it explicitly)")
        }
        removeStaleTemporaries(for: destination)
        let temporary = temporaryPath(for: destination)
        let token = registry.add(temporary, isDirectory: true)
        defer { registry.remove(token) }
        do { try FileManager.default.createDirectory(atPath: temporary, withIntermediateDirectories: false) } catch {
            throw TernaryKitError.file(path: temporary, problem: "cannot create the temporary directory: \(error.localizedDescription)")
        }
        var placed = false
        defer { if !placed { try? FileManager.default.removeItem(atPath: temporary) } }
        try body(temporary)
        pauseForTests()
        try place(temporary, at: destination, existing: existing)
        placed = true
    }

    /// Testing hook for interruption tests (a subprocess must be signalled while its temporary
    /// directory exists): `TERNARYKIT_TEST_PAUSE_BEFORE_PLACE=SECONDS` sleeps that long after the
    /// contents are written and before they are renamed into place.
    static func pauseForTests() {
        guard let text = ProcessInfo.processInfo.environment["TERNARYKIT_TEST_PAUSE_BEFORE_PLACE"],
              let seconds = Double(text), seconds > 0, seconds < 600 else { return }
        Thread.sleep(forTimeInterval: seconds)
    }

    /// Whether a path is absent, an empty directory or a non-empty one.
    public enum DirectoryState: Sendable { case absent, empty, nonEmpty }

    /// The state of `path`.
    /// - Throws: `TernaryKitError.file` when `path` exists and is not a directory.
    public static func directoryState(_ path: String) throws -> DirectoryState {
        var isDirectory: ObjCBool = false
        guard FileManager.default.fileExists(atPath: path, isDirectory: &isDirectory) else { return .absent }
        guard isDirectory.boolValue else { throw TernaryKitError.file(path: path, problem: "exists and is not a directory") }
        let contents = (try? FileManager.default.contentsOfDirectory(atPath: path)) ?? ["?"]
        return contents.isEmpty ? .empty : .nonEmpty
    }

    /// Renames the finished `temporary` directory to `path`. A non-empty old directory is first
    /// moved aside and removed only once the new one is in place (moved back on failure).
    static func place(_ temporary: String, at path: String, existing: DirectoryState) throws {
        func fail(_ step: String) -> TernaryKitError { failure(path, step, errno) }
        // Re-check: the directory may have changed while the contents were being written.
        let now = try directoryState(path)
        guard now != .nonEmpty || existing == .nonEmpty else {
            throw TernaryKitError.file(path: path, problem: "was filled by someone else during the export; not replaced")
        }
        if now != .nonEmpty {
            // rename(2) replaces an empty directory atomically.
            guard rename(temporary, path) == 0 else { throw fail("cannot rename the temporary directory into place") }
        } else if try exchange(temporary, path) {
            // The old directory is now under the temporary name (still registered, so a signal
            // removes it too); the target name held a complete checkpoint throughout.
            syncDirectory((path as NSString).deletingLastPathComponent)
            try? FileManager.default.removeItem(atPath: temporary)
        } else {
            // Not registered for removal on a signal: between the two renames it is the only copy
            // of the old checkpoint.
            let aside = temporary.replacingOccurrences(of: ".tmp-", with: ".old-")
            guard rename(path, aside) == 0 else { throw fail("cannot move the old directory aside") }
            guard rename(temporary, path) == 0 else {
                let error = fail("cannot rename the temporary directory into place")
                _ = rename(aside, path)
                throw error
            }
            try? FileManager.default.removeItem(atPath: aside)
        }
        syncDirectory((path as NSString).deletingLastPathComponent)
    }
}
