// Checkpoint round trip: export a random BitNet model as a Hugging Face checkpoint, look inside
// it with the safetensors reader, decode one packed weight by hand, reload it, and check that
// the reloaded model computes bit-identical logits.
//
//   swift run CheckpointRoundTrip                              # the tiny preset (2 layers, hidden 64)
//   swift run CheckpointRoundTrip --hidden 256 --layers 4 --seed 9 --keep   # bigger; keep the files
//   swift run CheckpointRoundTrip --help                       # the options
//
// The format (Hugging Face BitNet b1.58; README "Checkpoints" and Sources/BitNet/BitNetCheckpoint.swift): config.json + model.safetensors, where each projection is
// `U8 [out/4, in]` (four 2-bit planes along the output dimension, code = weight + 1) with a
// one-element `weight_scale` = 1/γ, and embeddings / norms are BF16 (or F32 when BF16 would round).
import ArgumentParser
import Backends
import Foundation
import BitNet
import Layers
import SafeTensors
import TensorCore

/// The command line.
struct CheckpointRoundTrip: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "CheckpointRoundTrip", abstract: "Export a random BitNet model, inspect the checkpoint, reload it, compare logits.")

    @Option(help: "The model width (default: the tiny preset's).") var hidden = BitNetConfig.tiny.hiddenSize
    @Option(help: "Decoder layers (default: the tiny preset's).") var layers = BitNetConfig.tiny.numHiddenLayers
    @Option(help: "Seeds the random weights.") var seed: UInt64 = 42
    @Flag(help: "Keep the exported files.") var keep = false

    func validate() throws {
        for (name, value) in [("hidden", hidden), ("layers", layers)] where !(1...1 << 20).contains(value) {
            throw ValidationError("--\(name) \(value) is not an integer from 1 to \(1 << 20)")
        }
    }

    /// `--help` prints the usage (exit 0); a bad argument, or an error thrown by `run()`, ends in
    /// one `error: ...` line on stderr and exit status 1.
    static func main() {
        do { var command = try parseAsRoot(); try command.run() } catch {
            if exitCode(for: error) == .success { print(fullMessage(for: error)); Foundation.exit(0) }
            FileHandle.standardError.write(Data("error: \(message(for: error))\n".utf8)); Foundation.exit(1)
        }
    }

    func run() throws {
        // MARK: 1. A random model, exported

        var config = BitNetConfig.tiny
        config.hiddenSize = hidden
        config.intermediateSize = config.hiddenSize * 5 / 2 / 4 * 4      // a multiple of 4, as the packing needs
        config.numHiddenLayers = layers
        let model = try BitNetModel.random(config: config, seed: seed)

        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("ternarykit-roundtrip-\(getpid())").path
        defer { if !keep { try? FileManager.default.removeItem(atPath: directory) } }   // clean up

        let summary = try model.exportCheckpoint(to: directory)
        print("1. exported a random \(config.numHiddenLayers)-layer, hidden-\(config.hiddenSize) model (seed \(seed)) to")
        print("   \(directory)")
        print("   \(summary.tensorCount) tensors, \(summary.safetensorsBytes) bytes of model.safetensors; float tensors: "
              + "\(summary.bfloat16Tensors) BF16 (exact), \(summary.float32Tensors) F32 (BF16 would round them)")
        for file in try FileManager.default.contentsOfDirectory(atPath: directory).sorted() {
            let size = (try FileManager.default.attributesOfItem(atPath: directory + "/" + file)[.size] as? Int) ?? 0
            print("   " + file.padding(toLength: 20, withPad: " ", startingAt: 0) + String(format: "%10d bytes", size))
        }

        // MARK: 2. Inspect it with the safetensors reader

        // SafeTensorsFile memory-maps the file and validates the whole header; nothing else is read yet.
        let file = try SafeTensorsFile(path: directory + "/model.safetensors")
        print("\n2. model.safetensors: \(file.headerByteCount)-byte JSON header, \(file.dataByteCount) data bytes, metadata \(file.metadata)")
        print("   " + "tensor".padding(toLength: 48, withPad: " ", startingAt: 0) + "dtype  " + "shape".padding(toLength: 13, withPad: " ", startingAt: 0) + "     bytes")
        var hidden = 0
        for name in file.names {   // sorted by name
            // Layers after the first have the same tensors: list layer 0 only.
            if name.hasPrefix("model.layers."), !name.hasPrefix("model.layers.0.") { hidden += 1; continue }
            let info = try file.info(name)
            print("   " + name.padding(toLength: 48, withPad: " ", startingAt: 0)
                  + info.dtype.rawValue.padding(toLength: 7, withPad: " ", startingAt: 0)
                  + "\(info.shape)".padding(toLength: 13, withPad: " ", startingAt: 0)
                  + String(format: "%10d", info.byteCount))
        }
        let others = config.numHiddenLayers == 2 ? "model.layers.1" : "model.layers.1 … \(config.numHiddenLayers - 1)"
        if hidden > 0 { print("   … and the same \(hidden / (config.numHiddenLayers - 1)) tensors for each of \(others)") }
        var bytesByType: [String: Int] = [:]
        for name in file.names { bytesByType[try file.info(name).dtype.rawValue, default: 0] += try file.info(name).byteCount }
        print("   bytes by dtype: " + bytesByType.sorted { $0.key < $1.key }.map { "\($0.key) \($0.value)" }.joined(separator: ", "))

        // MARK: 3. Decode one projection by hand

        // `U8 [out/4, in]`: with R = out/4, bits 2i..2i+1 of packed[r, c] hold W[i·R + r, c] + 1.
        let key = "model.layers.0.mlp.up_proj"
        let packed = try file.uint8s(key + ".weight")
        let packedShape = try file.info(key + ".weight").shape
        let (rows, columns) = (packedShape[0], packedShape[1])
        var unpacked = [Int8](repeating: 0, count: 4 * rows * columns)
        for r in 0..<rows {
            for c in 0..<columns {
                let byte = packed[r * columns + c]
                for plane in 0..<4 { unpacked[(plane * rows + r) * columns + c] = Int8((byte >> (2 * plane)) & 3) - 1 }
            }
        }
        let weightScale = try file.floats(key + ".weight_scale")[0]
        let layer = model.module(at: key) as! BitLinear
        print("\n3. \(key).weight: U8 \(packedShape) → \(4 * rows)×\(columns) ternary by hand")
        let bits = String(packed[0], radix: 2), byteText = String(repeating: "0", count: 8 - bits.count) + bits
        print("   first packed byte 0b\(byteText) → W[0,0], W[\(rows),0], W[\(2 * rows),0], W[\(3 * rows),0] = "
              + "\((0..<4).map { unpacked[$0 * rows * columns] })")
        print("   equal to the model's weight: \(unpacked == layer.weight.values ? "yes" : "NO")")
        print("   weight_scale \(weightScale) → γ = 1/weight_scale = \(BitNetPacking.gamma(fromWeightScale: weightScale)); "
              + "the model's γ = \(layer.weight.scale)")
        precondition(unpacked == layer.weight.values && BitNetPacking.gamma(fromWeightScale: weightScale) == layer.weight.scale)

        // MARK: 4. Reload and compare logits bit for bit

        var rng = SeededGenerator(seed: 1)
        let tokens = (0..<10).map { _ in Int(rng.next() % UInt64(config.vocabSize)) }
        let original = try model.forward(tokens, allLogits: true)
        print("\n4. logits of \(tokens.count) tokens (\(original.count) values), original vs reloaded:")
        var failed = false
        for backend in [NaiveBackend() as any LinearBackend, RSRBackend.rsrPlusPlus, BitPackedBackend()] {
            // load(checkpoint:) reads config.json, checks every name, dtype and shape, unpacks on all cores.
            let reloaded = try BitNetModel.load(checkpoint: directory, backend: backend)
            let logits = try reloaded.forward(tokens, allLogits: true)
            let differing = zip(original, logits).filter { $0.bitPattern != $1.bitPattern }.count
            failed = failed || differing != 0 || logits.count != original.count
            print("   reloaded on " + backend.name.padding(toLength: 10, withPad: " ", startingAt: 0)
                  + (differing == 0 ? "bit-identical" : "\(differing) values DIFFER"))
        }
        print(keep ? "\nkept \(directory)" : "\nremoved \(directory)")
        if failed { Foundation.exit(1) }
    }
}

CheckpointRoundTrip.main()
