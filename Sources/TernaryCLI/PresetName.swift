import ArgumentParser

/// `--preset`: the named BitNet model shapes (`BitNetConfig.preset(named:)` gives the
/// configuration of `rawValue`). Case-insensitive; "bitnet-b1.58-2b-4t" is accepted for 2b4t.
enum PresetName: String, CaseIterable, ExpressibleByArgument {
    case bitnet2B4T = "2b4t"
    case tiny

    init?(argument: String) {
        switch argument.lowercased() {
        case "2b4t", "bitnet-b1.58-2b-4t": self = .bitnet2B4T
        case "tiny": self = .tiny
        default: return nil
        }
    }
}
