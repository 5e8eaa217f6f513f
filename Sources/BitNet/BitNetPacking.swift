import SafeTensors
import TensorCore

/// The four-plane 2-bit packing of ternary weights used by Hugging Face BitNet checkpoints.
///
/// A weight `W_t` of shape `[out, in]` is stored as `U8 [out/4, in]`. With `R = out/4`, bits
/// `2i..2i+1` (least significant pair first) of `packed[r, c]` hold `W_t[i·R + r, c]` as
/// `code = value + 1` (0 → -1, 1 → 0, 2 → +1); code 3 has no meaning.
///
/// Source: `pack_weights` / `unpack_weights` in `transformers/integrations/bitnet.py`
/// (`VALUES_PER_ITEM = 4`; `unpacked[i·R : (i+1)·R] = (packed >> 2i) & 3`, then `- 1`). Note the
/// planes run along the *output* dimension in blocks of `R` rows, not over adjacent rows: row `o`
/// of the weight lives in packed row `o mod R`, bit pair `o / R`.
public enum BitNetPacking {
    /// Unpacks `U8 [outFeatures/4, inFeatures]` bytes into a `TernaryMatrix` with `scale`.
    ///
    /// `name` (the tensor's name) appears in every error so a loader can report which tensor of
    /// a checkpoint is bad.
    /// - Throws: `.invalidShape` when `outFeatures` is not a positive multiple of 4 or
    ///   `inFeatures` is not positive; `.lengthMismatch` when `packed.count ≠ outFeatures/4 ·
    ///   inFeatures`; `.invalidValue` naming the tensor, packed position, plane and weight row for
    ///   a 2-bit code of 3; whatever `TernaryMatrix` throws for its shape or scale.
    public static func unpack(_ packed: UnsafeRawBufferPointer, outFeatures: Int, inFeatures: Int,
                              scale: Float = 1, name: String = "weight") throws -> TernaryMatrix {
        try checkShape(outFeatures: outFeatures, inFeatures: inFeatures, name: name)
        try TernaryMatrix.checkShape(outFeatures: outFeatures, inFeatures: inFeatures)
        guard scale.isFinite else { throw TernaryKitError.invalidValue("tensor \"\(name)\": scale \(scale) is not finite") }
        let rows = outFeatures / 4
        let expected = rows * inFeatures
        guard packed.count == expected else {
            throw TernaryKitError.lengthMismatch(expected: expected, actual: packed.count,
                                                 what: "packed bytes of \"\(name)\" ([\(rows), \(inFeatures)] U8 for a \(outFeatures)×\(inFeatures) weight)")
        }
        // Any byte with a 2-bit field equal to 3 is invalid: (b & (b >> 1) & 0x55) != 0; a field
        // equal to 0 (the code of -1) has neither bit set. Both are OR-ed over 16 bytes at a time
        // without branches; the position of a bad byte is searched only when there is one.
        let base = packed.baseAddress!
        var badBits = SIMD16<UInt8>(), minusOneBits = SIMD16<UInt8>()
        var k = 0
        while k &+ 16 <= expected {
            let b = (base + k).loadUnaligned(as: SIMD16<UInt8>.self)
            let shifted: SIMD16<UInt8> = b &>> 1
            badBits |= b & shifted
            let n: SIMD16<UInt8> = ~b
            let nShifted: SIMD16<UInt8> = n &>> 1
            minusOneBits |= n & nShifted
            k &+= 16
        }
        var badTail: UInt8 = 0, minusOneTail: UInt8 = 0
        while k < expected {
            let b = packed[k]
            badTail |= b & (b >> 1)
            minusOneTail |= ~b & (~b >> 1)
            k &+= 1
        }
        let mask = SIMD16<UInt8>(repeating: 0x55), zero = SIMD16<UInt8>()
        let hasMinusOne = (minusOneBits & mask) != zero || minusOneTail & 0x55 != 0
        if (badBits & mask) != zero || badTail & 0x55 != 0 {
            let k = (0..<expected).first { packed[$0] & (packed[$0] >> 1) & 0x55 != 0 }!
            let b = packed[k]
            let plane = (0..<4).first { (b >> (2 * $0)) & 3 == 3 }!
            let r = k / inFeatures, c = k % inFeatures
            throw TernaryKitError.invalidValue(
                "tensor \"\(name)\": packed value 3 (no ternary meaning) at packed [\(r), \(c)] bits \(2 * plane)–\(2 * plane + 1) "
                + "(weight row \(plane * rows + r), column \(c))")
        }
        // One pass over the packed bytes: each packed row feeds the same row of all four planes,
        // 16 bytes at a time (`code − 1` wraps 0 to 255, the bit pattern of -1).
        let values = [Int8](unsafeUninitializedCapacity: outFeatures * inFeatures) { out, initialized in
            let o = UnsafeMutableRawPointer(out.baseAddress!)
            let planeBytes = rows &* inFeatures
            for r in 0..<rows {
                let src = base + r &* inFeatures
                let dst = o + r &* inFeatures
                var c = 0
                while c &+ 16 <= inFeatures {
                    let v = (src + c).loadUnaligned(as: SIMD16<UInt8>.self)
                    let three = SIMD16<UInt8>(repeating: 3), one = SIMD16<UInt8>(repeating: 1)
                    let p0: SIMD16<UInt8> = (v & three) &- one
                    let p1: SIMD16<UInt8> = ((v &>> 2) & three) &- one
                    let p2: SIMD16<UInt8> = ((v &>> 4) & three) &- one
                    let p3: SIMD16<UInt8> = (v &>> 6) &- one
                    let d = dst + c
                    d.storeBytes(of: p0, as: SIMD16<UInt8>.self)
                    (d + planeBytes).storeBytes(of: p1, as: SIMD16<UInt8>.self)
                    (d + 2 &* planeBytes).storeBytes(of: p2, as: SIMD16<UInt8>.self)
                    (d + 3 &* planeBytes).storeBytes(of: p3, as: SIMD16<UInt8>.self)
                    c &+= 16
                }
                while c < inFeatures {
                    let v = src.load(fromByteOffset: c, as: UInt8.self)
                    for plane in 0..<4 {
                        let shift = UInt8(truncatingIfNeeded: 2 &* plane)
                        let code: UInt8 = (v &>> shift) & 3
                        let offset: Int = plane &* planeBytes &+ c
                        (dst + offset).storeBytes(of: code &- 1, as: UInt8.self)
                    }
                    c &+= 1
                }
            }
            initialized = outFeatures * inFeatures
        }
        return TernaryMatrix(unchecked: outFeatures, inFeatures, values, scale, isBinary: !hasMinusOne)
    }

