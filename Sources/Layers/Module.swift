import Foundation
import Backends
import TensorCore

/// A node of a model's layer tree, in the manner of mlx-swift's `Module`.
///
/// Each layer is a class that names its children by the key they have in a Hugging Face
/// checkpoint, so that a path built by joining keys with "." (`model.layers.3.mlp.gate_proj`) is
/// both how a user selects layers (`setBackend(_:where:)`) and how a checkpoint loader finds the
/// tensor `model.layers.3.mlp.gate_proj.weight` (`setParameter(_:_:)`).
///
/// Layers are reference types and not thread-safe: one model runs one forward pass at a time
/// (its products use several threads inside).
open class Module {
    /// A layer with no children or parameters; subclasses add both by overriding ``children`` and ``parameterNames``.
    public init() {}

    /// The direct children, each with its key relative to this layer (a key may contain dots,
    /// e.g. `model.embed_tokens` under the root).
    open var children: [(key: String, module: Module)] { [] }

    /// The tensors this layer itself owns, by name (e.g. `[("weight", .ternary(...))]`), with the
    /// kind and shape each must have. Children's parameters are not included.
    ///
    /// This is the single source of truth a checkpoint reader or writer walks
    /// (``namedParameterSpecs(prefix:)``): a subclass that declares its parameters here and
    /// implements ``parameter(_:)`` and ``setParameter(_:_:)`` is loadable and exportable.
    open var parameterSpecs: [(name: String, spec: ParameterSpec)] { [] }

    /// The names of the tensors this layer itself owns (the names of ``parameterSpecs``).
    public final var parameterNames: [String] { parameterSpecs.map(\.name) }

    /// The current value of this layer's own tensor `name` (one of ``parameterNames``), or nil
    /// for an unknown name.
    open func parameter(_ name: String) -> ParameterValue? { nil }

    /// Replaces this layer's own tensor `name` (one of ``parameterNames``).
    /// - Throws: `.invalidArgument` for an unknown name or a value of the wrong kind,
    ///   `.lengthMismatch` / `.invalidShape` when the shape does not match the layer.
    open func setParameter(_ name: String, _ value: ParameterValue) throws {
        throw TernaryKitError.invalidArgument("\(typeName) has no parameter '\(name)'")
    }

    /// Builds what this layer derives from its parameters (a quantized copy, a table) so that
    /// the first forward pass does not; ``prepareKernels()`` calls it on every layer. A layer
    /// whose derived state is missing must still build it on first use. Does nothing by default.
    /// - Throws: what building the derived state throws.
    open func prepareForUse() throws {}

    /// One line about this layer alone: its kind, shape, backend and bytes.
    open var summary: String { typeName }

    /// Bytes this layer itself keeps for its parameters (children not included).
    open var parameterBytes: Int { 0 }

    /// The type name shown in descriptions.
    public var typeName: String { String(describing: type(of: self)) }

    /// This layer and every descendant, depth first in child order, with full paths
    /// (`prefix` joined to each key with "."). The receiver itself has path `prefix`.
    public final func namedModules(prefix: String = "") -> [(path: String, module: Module)] {
        var out: [(path: String, module: Module)] = [(prefix, self)]
        for (key, child) in children {
            out += child.namedModules(prefix: prefix.isEmpty ? key : prefix + "." + key)
        }
        return out
    }

    /// Every `BitLinear` in this subtree with its full path.
    public final func bitLinears(prefix: String = "") -> [(path: String, layer: BitLinear)] {
        namedModules(prefix: prefix).compactMap { p, m in (m as? BitLinear).map { (p, $0) } }
    }

    /// The layer at `path` relative to this one ("" is the receiver), or nil.
    public final func module(at path: String) -> Module? {
        if path.isEmpty { return self }
        for (key, child) in children {
            if path == key { return child }
            if path.hasPrefix(key + ".") { return child.module(at: String(path.dropFirst(key.count + 1))) }
        }
        return nil
    }

    /// Every parameter key in this subtree, e.g. `model.layers.0.self_attn.q_proj.weight`.
    public final func parameterKeys(prefix: String = "") -> [String] {
        namedParameterSpecs(prefix: prefix).map(\.key)
    }

    /// Every parameter in this subtree with its full key and spec, depth first in child order.
    /// Checkpoint readers and writers walk this list: the keys come from the `children` keys,
    /// so a model's checkpoint names are written once, in its layer tree.
    public final func namedParameterSpecs(prefix: String = "") -> [(key: String, spec: ParameterSpec)] {
        namedModules(prefix: prefix).flatMap { path, m in
            m.parameterSpecs.map { (key: path.isEmpty ? $0.name : path + "." + $0.name, spec: $0.spec) }
        }
    }

    /// The value of the parameter with the full key `key` (relative to this layer), or nil when
    /// no layer or parameter has that key.
    public final func parameter(key: String) -> ParameterValue? {
        guard let (target, name) = resolve(key) else { return nil }
        return target.parameter(name)
    }

    /// The layer that owns `key` and the parameter's own name, or nil.
    private func resolve(_ key: String) -> (Module, String)? {
        let (path, name): (String, String)
        if let dot = key.lastIndex(of: ".") {
            (path, name) = (String(key[..<dot]), String(key[key.index(after: dot)...]))
        } else {
            (path, name) = ("", key)
        }
        guard let target = module(at: path), target.parameterNames.contains(name) else { return nil }
        return (target, name)
    }

