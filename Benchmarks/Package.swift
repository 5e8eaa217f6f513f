// swift-tools-version:6.1
// Regression benchmarks for TernaryKit's kernels (ordo-one/benchmark). A nested package so that
// a plain `swift test` of the main package does not build the benchmark framework.
//
//   cd Benchmarks
//   swift package benchmark                                  # run
//   swift package benchmark baseline update main             # record a baseline
//   swift package benchmark baseline check main              # exit 1 on a regression
import Foundation
import PackageDescription

// A `path:` dependency is identified by its folder name: the parent folder of this package.
let rootPackage = URL(fileURLWithPath: Context.packageDirectory).deletingLastPathComponent().lastPathComponent

let package = Package(
    name: "TernaryKitBenchmarks",
    dependencies: [
        .package(path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.0", traits: ["MallocInterposer"]),
    ],
    targets: [
        .executableTarget(
            name: "KernelBenchmarks",
            dependencies: [
                .product(name: "Benchmark", package: "benchmark"),
                .product(name: "TensorCore", package: rootPackage),
                .product(name: "Backends", package: rootPackage),
            ],
            path: "Benchmarks/KernelBenchmarks",
            plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
        ),
    ]
)