    /// Convenience for `[UInt8]` input.
    public static func unpack(_ packed: [UInt8], outFeatures: Int, inFeatures: Int,
                              scale: Float = 1, name: String = "weight") throws -> TernaryMatrix {
        try packed.withUnsafeBytes { try unpack($0, outFeatures: outFeatures, inFeatures: inFeatures, scale: scale, name: name) }
    }

    /// Packs a ternary matrix into `U8 [outFeatures/4, inFeatures]` bytes (row-major); the scale
    /// is not stored here (a checkpoint stores it separately as `weight_scale = 1/scale`).
    /// - Throws: `.invalidShape` when `outFeatures` is not a multiple of 4.
    public static func pack(_ matrix: TernaryMatrix, name: String = "weight") throws -> [UInt8] {
        try checkShape(outFeatures: matrix.outFeatures, inFeatures: matrix.inFeatures, name: name)
        let rows = matrix.outFeatures / 4, cols = matrix.inFeatures
        return matrix.values.withUnsafeBufferPointer { w in
            [UInt8](unsafeUninitializedCapacity: rows * cols) { out, initialized in
                for k in 0..<(rows * cols) { out[k] = 0 }
                for plane in 0..<4 {
                    let shift = UInt8(2 * plane)
                    for r in 0..<rows {
                        let src = (plane &* rows &+ r) &* cols
                        let dst = r &* cols
                        for c in 0..<cols {
                            out[dst &+ c] |= UInt8(truncatingIfNeeded: w[src &+ c] &+ 1) << shift
                        }
                    }
                }
                initialized = rows * cols
            }
        }
    }

