extension String {
    /// The string with every character that a terminal could interpret written out as `\u{…}`:
    /// C0 controls (newline, ESC, …), DEL, C1 controls, and the bidirectional overrides and
    /// isolates (U+202A–U+202E, U+2066–U+2069) that reorder what follows them.
    ///
    /// Strings that come from files (tensor names, dtype strings, metadata, config fields) go
    /// through this before they reach a table or an error message, so a crafted file can neither
    /// move the cursor, clear the screen nor forge extra output lines. Backslashes are kept as
    /// they are, so escaping twice changes nothing.
    public var escapedForTerminal: String {
        guard unicodeScalars.contains(where: String.needsTerminalEscape) else { return self }
        var out = ""
        out.reserveCapacity(utf8.count + 16)
        for u in unicodeScalars {
            if String.needsTerminalEscape(u) {
                out += "\\u{" + String(u.value, radix: 16, uppercase: true) + "}"
            } else {
                out.unicodeScalars.append(u)
            }
        }
        return out
    }

    /// Whether `u` is escaped by ``escapedForTerminal``.
    public static func needsTerminalEscape(_ u: Unicode.Scalar) -> Bool {
        switch u.value {
        case 0x00...0x1F, 0x7F...0x9F, 0x202A...0x202E, 0x2066...0x2069: return true
        default: return false
        }
    }
}
