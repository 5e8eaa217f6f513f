#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import TensorCore

/// What a path is, found with `stat(2)` before anything opens it, so that errors name it ("is a
/// directory", "is a FIFO") instead of a generic permission or Cocoa error, and a FIFO is never
/// opened (an open would block until a writer appears).
public enum FileKind: Equatable, Sendable {
    case absent, regular, directory, characterDevice, blockDevice, fifo, socket, other

    /// The kind of `path`, following symbolic links (`stat`); `.absent` when it does not exist.
    /// - Throws: `TernaryKitError.file` when `stat` fails for another reason (e.g. permission).
    public static func of(_ path: String) throws -> FileKind {
        var st = stat()
        guard stat(path, &st) == 0 else {
            let code = errno
            if code == ENOENT || code == ENOTDIR { return .absent }
            throw TernaryKitError.file(path: path, problem: "cannot examine: \(String(cString: strerror(code)))")
        }
        switch st.st_mode & S_IFMT {
        case S_IFREG: return .regular
        case S_IFDIR: return .directory
        case S_IFCHR: return .characterDevice
        case S_IFBLK: return .blockDevice
        case S_IFIFO: return .fifo
        case S_IFSOCK: return .socket
        default: return .other
        }
    }

    /// The size in bytes of the regular file at `path`, after ``requireRegularFile(_:expected:)``.
    /// - Throws: as `requireRegularFile`, and `TernaryKitError.file` when the file is larger
    ///   than `limit` bytes (checked before anything reads it).
    public static func regularFileSize(_ path: String, expected: String, limit: Int) throws -> Int {
        try requireRegularFile(path, expected: expected)
        var st = stat()
        guard stat(path, &st) == 0 else {
            throw TernaryKitError.file(path: path, problem: "cannot examine: \(String(cString: strerror(errno)))")
        }
        let size = Int(st.st_size)
        guard size <= limit else {
            throw TernaryKitError.file(path: path, problem: "is \(size) bytes, more than the \(limit) bytes accepted for \(expected)")
        }
        return size
    }

    /// "is a directory", "is a FIFO", ... for error messages.
    public var phrase: String {
        switch self {
        case .absent: return "does not exist"
        case .regular: return "is a regular file"
        case .directory: return "is a directory"
        case .characterDevice: return "is a character device"
        case .blockDevice: return "is a block device"
        case .fifo: return "is a FIFO (named pipe)"
        case .socket: return "is a socket"
        case .other: return "is not a regular file"
        }
    }

    /// Throws unless `path` is a regular file (symbolic links followed).
    /// - Parameters:
    ///   - path: the file to check.
    ///   - expected: what the file should be, for the message ("a .safetensors file").
    /// - Throws: `TernaryKitError.file` naming what the path is instead.
    public static func requireRegularFile(_ path: String, expected: String) throws {
        let kind = try of(path)
        guard kind == .regular else {
            if kind == .absent { throw TernaryKitError.file(path: path, problem: "no such file") }
            throw TernaryKitError.file(path: path, problem: "\(kind.phrase), expected \(expected)")
        }
    }
}
