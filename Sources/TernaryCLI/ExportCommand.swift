import ArgumentParser
import Foundation
import BitNet
import Layers
import TensorCore

/// `ternary export`: a random-weight preset written as a Hugging Face BitNet checkpoint, so the
/// loader, `logits`, `generate --model` and other tools can be exercised without downloads.
struct ExportCommand: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "export",
        abstract: "Write a random-weight BitNet preset as a Hugging Face checkpoint directory (config.json + model.safetensors).",
        discussion: """
            The weights are those 'ternary generate --preset NAME --seed S' uses. The directory is \
            written under a temporary name and renamed into place, so a failure leaves nothing \
            partial. An existing non-empty --out is refused unless --force is given. Loading it \
            back ('ternary logits --model DIR') gives bit-identical logits.
            """
    )

    @Option(help: "Model shapes: 2b4t (BitNet b1.58 2B4T; also bitnet-b1.58-2b-4t) or tiny.")
    var preset: PresetName

    @Option(help: "Seed of the random weights.")
    var seed: UInt64 = 42

    @Option(help: "Output checkpoint directory.")
    var out: String

    @Flag(help: "Replace an existing non-empty --out directory.")
    var force = false

    func validate() throws {
        do { _ = try BitNetConfig.preset(named: preset.rawValue) } catch { throw ValidationError("--preset: \(error)") }
        if out.isEmpty { throw ValidationError("--out must name a directory") }
        var isDirectory: ObjCBool = false
        if FileManager.default.fileExists(atPath: out, isDirectory: &isDirectory) {
            if !isDirectory.boolValue { throw ValidationError("--out \(out) exists and is not a directory") }
            let contents = (try? FileManager.default.contentsOfDirectory(atPath: out)) ?? ["?"]
            if !contents.isEmpty && !force {
                throw ValidationError("--out \(out) exists and is not empty; pass --force to replace it")
            }
        }
    }

    func run() throws {
        let t0 = MonotonicClock.seconds()
        let model = try BitNetModel.random(config: BitNetConfig.preset(named: preset.rawValue), seed: seed)
        let t1 = MonotonicClock.seconds()
        let summary = try model.exportCheckpoint(to: out, replacing: force)
        let t2 = MonotonicClock.seconds()
        print(String(format: "wrote %@: %d tensors, %.2f MB model.safetensors (%d BF16 / %d F32 float tensors); built in %.1f s, written in %.1f s",
                     summary.directory, summary.tensorCount, Double(summary.safetensorsBytes) / 1e6,
                     summary.bfloat16Tensors, summary.float32Tensors, t1 - t0, t2 - t1))
    }
}