    /// The packed shape `[outFeatures/4, inFeatures]` of a weight, after the same checks as `pack`.
    public static func packedShape(outFeatures: Int, inFeatures: Int, name: String = "weight") throws -> [Int] {
        try checkShape(outFeatures: outFeatures, inFeatures: inFeatures, name: name)
        return [outFeatures / 4, inFeatures]
    }

    static func checkShape(outFeatures: Int, inFeatures: Int, name: String) throws {
        guard outFeatures > 0, inFeatures > 0 else {
            throw TernaryKitError.invalidShape("tensor \"\(name)\": a packed weight needs positive dimensions, got \(outFeatures)×\(inFeatures)")
        }
        guard outFeatures % 4 == 0 else {
            throw TernaryKitError.invalidShape("tensor \"\(name)\": out features \(outFeatures) is not a multiple of 4, as the four-plane packing needs")
        }
    }
}

extension SafeTensorsFile {
    /// Unpacks a Hugging Face BitNet projection weight stored as `U8 [outFeatures/4, inFeatures]`.
    ///
    /// `scale` is the γ of the result (for a checkpoint with the default `linear_class:
    /// "bitlinear"`, `γ = 1 / weight_scale`; that mapping is the loader's job).
    /// - Throws: `TernaryKitError.file` naming this file and the tensor for a missing tensor, a
    ///   dtype other than U8, a shape other than `[outFeatures/4, inFeatures]`, or a code of 3.
    public func bitNetTernaryMatrix(_ name: String, outFeatures: Int, inFeatures: Int, scale: Float = 1) throws -> TernaryMatrix {
        try requireDType(name, .u8)
        let expectedShape: [Int]
        do {
            expectedShape = try BitNetPacking.packedShape(outFeatures: outFeatures, inFeatures: inFeatures, name: name)
        } catch {
            throw TernaryKitError.file(path: path, problem: "\(error)")
        }
        try requireShape(name, expectedShape)
        do {
            return try withRawBytes(name) {
                try BitNetPacking.unpack($0, outFeatures: outFeatures, inFeatures: inFeatures, scale: scale, name: name)
            }
        } catch let error as TernaryKitError {
            if case .file = error { throw error }
            throw TernaryKitError.file(path: path, problem: "\(error)")
        }
    }
}

extension BitNetPacking {
    /// A Float32 `weight_scale` that reloads to exactly `gamma`, or nil when none exists.
    ///
    /// Hugging Face BitNet checkpoints store `weight_scale = 1/γ` and the layer divides by it (see
    /// `transformers/integrations/bitnet.py`, `BitLinear.post_quant_process`); a loader recovers
    /// `γ = 1 / weight_scale` (`gamma(fromWeightScale:)`). In Float32 `1/(1/γ) ≠ γ` for some γ,
    /// and for γ whose significand exceeds about √2 some values are the reciprocal of no Float at
    /// all (reciprocals of adjacent Floats there are more than one ulp apart). This searches `1/γ`
    /// and its nearest neighbours for a value whose reciprocal is exactly `gamma`.
    ///
    /// Every γ that came from a stored weight_scale (`γ = 1/w`) has one, so a model loaded from a
    /// checkpoint re-exports bit-identically; a model with arbitrary γ (a random preset) should pick
    /// its γ as `1/w` for a representable `w` (e.g. a BF16 value) if its export must reload to
    /// bit-identical logits.
    public static func exactWeightScale(forGamma gamma: Float) -> Float? {
        let w = 1 / gamma
        guard w.isFinite, w != 0, gamma.isFinite else { return nil }
        var up = w, down = w
        if 1 / w == gamma { return w }
        for _ in 0..<4 {
            up = up.nextUp
            if 1 / up == gamma { return up }
            down = down.nextDown
            if 1 / down == gamma { return down }
        }
        return nil
    }

    /// γ for a stored `weight_scale` (its reciprocal; the layer then multiplies by γ where the
    /// `transformers` layer divides by `weight_scale`).
    public static func gamma(fromWeightScale weightScale: Float) -> Float { 1 / weightScale }
}
