import ArgumentParser

/// `ternary`: the command-line face of TernaryKit.
@main
struct Ternary: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ternary",
        abstract: "Ternary (1.58-bit) and binary weight linear algebra: benchmarks and information.",
        discussion: """
            Backends: naive (reference loops), blas (OpenBLAS float32), and, as they land, \
            bitpacked, rsr and rsr++. Run 'ternary bench' with no arguments for a short default \
            comparison, 'ternary info' to see what this machine offers.
            """,
        subcommands: [BenchCommand.self, InfoCommand.self, GenerateCommand.self, InspectCommand.self, LogitsCommand.self, ExportCommand.self]
    )
}