    /// Sets the tensor with the full key `key` (relative to this layer), e.g.
    /// `model.norm.weight`: the path up to the last "." selects the layer, the rest names its
    /// parameter. This is the hook a checkpoint loader uses.
    /// - Throws: `.invalidArgument` when no layer or parameter has that key, and the layer's
    ///   own shape errors.
    public final func setParameter(key: String, _ value: ParameterValue) throws {
        let (path, name): (String, String)
        if let dot = key.lastIndex(of: ".") {
            (path, name) = (String(key[..<dot]), String(key[key.index(after: dot)...]))
        } else {
            (path, name) = ("", key)
        }
        guard let target = module(at: path) else {
            throw TernaryKitError.invalidArgument("no layer at '\(path)' for parameter key '\(key)'")
        }
        guard target.parameterNames.contains(name) else {
            throw TernaryKitError.invalidArgument("layer '\(path)' (\(target.typeName)) has no parameter '\(name)'")
        }
        try target.setParameter(name, value)
    }

    /// Swaps the backend of every `BitLinear` in this subtree for which `predicate(path, layer)`
    /// holds, re-preparing each matching weight once (from the `TernaryMatrix` the layer keeps).
    ///
    /// Paths passed to `predicate` are full paths from this layer (`prefix` first), so on a
    /// `BitNetModel` they are checkpoint keys such as `model.layers.3.mlp.down_proj`.
    /// - Parameters:
    ///   - backend: the backend the matching layers are re-prepared with.
    ///   - context: the thread count for the new kernels; nil keeps each layer's own.
    ///   - prefix: the path of this layer, prepended to every child path ("" on the root).
    ///   - predicate: chooses the layers to swap, from their full path and the layer itself;
    ///     the default selects every `BitLinear`.
    /// - Returns: the number of layers swapped.
    /// - Throws: the backend's `prepare` error; layers swapped before the failing one keep
    ///   their new backend, the failing one and the rest keep their old one.
    @discardableResult
    public final func setBackend(
        _ backend: any LinearBackend, context: ComputeContext? = nil, prefix: String = "",
        where predicate: (String, BitLinear) -> Bool = { _, _ in true }
    ) throws -> Int {
        let targets = bitLinears(prefix: prefix).filter { predicate($0.path, $0.layer) }.map(\.layer)
        try BitLinear.prepare(targets, backend: backend, context: context)
        return targets.count
    }

    /// Prepares the kernel of every `BitLinear` in this subtree that has none yet (a weight was
    /// set since, or it was never used), with its own backend, several layers at a time on all
    /// cores, then calls every layer's ``prepareForUse()``. Layers prepare themselves on first use
    /// anyway; loaders call this so the first forward pass is not the one that pays for it.
    /// - Throws: the backends' `prepare` errors, a layer's `prepareForUse` error.
    public final func prepareKernels() throws {
        let pending = bitLinears().map(\.layer).filter { !$0.isPrepared }
        try BitLinear.prepare(pending, backend: nil, context: nil)
        for (_, module) in namedModules() { try module.prepareForUse() }
    }

    /// The tree, one layer per line, indented by depth, with each layer's summary, and a total.
    public final func treeDescription(prefix: String = "") -> String {
        var lines: [String] = []
        var total = 0
        func walk(_ m: Module, _ key: String, _ depth: Int) {
            total += m.parameterBytes
            let label = key.isEmpty ? m.typeName : key
            lines.append(String(repeating: "  ", count: depth) + label + ": " + m.summary)
            for (k, c) in m.children { walk(c, k, depth + 1) }
        }
        walk(self, prefix, 0)
        lines.append("total parameter bytes: \(total) (\(formatBytes(total)))")
        return lines.joined(separator: "\n")
    }

    /// Total bytes kept for parameters in this subtree.
    public final var totalParameterBytes: Int {
        namedModules().reduce(0) { $0 + $1.module.parameterBytes }
    }
}

extension BitLinear {
    /// Prepares `targets` for `backend` (nil: each layer's own) and `context` (nil: each layer's own) a few at a time on all cores (a backend's `prepare` is
    /// pure), then installs them: peak memory stays at the old kernels plus one batch of new ones.
    static func prepare(_ targets: [BitLinear], backend: (any LinearBackend)?, context: ComputeContext?) throws {
        let batch = max(1, ComputeContext.allCores.threads)
        var start = 0
        while start < targets.count {
            let slice = Array(targets[start..<min(targets.count, start + batch)])
            let jobs = slice.map { (weight: $0.weight, backend: backend ?? $0.backend, context: context ?? $0.context) }
            let results = UnsafeMutableBufferPointer<Result<any LinearKernel, any Error>?>.allocate(capacity: jobs.count)
            results.initialize(repeating: nil)
            defer { results.deinitialize(); results.deallocate() }
            let out = SendablePointer(results)
            let work = UncheckedBox(jobs)
            Parallel.forEachChunk(count: jobs.count, threads: batch, minimumWork: 0) { range in
                for i in range {
                    let job = work.value[i]
                    out.base[i] = Result { try job.backend.prepare(job.weight, context: job.context) }
                }
            }
            for (i, layer) in slice.enumerated() {
                layer.install(try results[i]!.get(), backend: jobs[i].backend)
            }
            start += batch
        }
    }
}

/// "1.31 GB" style byte counts for descriptions.
public func formatBytes(_ n: Int) -> String {
    let d = Double(n)
    if d >= 1e9 { return String(format: "%.2f GB", d / 1e9) }
    if d >= 1e6 { return String(format: "%.2f MB", d / 1e6) }
    if d >= 1e3 { return String(format: "%.1f kB", d / 1e3) }
    return "\(n) B"
}

/// Carries non-Sendable values into `Parallel.forEachChunk` closures that only read them.
struct UncheckedBox<T>: @unchecked Sendable {
    let value: T
    init(_ value: T) { self.value = value }
}
