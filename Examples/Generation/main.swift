// Generation: a BitNet b1.58 model producing tokens, greedy and sampled, with prefill and decode
// speeds.
//
//   swift run Generation                                          # the tiny preset, random weights
//   swift run Generation --model Tests/Fixtures/tiny-bitnet       # a Hugging Face checkpoint directory
//   swift run Generation --temperature 0.8 --top-k 40 --top-p 0.95 --seed 3 --max-new-tokens 32
//   swift run -c release Generation --2b4t --backend bitpacked --threads 2   # 2B4T shapes: ~4 GB, tens of seconds to build
//   swift run Generation --help                                   # the options
//
// Other options: --tokens 1,2,3 (prompt ids; there is no tokenizer here), --backend NAME,
// --threads N, --lm-head float32|int8|int4.
// Random-weight presets have the real shapes but produce meaningless ids; they stand in for the
// model when you measure speed. A checkpoint gives the model's own tokens.
import ArgumentParser
import Backends
import Foundation
import BitNet
import Layers
import TensorCore

/// The command line.
struct Generation: ParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "Generation", abstract: "A BitNet b1.58 model generating tokens, greedy and sampled, with its speeds.")

    /// Token ids like `1,2,3`.
    struct TokenList: ExpressibleByArgument {
        var ids: [Int]
        init?(argument: String) {
            ids = argument.split(separator: ",", omittingEmptySubsequences: false).map { Int($0) ?? -1 }
            if !ids.allSatisfy({ $0 >= 0 }) { return nil }
        }
    }

    @Flag(name: .customLong("2b4t"), help: "BitNet b1.58 2B4T shapes with random weights (~4 GB).") var use2B4T = false
    @Option(help: ArgumentHelp("A Hugging Face checkpoint directory.", valueName: "dir")) var model: String?
    @Option(help: "The most tokens to generate.") var maxNewTokens = 12
    @Option(help: "Sampling temperature.") var temperature: Float = 0.8
    @Option(help: "Sample among the K most likely tokens (0: off).") var topK = 40
    @Option(help: "Sample within probability P (nucleus; 1: off).") var topP: Float = 0.95
    @Option(help: "Seeds the sampler (and a preset's random weights).") var seed: UInt64 = 42
    @Option(help: ArgumentHelp("Prompt ids (there is no tokenizer here).", valueName: "id,id,...")) var tokens: TokenList?
    @Option(help: "naive, bitpacked, rsr, rsr++ or blas (default: bitpacked with --2b4t, else naive).") var backend: String?
    @Option(help: "Threads of the products.") var threads = 1
    @Option(help: "float32, int8 or int4 (default: int8 with --2b4t, else float32).") var lmHead: LMHeadFormat?

    func validate() throws {
        if use2B4T && model != nil { throw ValidationError("--2b4t and --model exclude each other") }
        for (name, value) in [("max-new-tokens", maxNewTokens), ("threads", threads)] where !(1...1 << 20).contains(value) {
            throw ValidationError("--\(name) \(value) is not an integer from 1 to \(1 << 20)")
        }
        _ = try Sampler(temperature: temperature, topK: topK, topP: topP, seed: seed)   // checks their ranges now, not after loading
        if let name = backend { _ = try BackendRegistry.backend(named: name) }
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
        let modelDirectory = self.model, promptIDs = tokens?.ids ?? []
        let backend = try BackendRegistry.backend(named: self.backend ?? (use2B4T ? "bitpacked" : "naive"))
        let context = try ComputeContext(threads: threads)
        // The LM head of 2B4T reads 128256 × 2560 weights per token: Int8 rows read a quarter of the
        // bytes of Float32 ones (a small, measured change in the logits; see LMHeadFormat).
        let lmHead = self.lmHead ?? (use2B4T ? .int8 : .float32)

        // MARK: The model: a checkpoint, or a preset with random weights

        let clock = ContinuousClock()
        func seconds(_ d: Duration) -> Double { Double(d.components.seconds) + Double(d.components.attoseconds) * 1e-18 }

        // The KV cache is preallocated: room for a prompt of up to 256 tokens and the new ones (the
        // model's max_position_embeddings caps it).
        let cachePositions = 256 + maxNewTokens
        let start = clock.now
        let model: BitNetModel
        if let directory = modelDirectory {
            // config.json + model.safetensors (or sharded), validated, unpacked, prepared for `backend`.
            model = try BitNetModel.load(checkpoint: directory, backend: backend, context: context,
                                         lmHeadFormat: lmHead, kvCacheCapacity: cachePositions)
        } else {
            var config = use2B4T ? BitNetConfig.bitnet2B4T : BitNetConfig.tiny
            config.lmHeadFormat = lmHead
            config.kvCacheCapacity = cachePositions
            model = try BitNetModel.random(config: config, seed: seed, backend: backend, context: context)
        }
        let buildTime = clock.now - start
        let config = model.config
        let source = modelDirectory ?? (use2B4T ? "preset 2b4t (random weights)" : "preset tiny (random weights)")
        print("model:   \(source): \(config.numHiddenLayers) layers, hidden \(config.hiddenSize), vocab \(config.vocabSize)")
        print(String(format: "         backend %@, %d thread(s), LM head %@, %.1f MB of weights per token, built in %.2f s",
                     backend.name, context.threads, lmHead.rawValue, Double(model.weightBytesPerToken) / 1e6, seconds(buildTime)))

        // The prompt: token ids (a real application would run a tokenizer first).
        let prompt = promptIDs.isEmpty ? [config.bosTokenId, 10, 20, 30, 40, 50, 60, 70] : promptIDs
        print("prompt:  \(prompt)")

        // MARK: Generate

        // A random-weight model would stop whenever it happens to produce the EOS id: ignore it there.
        let stopTokens: Set<Int>? = modelDirectory == nil ? [] : nil       // nil: the config's EOS ids

        /// Generates with `parameters`, printing each token as it arrives, then the speeds.
        func run(_ title: String, _ parameters: GenerationParameters, model: BitNetModel, prompt: [Int]) throws -> [Int] {
            print("\n\(title)")
            var line = "  tokens:"
            let result = try model.generate(prompt: prompt, parameters: parameters) { _, token in
                line += " \(token)"           // onToken: called after every new token (return false to stop)
                return true
            }
            print(line + (result.stoppedAtStopToken ? "  (EOS)" : ""))
            print(String(format: "  prefill: %3d tokens  %9.1f tokens/s", result.promptLength, result.prefillTokensPerSecond))
            print(String(format: "  decode:  %3d tokens  %9.1f tokens/s", result.decodeSteps, result.decodeTokensPerSecond))
            return result.tokens
        }

        // Greedy: temperature 0 always takes the most likely token.
        _ = try run("greedy (temperature 0)",
                    GenerationParameters(maxNewTokens: maxNewTokens, temperature: 0, stopTokens: stopTokens), model: model, prompt: prompt)

        // Sampling: softmax(logits / temperature), restricted to the top-k tokens, then to the smallest
        // set reaching probability top-p; the seed makes it reproducible.
        let sampling = GenerationParameters(maxNewTokens: maxNewTokens, temperature: temperature, topK: topK == 0 ? nil : topK,
                                            topP: topP >= 1 ? nil : topP, seed: seed, stopTokens: stopTokens)
        let title = String(format: "sampled (temperature %.2f, top-k %d, top-p %.2f, seed %llu)", temperature, topK, topP, seed)
        let first = try run(title, sampling, model: model, prompt: prompt)
        let again = try run("sampled again with the same seed", sampling, model: model, prompt: prompt)
        print("\nsame seed, same tokens: \(first == again ? "yes" : "NO")")
        if first != again { Foundation.exit(1) }
        #if DEBUG
        print("(debug build: run with `swift run -c release Generation ...` for meaningful speeds)")
        #endif
    }
}

/// `--lm-head float32|int8|int4`.
extension LMHeadFormat: ExpressibleByArgument {}

Generation.main()
