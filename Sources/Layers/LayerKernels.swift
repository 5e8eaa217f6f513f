import Backends
import CKernels
import TensorCore

/// The C implementations of the layers' vector loops (the blocked attention kernel, the Float32
/// dot product, per-row quantization, dequantization, RMSNorm and gating), chosen at run time like every kernel family (`KernelVariant`).
public enum VectorKernelVariant: String, KernelVariant {
    /// Plain C: any CPU.
    case portable
    /// AVX2 + FMA.
    case avx2
    /// AVX-512 F/BW.
    case avx512

    /// Whether a CPU with `features` can execute this variant.
    public func isSupported(by features: CPUFeatures) -> Bool {
        switch self {
        case .portable: return true
        case .avx2: return features.avx2 && features.fma
        case .avx512: return features.avx512f && features.avx512bw && features.avx2 && features.fma
        }
    }

    public typealias Dot = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, Int64) -> Float
    public typealias QuantizeRow = @convention(c) (UnsafePointer<Float>?, Int64, UnsafeMutablePointer<Int8>?) -> Float

    /// Float32 dot product.
    public var dot: Dot {
        switch self {
        case .portable: return tk_dot_f32_portable
        case .avx2: return tk_dot_f32_avx2
        case .avx512: return tk_dot_f32_avx512
        }
    }

    public typealias Attention = @convention(c) (
        UnsafePointer<Float>?, Int64, UnsafeMutablePointer<Float>?, Int64, Int64, Int64, Int64,
        UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Float, UnsafeMutablePointer<Float>?) -> Void
    public typealias Exp = @convention(c) (UnsafePointer<Float>?, UnsafeMutablePointer<Float>?, Int64) -> Void

    /// Causal attention of one KV head for a block of query rows (`tk_attention_f32_*`: queries
    /// and their token stride, outputs and their token stride, tokens, query heads per KV head,
    /// head dimension, keys, values, positions visible to the first token, scale, scratch of
    /// `tk_attention_scratch_floats` Floats). A row's result does not depend on the other rows.
    public var attention: Attention {
        switch self {
        case .portable: return tk_attention_f32_portable
        case .avx2: return tk_attention_f32_avx2
        case .avx512: return tk_attention_f32_avx512
        }
    }

    /// The softmax's exponential over a vector (`y[i] = exp(x[i])` for `x[i] <= 0`; exp(-inf) = 0).
    public var exp: Exp {
        switch self {
        case .portable: return tk_exp_f32_portable
        case .avx2: return tk_exp_f32_avx2
        case .avx512: return tk_exp_f32_avx512
        }
    }

    /// Per-row absmax Int8 quantization (bit-identical to `ActivationQuantizer.quantize`).
    public var quantizeRow: QuantizeRow {
        switch self {
        case .portable: return tk_quantize_row_portable
        case .avx2: return tk_quantize_row_avx2
        case .avx512: return tk_quantize_row_avx512
        }
    }

    public typealias DequantizeRow = @convention(c) (UnsafePointer<Int32>?, Int64, Float, UnsafeMutablePointer<Float>?) -> Void
    public typealias RMSNormRow = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Float, UnsafeMutablePointer<Float>?) -> Void
    public typealias GateRow = @convention(c) (UnsafeMutablePointer<Float>?, UnsafePointer<Float>?, Int64) -> Void

    /// One row of a product's Int32 results to Float: `y[i] = Float(acc[i]) · factor`
    /// (bit-identical to `ActivationQuantizer.dequantize` in every variant).
    public var dequantizeRow: DequantizeRow {
        switch self {
        case .portable: return tk_dequantize_row_portable
        case .avx2: return tk_dequantize_row_avx2
        case .avx512: return tk_dequantize_row_avx512
        }
    }

    /// RMSNorm of one row (`x`, `gamma`, width, ε, `y`; `y` may be `x`): the sum of squares in
    /// the variant's fixed lane order, then `(x · inv) · gamma`.
    public var rmsNormRow: RMSNormRow {
        switch self {
        case .portable: return tk_rmsnorm_row_portable
        case .avx2: return tk_rmsnorm_row_avx2
        case .avx512: return tk_rmsnorm_row_avx512
        }
    }

    public typealias GateDequantizeRow = @convention(c) (UnsafePointer<Int32>?, UnsafePointer<Int32>?, Int64, Float, Float,
                                                         UnsafeMutablePointer<Float>?) -> Void

    /// The gate and up products' dequantization fused with BitNet's gate, one row:
    /// `out = max(Float(accG) · fg, 0)² · (Float(accU) · fu)`, the same bits as
    /// ``dequantizeRow`` on both rows followed by ``relu2Gate`` (every variant).
    public var relu2GateDequantize: GateDequantizeRow {
        switch self {
        case .portable: return tk_relu2_gate_dequantize_portable
        case .avx2: return tk_relu2_gate_dequantize_avx2
        case .avx512: return tk_relu2_gate_dequantize_avx512
        }
    }

    /// BitNet's gate in place, `g = max(g, 0)² · u` (bit-identical in every variant).
    public var relu2Gate: GateRow {
        switch self {
        case .portable: return tk_relu2_gate_portable
        case .avx2: return tk_relu2_gate_avx2
        case .avx512: return tk_relu2_gate_avx512
        }
    }

    /// The C signature of ``relu2GateNormQuantize``: gate and up Int32 rows, width, their two
    /// dequantization factors, the norm's gains and ε, a row of Float scratch, the Int8 output;
    /// returns the activation scale.
    public typealias GateNormQuantizeRow = @convention(c) (UnsafePointer<Int32>?, UnsafePointer<Int32>?, Int64, Float, Float,
                                                           UnsafePointer<Float>?, Float, UnsafeMutablePointer<Float>?,
                                                           UnsafeMutablePointer<Int8>?) -> Float

    /// BitNet's feed-forward between its products, one row: ``relu2GateDequantize`` into the
    /// scratch row, ``rmsNormRow`` in place on it (the sub-norm), ``quantizeRow`` of it into the
    /// Int8 output; returns that row's activation scale (NaN, with zeros, for a non-finite row).
    /// Each variant calls its own three row functions in sequence: the same bits as the three
    /// passes, with the intermediate row in a reusable (cache-resident) scratch row instead of
    /// `rows × width` buffers.
    public var relu2GateNormQuantize: GateNormQuantizeRow {
        switch self {
        case .portable: return tk_relu2_gate_rmsnorm_quantize_row_portable
        case .avx2: return tk_relu2_gate_rmsnorm_quantize_row_avx2
        case .avx512: return tk_relu2_gate_rmsnorm_quantize_row_avx512
        }
    }

    /// The C signature of ``rmsNormQuantize``: input row, gains, width, ε, a Float row for the
    /// normalized values (may be the input), the Int8 output; returns the activation scale.
    public typealias NormQuantizeRow = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, Int64, Float,
                                                       UnsafeMutablePointer<Float>?, UnsafeMutablePointer<Int8>?) -> Float

    /// RMSNorm then Int8 quantization of one row: ``rmsNormRow`` into the Float row (which may be
    /// the input), then ``quantizeRow`` of it; returns the activation scale (NaN, with zeros, for
    /// a non-finite row). The same bits as the two passes in every variant.
    public var rmsNormQuantize: NormQuantizeRow {
        switch self {
        case .portable: return tk_rmsnorm_quantize_row_portable
        case .avx2: return tk_rmsnorm_quantize_row_avx2
        case .avx512: return tk_rmsnorm_quantize_row_avx512
        }
    }
}

