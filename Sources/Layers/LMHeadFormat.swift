/// How the LM head keeps its (non-ternary) weight.
///
/// - `float32`: the embedding table itself (tied), the exact reference: 4 bytes per weight,
///   1.31 GB read per token for 2B4T, which alone caps decoding near 19 tokens/s at 25 GB/s.
/// - `int8`: each row quantized to Int8 with its own absmax scale (1 byte per weight, a quarter
///   of the traffic), the activations quantized per token like a BitLinear input, and an exact
///   Int8 GEMV (AVX-512 VNNI / AVX-VNNI / AVX2 / portable). Logits differ from `float32` by the
///   two quantizations; `docs/performance/layers.md` measures by how much.
/// - `int4`: groups of 32 weights in 4 bits (values −7…7) with a Float32 scale per group
///   (5 bits per weight, 0.21 GB for 2B4T), Int8 activations, exact integer group sums; the
///   fastest and least exact. Needs `hidden_size` to be a multiple of 32.
public enum LMHeadFormat: String, Codable, Sendable, CaseIterable {
    /// The Float32 weight (the embedding table itself when tied): exact, and the most bytes per token.
    case float32
    /// Per-row Int8 weights and Int8 activations: a quarter of `float32`'s bytes, logits within the two quantizations' error.
    case int8
    /// 4-bit groups of 32 with a scale each: the fewest bytes and the least exact; needs a hidden size that is a multiple of 32.
    case int4
}
