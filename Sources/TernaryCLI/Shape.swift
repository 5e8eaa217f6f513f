import TensorCore

/// A weight shape `out × in` as written on the command line: "4096x4096".
struct MatrixShape: Equatable, CustomStringConvertible {
    let out: Int
    let `in`: Int

    /// Parses "OUTxIN" (also "OUT×IN"); positive decimal integers only.
    static func parse(_ text: String) throws -> MatrixShape {
        let parts = text.lowercased().replacingOccurrences(of: "×", with: "x").split(separator: "x", omittingEmptySubsequences: false)
        guard parts.count == 2, let o = Int(parts[0]), let i = Int(parts[1]) else {
            throw TernaryKitError.invalidShape("'\(text)' is not OUTxIN (e.g. 4096x4096)")
        }
        guard o > 0, i > 0 else {
            throw TernaryKitError.invalidShape("'\(text)': both dimensions must be positive")
        }
        guard !o.multipliedReportingOverflow(by: i).overflow, i <= TernaryMatrix.maxInFeatures else {
            throw TernaryKitError.invalidShape("'\(text)' is too large")
        }
        return MatrixShape(out: o, in: i)
    }

    var description: String { "\(out)x\(self.in)" }
}

import Foundation