/// The C implementations of the quantized LM head GEMVs (exact Int8, 4-bit grouped).
public enum GemvKernelVariant: String, KernelVariant {
    /// Plain C: any CPU.
    case portable
    /// AVX2 (+ FMA): `vpmaddubsw`.
    case avx2
    /// AVX-VNNI (256-bit `vpdpbusd`).
    case avxvnni
    /// AVX-512 VNNI (512-bit `vpdpbusd`; the GEMV reads one row at a time, the GEMM 4 rows × 4 hidden states).
    case avx512vnni

    /// Whether a CPU with `features` can execute this variant.
    public func isSupported(by features: CPUFeatures) -> Bool {
        switch self {
        case .portable: return true
        case .avx2: return features.avx2 && features.fma
        case .avxvnni: return features.avxvnni && features.avx2 && features.fma
        case .avx512vnni: return features.avx512vnni && features.avx512f && features.avx512vl && features.avx2 && features.fma
        }
    }

    public typealias GemvI8 = @convention(c) (UnsafePointer<Int8>?, UnsafePointer<Int8>?, Int64, Int64, UnsafeMutablePointer<Int32>?) -> Void
    public typealias GemvQ4 = @convention(c) (UnsafePointer<UInt8>?, UnsafePointer<Float>?, UnsafePointer<Int8>?, Int64, Int64, UnsafeMutablePointer<Float>?) -> Void

