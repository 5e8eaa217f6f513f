import ArgumentParser
import Foundation
import SafeTensors
import TensorCore

/// `ternary`: the command-line face of TernaryKit.
@main
struct Ternary: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "ternary",
        abstract: "Ternary (1.58-bit) and binary weight linear algebra: benchmarks, BitNet generation, checkpoints.",
        discussion: """
            Backends: naive (reference loops), bitpacked (2-bit weights, AMX / AVX-512 VNNI / AVX2 / \
            portable kernels), rsr and rsr++ (the RSR algorithm of arXiv 2411.06360), blas \
            (OpenBLAS float32). 'ternary bench' with no arguments runs a short side-by-side \
            comparison on the BitNet b1.58 2B4T layer shapes; 'ternary bench model' times whole-model \
            prefill and decode; 'ternary info' shows what this machine offers. Text: 'ternary \
            tokenize', 'ternary generate --prompt', 'ternary chat' (a checkpoint's tokenizer.json). \
            Weights: 'ternary quantize' ternarizes float safetensors (with an optional low-rank \
            correction), 'ternary export' writes a random preset as a checkpoint, 'ternary inspect' \
            lists a file.
            """,
        subcommands: [BenchCommand.self, InfoCommand.self, GenerateCommand.self, ChatCommand.self, TokenizeCommand.self, InspectCommand.self,
                      LogitsCommand.self, ExportCommand.self, QuantizeCommand.self]
    )

    /// Parses and runs a command with one error format for every failure: a single line
    /// `Error: …` on stderr and exit status 1, whether the arguments were invalid or the command
    /// failed while running (no usage dump). `--help` prints the help on stdout, exit status 0.
    static func main() {
        AtomicFile.removeTemporariesOnSignal()
        do {
            var command = try parseAsRoot()
            try command.run()
        } catch {
            let code = exitCode(for: error)
            if code == .success {
                let text = fullMessage(for: error)
                if !text.isEmpty { print(text) }
                Foundation.exit(0)
            }
            let message = message(for: error)
            if !message.isEmpty {
                FileHandle.standardError.write(Data((Ternary.errorLine(message) + "\n").utf8))
            }
            Foundation.exit(1)
        }
    }

    /// `message` as the one line the CLI prints: "Error: " and the message's lines joined with
    /// "; ", every control character escaped (a message can quote a file's content).
    static func errorLine(_ message: String) -> String {
        var text = message
        if text.hasPrefix("Error: ") { text.removeFirst("Error: ".count) }
        let lines = text.split(whereSeparator: \.isNewline).map { $0.trimmingCharacters(in: .whitespaces) }.filter { !$0.isEmpty }
        return "Error: " + lines.joined(separator: "; ").escapedForTerminal
    }
}
