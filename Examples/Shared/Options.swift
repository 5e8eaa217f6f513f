// The examples' command line, kept out of the way of what they teach. Every example target compiles
// this one file: Examples/<Name>/Options.swift is a symlink to Examples/Shared/Options.swift.
import Foundation

/// `--name value` options and bare `--flag`s, all checked before the example starts, so a typo or
/// a bad value ends in one line that names it instead of a crash or a silently used default.
struct Options {
    /// A bad command line; `description` names the argument and what was expected.
    struct Invalid: Error, CustomStringConvertible { let description: String }
    private var values: [String: String] = [:], flags: Set<String> = []

    /// Reads `CommandLine.arguments`: `valueNames` take a value, `flagNames` do not, anything
    /// else is an error. `--help` prints `usage` and exits.
    init(usage: String, values valueNames: Set<String>, flags flagNames: Set<String> = []) throws {
        var rest = CommandLine.arguments.dropFirst()
        while let argument = rest.popFirst() {
            if argument == "--help" || argument == "-h" { print(usage); exit(0) }
            let name = argument.hasPrefix("--") ? String(argument.dropFirst(2)) : ""
            if flagNames.contains(name) { flags.insert(name); continue }
            guard valueNames.contains(name) else { throw Invalid(description: "unknown argument '\(argument)' (try --help)") }
            guard let value = rest.popFirst(), !value.hasPrefix("--") else { throw Invalid(description: "\(argument) needs a value") }
            values[name] = value
        }
    }

    func flag(_ name: String) -> Bool { flags.contains(name) }
    func string(_ name: String) -> String? { values[name] }

    /// `--name`'s value read by `parse` (nil when invalid, which `expected` describes), or `fallback`.
    func value<T>(_ name: String, _ fallback: T, expected: String, _ parse: (String) -> T?) throws -> T {
        guard let text = values[name] else { return fallback }
        guard let value = parse(text) else { throw Invalid(description: "--\(name) '\(text)' is not \(expected)") }
        return value
    }

    /// A count: an integer from 1 to `max` (2^20 by default, so products of a few cannot overflow).
    func count(_ name: String, _ fallback: Int, max: Int = 1 << 20) throws -> Int {
        try value(name, fallback, expected: "an integer from 1 to \(max)") { Int($0).flatMap { (1...max).contains($0) ? $0 : nil } }
    }
}

/// Ends the program with `error: <what went wrong>` on stderr and exit status 1: the examples'
/// top-level `catch`, so a thrown `TernaryKitError` or `Options.Invalid` is one line, not a crash.
func exit(with error: any Error) -> Never {
    FileHandle.standardError.write(Data("error: \(error)\n".utf8))
    exit(1)
}
