/// The element types of a safetensors file, spelled as in its header (`"BF16"`, `"U8"`, ...).
///
/// TernaryKit reads and writes the integer and floating-point types that BitNet checkpoints and
/// ordinary PyTorch exports use. Other names in a header (`F8_E4M3`, `C64`, ...) are refused with
/// an error naming the tensor, rather than guessed at.
public enum SafeTensorsDType: String, Sendable, CaseIterable, Equatable, Hashable {
    /// IEEE double; read as Float32 with rounding.
    case f64 = "F64"
    /// IEEE single: read exactly; what TernaryKit writes for Float values that BF16 cannot hold exactly.
    case f32 = "F32"
    /// IEEE half: read as Float32 exactly.
    case f16 = "F16"
    /// bfloat16 (the top 16 bits of a Float32): BitNet's released embedding, norm and scale tensors; read exactly.
    case bf16 = "BF16"
    /// Signed 64-bit integers; Float reads round beyond 2^24.
    case i64 = "I64"
    /// Signed 32-bit integers; Float reads round beyond 2^24.
    case i32 = "I32"
    /// Signed 16-bit integers; read as Float exactly.
    case i16 = "I16"
    /// Signed bytes: Int8 weights or activations, readable as Int8 without conversion.
    case i8 = "I8"
    /// Unsigned 64-bit integers; Float reads round beyond 2^24.
    case u64 = "U64"
    /// Unsigned 32-bit integers; Float reads round beyond 2^24.
    case u32 = "U32"
    /// Unsigned 16-bit integers; read as Float exactly.
    case u16 = "U16"
    /// Unsigned bytes: the packed 2-bit ternary projections of a BitNet checkpoint.
    case u8 = "U8"
    /// One byte per element; as Float, 0 for a zero byte and 1 otherwise.
    case bool = "BOOL"

    /// Bytes per element.
    public var byteSize: Int {
        switch self {
        case .f64, .i64, .u64: return 8
        case .f32, .i32, .u32: return 4
        case .f16, .bf16, .i16, .u16: return 2
        case .i8, .u8, .bool: return 1
        }
    }

    /// True for the types whose values convert to Float without rounding for every element
    /// (used only in documentation and `inspect`).
    public var isFloatingPoint: Bool {
        switch self {
        case .f64, .f32, .f16, .bf16: return true
        default: return false
        }
    }
}

/// Conversions between Float32 and the two 16-bit float formats of checkpoints.
///
/// Both narrowing conversions round to nearest, ties to even, as PyTorch's `.to(torch.bfloat16)`
/// and `.half()` do, so a checkpoint written here holds the same bits PyTorch would write.
public enum HalfPrecision {
    /// Float32 → bfloat16 bits (the top 16 bits of the Float32, rounded to nearest-even).
    /// Infinities stay infinities, values beyond the largest bfloat16 become infinities, and a NaN
    /// stays a (quiet) NaN with its sign.
    @inlinable
    public static func bfloat16Bits(_ value: Float) -> UInt16 {
        let bits = value.bitPattern
        if value.isNaN {
            // Keep the sign and the top payload bits; force the quiet bit so the result is a NaN
            // even when the payload lived only in the low 16 bits.
            return UInt16(truncatingIfNeeded: bits >> 16) | 0x0040
        }
        let lsb = (bits >> 16) & 1
        let rounded = bits &+ 0x7FFF &+ lsb
        return UInt16(truncatingIfNeeded: rounded >> 16)
    }

    /// bfloat16 bits → Float32 (exact).
    @inlinable
    public static func float(bfloat16Bits bits: UInt16) -> Float {
        Float(bitPattern: UInt32(bits) << 16)
    }

    /// Float32 → IEEE binary16 bits, rounded to nearest-even (overflow to ±∞, NaN stays NaN).
    @inlinable
    public static func float16Bits(_ value: Float) -> UInt16 {
        Float16(value).bitPattern
    }

    /// IEEE binary16 bits → Float32 (exact).
    @inlinable
    public static func float(float16Bits bits: UInt16) -> Float {
        Float(Float16(bitPattern: bits))
    }
}
