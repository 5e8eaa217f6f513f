import COpenBLAS
import TensorCore

/// The dense baseline: the ternary weight expanded to Float32, products through OpenBLAS
/// (`cblas_sgemv` for one vector, `cblas_sgemm` for a batch).
///
/// The Int8 path converts the activations to Float, multiplies, and converts back. That is
/// exact while every partial sum is an integer of magnitude ≤ 2^24 (Float's 24-bit
/// significand): |Σ w·x| ≤ 128 · in, so `in ≤ 131072` (`BLASBackend.maxExactInFeatures`).
/// `prepare` throws beyond that.
///
/// OpenBLAS's thread pool is global; every product sets it to the kernel's thread count.
public struct BLASBackend: LinearBackend {
    /// The registry name, as given to `--backends blas` and `BackendRegistry.backend(named:)`.
    public var name: String { "blas" }
    /// The largest `inFeatures` for which Float sums of Int8 × ternary products are exact.
    public static let maxExactInFeatures = (1 << 24) / 128

    /// The BLAS backend (stateless; the thread count comes with each `prepare`).
    public init() {}

    /// Expands the weight to Float32.
    /// - Throws: `.exactnessLimit` when `inFeatures > maxExactInFeatures`.
    public func prepare(_ weights: TernaryMatrix, context: ComputeContext) throws -> any LinearKernel {
        guard weights.inFeatures <= BLASBackend.maxExactInFeatures else {
            throw TernaryKitError.exactnessLimit(
                "blas: inFeatures \(weights.inFeatures) > \(BLASBackend.maxExactInFeatures); Float32 sums of Int8 products are exact only up to 2^24")
        }
        return BLASKernel(weights: weights, context: context)
    }
}

/// The BLAS backend's kernel: the ternary values as Float32 (unscaled; the scale is BLAS's alpha).
public struct BLASKernel: LinearKernel {
    /// Rows of the weight.
    public let outFeatures: Int
    /// Columns of the weight.
    public let inFeatures: Int
    /// The weight scale γ, passed to BLAS as alpha on the Float path.
    public let scale: Float
    /// The thread count OpenBLAS is given for each product.
    public let context: ComputeContext
    /// `W_t` as Float32, row-major `out × in`.
    let dense: [Float]
    /// Always "blas": the name bench tables and layer summaries show.
    public var backendName: String { "blas" }
    /// 4 bytes per weight plus the scale.
    public var storageBytes: Int { dense.count * MemoryLayout<Float>.size + MemoryLayout<Float>.size }

    init(weights: TernaryMatrix, context: ComputeContext) {
        outFeatures = weights.outFeatures
        inFeatures = weights.inFeatures
        scale = weights.scale
        self.context = context
        dense = weights.values.map { Float($0) }
    }

    /// `y = alpha · W · x` for `batch` rows of x, through sgemv or sgemm.
    private func product(_ x: UnsafePointer<Float>, batch: Int, alpha: Float, into y: UnsafeMutablePointer<Float>) {
        openblas_set_num_threads(Int32(context.threads))
        let m = Int32(outFeatures), n = Int32(inFeatures)
        dense.withUnsafeBufferPointer { w in
            if batch == 1 {
                cblas_sgemv(CblasRowMajor, CblasNoTrans, m, n, alpha, w.baseAddress, n, x, 1, 0, y, 1)
            } else {
                // Y (batch × out) = X (batch × in) · Wᵀ (in × out)
                cblas_sgemm(CblasRowMajor, CblasNoTrans, CblasTrans, Int32(batch), m, n,
                            alpha, x, n, w.baseAddress, n, 0, y, m)
            }
        }
    }

    /// Float path: `sgemv` (batch 1) or `sgemm` with alpha = γ.
    public func apply(_ x: UnsafeBufferPointer<Float>, batch: Int, into y: UnsafeMutableBufferPointer<Float>) {
        checkApply(xCount: x.count, yCount: y.count, batch: batch)
        product(x.baseAddress!, batch: batch, alpha: scale, into: y.baseAddress!)
        applyNonFiniteRule(x, batch: batch, into: y)
    }

    /// Int8 path: converts to Float, multiplies with alpha = 1, converts back (exact, see the type).
    ///
    /// The Float activations live in the calling thread's scratch (reused, see `ThreadScratch`);
    /// the Float products are written into `y`'s own bytes (Float and Int32 are both 4 bytes)
    /// and converted in place, so a steady-state call allocates nothing.
    public func apply(_ x: UnsafeBufferPointer<Int8>, batch: Int, into y: UnsafeMutableBufferPointer<Int32>) {
        checkApply(xCount: x.count, yCount: y.count, batch: batch)
        let nx = batch &* inFeatures, ny = batch &* outFeatures
        let xf = ThreadScratch.buffer(.input, of: Float.self, count: nx)
        let xb = x.baseAddress!
        for i in 0..<nx { xf[i] = Float(xb[i]) }
        let yRaw = UnsafeMutableRawPointer(y.baseAddress!)
        y.withMemoryRebound(to: Float.self) { yf in product(xf, batch: batch, alpha: 1, into: yf.baseAddress!) }
        // Exact: every value is an integer of magnitude ≤ 128 · in ≤ 2^24.
        for i in 0..<ny {
            let v = yRaw.load(fromByteOffset: i &* 4, as: Float.self)
            yRaw.storeBytes(of: Int32(v), toByteOffset: i &* 4, as: Int32.self)
        }
    }
}

/// OpenBLAS's build configuration, version and core, for `ternary info`.
public enum OpenBLASInfo {
    /// e.g. "OpenBLAS 0.3.21 DYNAMIC_ARCH NO_AFFINITY Cooperlake MAX_THREADS=64".
    public static var configuration: String { String(cString: openblas_get_config()) }
    /// The kernel family OpenBLAS picked for this CPU, e.g. "Cooperlake".
    public static var coreName: String { String(cString: openblas_get_corename()) }
    /// OpenBLAS's current thread-pool size.
    public static var threads: Int { Int(openblas_get_num_threads()) }
}
