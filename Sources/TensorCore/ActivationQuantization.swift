/// Per-token ("absmax") 8-bit activation quantization, as in BitNet b1.58:
/// `s = 127 / max(max|x|, 1e-5)` over each row, `x_q = clip(round(x · s), -128, 127)` with
/// round-half-to-even (PyTorch's `round`).
///
/// A row holding a non-finite value (NaN or ±∞) gets all-zero `x_q` and the scale `NaN`, so that
/// `dequantize` turns its outputs into NaN: non-finite inputs give non-finite outputs, never finite
/// garbage.
public enum ActivationQuantizer {
    /// The floor on `max|x|` that keeps an all-zero row from dividing by zero.
    public static let minimumAbsMax: Float = 1e-5

    /// Quantizes `rows × columns` Floats (row-major) into `values` and writes one scale per row
    /// into `scales` (`s = 127 / max|x|`; the dequantized value is `x_q / s`).
    public static func quantize(
        _ x: UnsafeBufferPointer<Float>, rows: Int, columns: Int,
        into values: UnsafeMutableBufferPointer<Int8>, scales: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(x.count >= rows * columns && values.count >= rows * columns && scales.count >= rows,
                     "quantize: buffers smaller than \(rows)×\(columns)")
        for r in 0..<rows {
            let base = r &* columns
            var amax: Float = 0
            var finite = true
            for c in 0..<columns {
                let v = x[base &+ c]
                if !v.isFinite { finite = false }
                amax = max(amax, abs(v))
            }
            guard finite else {
                for c in 0..<columns { values[base &+ c] = 0 }
                scales[r] = .nan
                continue
            }
            let s = 127 / max(amax, minimumAbsMax)
            scales[r] = s
            for c in 0..<columns {
                let q = (x[base &+ c] * s).rounded(.toNearestOrEven)
                values[base &+ c] = Int8(min(max(q, -128), 127))
            }
        }
    }

    /// Convenience: quantizes a Float array of `rows × columns` and returns values and scales.
    public static func quantize(_ x: [Float], rows: Int, columns: Int) throws -> (values: [Int8], scales: [Float]) {
        guard rows >= 0, columns >= 0 else {
            throw TernaryKitError.invalidShape("quantize: negative shape \(rows)×\(columns)")
        }
        guard x.count == rows * columns else {
            throw TernaryKitError.lengthMismatch(expected: rows * columns, actual: x.count, what: "activations")
        }
        var values = [Int8](repeating: 0, count: x.count)
        var scales = [Float](repeating: 0, count: rows)
        x.withUnsafeBufferPointer { xp in
            values.withUnsafeMutableBufferPointer { vp in
                scales.withUnsafeMutableBufferPointer { sp in
                    quantize(xp, rows: rows, columns: columns, into: vp, scales: sp)
                }
            }
        }
        return (values, scales)
    }

    /// Turns the exact Int32 products of quantized activations back into Floats:
    /// `y[r, o] = acc[r, o] · weightScale / activationScales[r]` (one multiply per output).
    public static func dequantize(
        _ acc: UnsafeBufferPointer<Int32>, rows: Int, columns: Int,
        activationScales: UnsafeBufferPointer<Float>, weightScale: Float,
        into y: UnsafeMutableBufferPointer<Float>
    ) {
        precondition(acc.count >= rows * columns && y.count >= rows * columns && activationScales.count >= rows,
                     "dequantize: buffers smaller than \(rows)×\(columns)")
        for r in 0..<rows {
            let factor = weightScale / activationScales[r]
            let base = r &* columns
            for c in 0..<columns { y[base &+ c] = Float(acc[base &+ c]) * factor }
        }
    }
}