    /// The exact Int8 × Int8 → Int32 GEMV of the Int8 LM head.
    public var gemvI8: GemvI8 {
        switch self {
        case .portable: return tk_gemv_i8_portable
        case .avx2: return tk_gemv_i8_avx2
        case .avxvnni: return tk_gemv_i8_avxvnni
        case .avx512vnni: return tk_gemv_i8_avx512vnni
        }
    }

    public typealias GemmI8 = @convention(c) (UnsafePointer<Int8>?, Int64, Int64, UnsafePointer<Int8>?, Int64, UnsafeMutablePointer<Int32>?, Int64) -> Void

    /// The exact Int8 GEMV for several activation rows at once (the Int8 LM head of a batch):
    /// the same integers as ``gemvI8`` row by row, the weights read once.
    public var gemmI8: GemmI8 {
        switch self {
        case .portable: return tk_gemm_i8_portable
        case .avx2: return tk_gemm_i8_avx2
        case .avxvnni: return tk_gemm_i8_avxvnni
        case .avx512vnni: return tk_gemm_i8_avx512vnni
        }
    }

    /// The 4-bit grouped GEMV of the `int4` LM head.
    public var gemvQ4: GemvQ4 {
        switch self {
        case .portable: return tk_gemv_q4_portable
        case .avx2: return tk_gemv_q4_avx2
        case .avxvnni: return tk_gemv_q4_avxvnni
        case .avx512vnni: return tk_gemv_q4_avx512vnni
        }
    }
}

/// The C inner loops the layers use, bound once to the best variant this CPU runs.
///
/// The choice is made once per process rather than per call: the same process always uses the
/// same variant, so every product sums in one fixed order and results do not depend on batching
/// or on the backend of the ternary layers.
enum LayerKernels {
    static let vector = VectorKernelVariant.best
    static let gemv = GemvKernelVariant.best
    static let dot = vector.dot
    static let attention = vector.attention
    static let quantizeRow = vector.quantizeRow
    static let dequantizeRow = vector.dequantizeRow
    static let rmsNormRow = vector.rmsNormRow
    static let relu2Gate = vector.relu2Gate
    static let relu2GateDequantize = vector.relu2GateDequantize
    static let relu2GateNormQuantize = vector.relu2GateNormQuantize
    static let rmsNormQuantize = vector.rmsNormQuantize

    /// `ActivationQuantizer.quantize` with the C row loop, rows split over `threads` threads
    /// (a 128-token prefill quantizes ~56 M activations; the Swift loop spends ~0.3 s on it).
    static func quantize(_ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int,
                         into values: UnsafeMutableBufferPointer<Int8>, scales: UnsafeMutableBufferPointer<Float>, threads: Int) {
        precondition(x.count >= rows * columns && values.count >= rows * columns && scales.count >= rows)
        let xp = SendableConstPointer(x), vp = SendablePointer(values), sp = SendablePointer(scales)
        let f = quantizeRow
        Parallel.forEachChunk(count: rows, threads: threads, costPerItem: columns, minimumWork: 1 << 15) { range in
            for r in range { sp.base[r] = f(xp.base + r * columns, Int64(columns), vp.base + r * columns) }
        }
    }

    /// `ActivationQuantizer.dequantize` (the same bits) with the C row loop, rows split over
    /// `threads` threads.
    static func dequantize(_ acc: UnsafeBufferPointer<Int32>, rows: Int, columns: Int, activationScales: UnsafeBufferPointer<Float>,
                           weightScale: Float, threads: Int, into y: UnsafeMutableBufferPointer<Float>) {
        precondition(acc.count >= rows * columns && y.count >= rows * columns && activationScales.count >= rows)
        let a = SendableConstPointer(acc), s = SendableConstPointer(activationScales), yp = SendablePointer(y)
        let f = dequantizeRow
        Parallel.forEachChunk(count: rows, threads: threads, costPerItem: columns, minimumWork: 1 << 16) { range in
            for r in range { f(a.base + r * columns, Int64(columns), weightScale / s.base[r], yp.base + r * columns) }
        }
    }
}
