import Foundation

#if canImport(Glibc)
import Glibc
#endif

/// A one-line progress display on stderr, shown only when stderr is a terminal and not `--quiet`.
struct Progress {
    let enabled: Bool
    let total: Int
    private(set) var done = 0

    init(total: Int, quiet: Bool) {
        self.total = total
        enabled = !quiet && isatty(STDERR_FILENO) != 0
    }

    mutating func step(_ what: String) {
        done += 1
        guard enabled else { return }
        let line = "[\(done)/\(total)] \(what)"
        FileHandle.standardError.write(Data("\r\u{1B}[K\(line)".utf8))
    }

    func finish() {
        guard enabled else { return }
        FileHandle.standardError.write(Data("\r\u{1B}[K".utf8))
    }
}
