import Backends
import CKernels
import TensorCore

/// The C inner loops the layers use (attention dot / axpy, the LM head GEMVs), bound once to the
/// best variant this CPU runs.
///
/// The choice is made here, from `CPUFeatures.detected`, rather than inside the C: the same
/// process always uses the same variant, so every product sums in one fixed order and results do
/// not depend on batching or on the backend of the ternary layers.
enum LayerKernels {
    typealias Dot = @convention(c) (UnsafePointer<Float>?, UnsafePointer<Float>?, Int64) -> Float
    typealias Axpy = @convention(c) (UnsafeMutablePointer<Float>?, Float, UnsafePointer<Float>?, Int64) -> Void
    typealias GemvI8 = @convention(c) (UnsafePointer<Int8>?, UnsafePointer<Int8>?, Int64, Int64, UnsafeMutablePointer<Int32>?) -> Void

    /// Float32 dot product.
    static let dot: Dot = {
        let f = CPUFeatures.detected
        if f.avx512f { return tk_dot_f32_avx512 }
        if f.avx2 && f.fma { return tk_dot_f32_avx2 }
        return tk_dot_f32_portable
    }()

    /// `y += alpha · x` in Float32.
    static let axpy: Axpy = {
        let f = CPUFeatures.detected
        if f.avx512f { return tk_axpy_f32_avx512 }
        if f.avx2 && f.fma { return tk_axpy_f32_avx2 }
        return tk_axpy_f32_portable
    }()

    /// The exact Int8 × Int8 → Int32 GEMV of the Int8 LM head, and the name of the variant.
    static let gemvI8: (function: GemvI8, variant: String) = {
        let f = CPUFeatures.detected
        if f.avx512vnni && f.avx512vl && f.avx2 { return (tk_gemv_i8_avx512vnni, "avx512vnni") }
        if f.avxvnni && f.avx2 { return (tk_gemv_i8_avxvnni, "avxvnni") }
        if f.avx2 { return (tk_gemv_i8_avx2, "avx2") }
        return (tk_gemv_i8_portable, "portable")
    }()

    typealias GemvQ4 = @convention(c) (UnsafePointer<UInt8>?, UnsafePointer<Float>?, UnsafePointer<Int8>?, Int64, Int64, UnsafeMutablePointer<Float>?) -> Void

    /// The 4-bit grouped GEMV of the `int4` LM head, and the name of the variant.
    static let gemvQ4: (function: GemvQ4, variant: String) = {
        let f = CPUFeatures.detected
        if f.avx512vnni && f.avx512vl && f.avx2 && f.fma { return (tk_gemv_q4_avx512vnni, "avx512vnni") }
        if f.avxvnni && f.avx2 && f.fma { return (tk_gemv_q4_avxvnni, "avxvnni") }
        if f.avx2 && f.fma { return (tk_gemv_q4_avx2, "avx2") }
        return (tk_gemv_q4_portable, "portable")
    }()

    /// Every 4-bit GEMV variant this CPU can run, by name (for tests).
    static var runnableGemvQ4: [(name: String, function: GemvQ4)] {
        let f = CPUFeatures.detected
        var out: [(String, GemvQ4)] = [("portable", tk_gemv_q4_portable)]
        if f.avx2 && f.fma { out.append(("avx2", tk_gemv_q4_avx2)) }
        if f.avxvnni && f.avx2 && f.fma { out.append(("avxvnni", tk_gemv_q4_avxvnni)) }
        if f.avx512vnni && f.avx512vl && f.avx2 && f.fma { out.append(("avx512vnni", tk_gemv_q4_avx512vnni)) }
        return out
    }

    typealias QuantizeRow = @convention(c) (UnsafePointer<Float>?, Int64, UnsafeMutablePointer<Int8>?) -> Float

    /// Per-row absmax Int8 quantization (bit-identical to `ActivationQuantizer.quantize`).
    static let quantizeRow: QuantizeRow = {
        let f = CPUFeatures.detected
        if f.avx512f && f.avx512bw { return tk_quantize_row_avx512 }
        if f.avx2 && f.fma { return tk_quantize_row_avx2 }
        return tk_quantize_row_portable
    }()

    /// Every quantization variant this CPU can run, by name (for tests).
    static var runnableQuantizeRow: [(name: String, function: QuantizeRow)] {
        let f = CPUFeatures.detected
        var out: [(String, QuantizeRow)] = [("portable", tk_quantize_row_portable)]
        if f.avx2 && f.fma { out.append(("avx2", tk_quantize_row_avx2)) }
        if f.avx512f && f.avx512bw { out.append(("avx512", tk_quantize_row_avx512)) }
        return out
    }

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

    /// `ActivationQuantizer.dequantize`, rows split over `threads` threads.
    static func dequantize(_ acc: UnsafeBufferPointer<Int32>, rows: Int, columns: Int, activationScales: UnsafeBufferPointer<Float>,
                           weightScale: Float, threads: Int, into y: UnsafeMutableBufferPointer<Float>) {
        precondition(acc.count >= rows * columns && y.count >= rows * columns && activationScales.count >= rows)
        let a = SendableConstPointer(acc), s = SendableConstPointer(activationScales), yp = SendablePointer(y)
        Parallel.forEachChunk(count: rows, threads: threads, costPerItem: columns, minimumWork: 1 << 16) { range in
            ActivationQuantizer.dequantize(
                UnsafeBufferPointer(start: a.base + range.lowerBound * columns, count: range.count * columns),
                rows: range.count, columns: columns,
                activationScales: UnsafeBufferPointer(start: s.base + range.lowerBound, count: range.count),
                weightScale: weightScale,
                into: UnsafeMutableBufferPointer(start: yp.base + range.lowerBound * columns, count: range.count * columns))
        }
    }

    /// Every Int8 GEMV variant this CPU can run, by name (for tests against the portable one).
    static var runnableGemvI8: [(name: String, function: GemvI8)] {
        let f = CPUFeatures.detected
        var out: [(String, GemvI8)] = [("portable", tk_gemv_i8_portable)]
        if f.avx2 { out.append(("avx2", tk_gemv_i8_avx2)) }
        if f.avxvnni && f.avx2 { out.append(("avxvnni", tk_gemv_i8_avxvnni)) }
        if f.avx512vnni && f.avx512vl && f.avx2 { out.append(("avx512vnni", tk_gemv_i8_avx512vnni)) }
        return out
    }
}
