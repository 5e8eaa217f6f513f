/// The errors TernaryKit throws for bad input from outside: shapes, values, names, files,
/// arguments. Each case carries enough context for `description` to name the problem.
public enum TernaryKitError: Error, Equatable, CustomStringConvertible, Sendable {
    /// A shape is malformed (non-positive dimension, overflow, wrong rank) or two shapes disagree.
    case invalidShape(String)
    /// A value is outside what the operation accepts (e.g. a weight outside {-1, 0, 1}).
    case invalidValue(String)
    /// A buffer or array has the wrong number of elements for the shape it is said to have.
    case lengthMismatch(expected: Int, actual: Int, what: String)
    /// A backend name that the registry does not know.
    case unknownBackend(name: String, valid: [String])
    /// A parameter (thread count, k, density, ...) outside its documented range.
    case invalidArgument(String)
    /// The operation would leave the range in which its arithmetic is exact.
    case exactnessLimit(String)
    /// A file could not be read, parsed or written.
    case file(path: String, problem: String)

    /// A one-line message naming the problem.
    public var description: String {
        switch self {
        case .invalidShape(let message): return "invalid shape: \(message)"
        case .invalidValue(let message): return "invalid value: \(message)"
        case .lengthMismatch(let expected, let actual, let what):
            return "\(what) has \(actual) elements, expected \(expected)"
        case .unknownBackend(let name, let valid):
            return "unknown backend '\(name)'; valid names: \(valid.joined(separator: ", "))"
        case .invalidArgument(let message): return "invalid argument: \(message)"
        case .exactnessLimit(let message): return "exactness limit: \(message)"
        case .file(let path, let problem): return "\(path): \(problem)"
        }
    }
}
