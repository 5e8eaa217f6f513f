import ArgumentParser

/// `ternary`: the command-line face of TernaryKit.
@main
struct Ternary: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ternary",
        abstract: "Ternary (1.58-bit) and binary weight linear algebra: benchmarks, BitNet generation, checkpoints.",
        discussion: """
            Backends: naive (reference loops), bitpacked (2-bit weights, AVX-512 VNNI / AVX2 / \
            portable kernels), rsr and rsr++ (the RSR algorithm of arXiv 2411.06360), blas \
            (OpenBLAS float32). 'ternary bench' with no arguments runs a short side-by-side \
            comparison on the BitNet b1.58 2B4T layer shapes; 'ternary bench model' times whole-model \
            prefill and decode; 'ternary info' shows what this machine offers.
            """,
        subcommands: [BenchCommand.self, InfoCommand.self, GenerateCommand.self, ChatCommand.self, TokenizeCommand.self, InspectCommand.self,
                      LogitsCommand.self, ExportCommand.self, QuantizeCommand.self]
    )
}
