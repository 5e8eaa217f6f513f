import ArgumentParser
import Backends
import BitNet
import Layers
import TensorCore

/// `ternary generate --model DIR`: the checkpoint alternative to a random `--preset`.
extension GenerateCommand {
    /// The model's shapes: from `--model`'s config.json when given, else the preset.
    func resolvedConfig() throws -> BitNetConfig {
        if let directory = model { return try BitNetConfig.read(directory: directory) }
        return try BitNetConfig.preset(named: preset.rawValue)
    }

    /// `resolvedConfig()` with its failure reported against the flag that caused it.
    func validatedConfig() throws -> BitNetConfig {
        do { return try resolvedConfig() } catch {
            throw ValidationError(model != nil ? "--model: \(error)" : "--preset: \(error)")
        }
    }

    /// The checkpoint (keeping `config`'s LM head format and cache capacity) or the random preset.
    func buildModel(config: BitNetConfig, backend: any LinearBackend, context: ComputeContext) throws -> BitNetModel {
        if let directory = model {
            return try BitNetModel.load(checkpoint: directory, backend: backend, context: context,
                                        lmHeadFormat: config.lmHeadFormat, kvCacheCapacity: config.cacheCapacity)
        }
        return try BitNetModel.random(config: config, seed: seed, backend: backend, context: context)
    }

    /// "tiny preset" or "checkpoint DIR", for the summary line.
    var sourceDescription: String { model.map { "checkpoint \($0)" } ?? "\(preset.rawValue) preset" }
}
