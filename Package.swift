// swift-tools-version:6.1
// TernaryKit: ternary-weight (1.58-bit) and binary-weight linear algebra in Swift.
import PackageDescription

let argumentParser: Target.Dependency = .product(name: "ArgumentParser", package: "swift-argument-parser")

let package = Package(
    name: "TernaryKit",
    products: [
        .library(name: "TensorCore", targets: ["TensorCore"]),
        .library(name: "Backends", targets: ["Backends"]),
        .library(name: "SafeTensors", targets: ["SafeTensors"]),
        .library(name: "Layers", targets: ["Layers"]),
        .library(name: "BitNet", targets: ["BitNet"]),
        .library(name: "Tokenizers", targets: ["Tokenizers"]),
        .executable(name: "ternary", targets: ["TernaryCLI"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // Only for `swift package generate-documentation`; not linked into anything.
        .package(url: "https://github.com/swiftlang/swift-docc-plugin", from: "1.4.0"),
    ],
    targets: [
        // OpenBLAS (cblas) and LAPACKE from Debian's libopenblas-dev / liblapacke-dev.
        .systemLibrary(
            name: "COpenBLAS",
            path: "Sources/COpenBLAS",
            pkgConfig: "openblas",
            providers: [.apt(["libopenblas-dev", "liblapacke-dev"])]
        ),
        // Small C inner loops with per-function ISA variants (AVX2 / AVX-512 / VNNI),
        // chosen at run time. Everything around them stays in Swift.
        .target(name: "CKernels", path: "Sources/CKernels"),
        // Tensors, ternary matrices, quantization, the backend protocol, threads, CPU features.
        .target(name: "TensorCore", dependencies: ["CKernels"], path: "Sources/TensorCore"),
        // The safetensors format (reader, writer, sharded collections) and atomic file writes.
        .target(name: "SafeTensors", dependencies: ["TensorCore", "CKernels"], path: "Sources/SafeTensors"),
        .target(
            name: "Backends",
            dependencies: ["TensorCore", "COpenBLAS", "CKernels"],
            path: "Sources/Backends"
        ),
        // Generic model-building blocks (no particular model): Module, BitLinear, attention, ...
        .target(name: "Layers", dependencies: ["TensorCore", "Backends", "CKernels"], path: "Sources/Layers"),
        // BitNet b1.58: config, model, presets, Hugging Face checkpoints.
        .target(name: "BitNet", dependencies: ["TensorCore", "SafeTensors", "Backends", "Layers"], path: "Sources/BitNet"),
        // Hugging Face tokenizer.json loading, byte-level BPE and chat templates; Foundation only.
        .target(name: "Tokenizers", path: "Sources/Tokenizers"),
        .executableTarget(
            name: "TernaryCLI",
            dependencies: [
                "TensorCore", "SafeTensors", "Backends", "Layers", "BitNet", "Tokenizers", "COpenBLAS", "CKernels",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ],
            path: "Sources/TernaryCLI"
        ),
        // Examples/: tutorials, one small executable each (see README "Examples"). They use the
        // library products only, as a package depending on TernaryKit would.
        .executableTarget(name: "RSRWalkthrough", dependencies: ["TensorCore", "Backends", argumentParser], path: "Examples/RSRWalkthrough"),
        .executableTarget(name: "BackendABTest", dependencies: ["TensorCore", "Backends", "Layers", argumentParser], path: "Examples/BackendABTest"),
        .executableTarget(name: "CustomModel", dependencies: ["TensorCore", "Backends", "Layers", argumentParser], path: "Examples/CustomModel"),
        .executableTarget(name: "Generation", dependencies: ["TensorCore", "Backends", "Layers", "BitNet", "Tokenizers", argumentParser], path: "Examples/Generation"),
        .executableTarget(name: "Ternarize", dependencies: ["TensorCore", "Backends", "Layers", argumentParser], path: "Examples/Ternarize"),
        .executableTarget(name: "CheckpointRoundTrip", dependencies: ["TensorCore", "SafeTensors", "Backends", "Layers", "BitNet", argumentParser], path: "Examples/CheckpointRoundTrip"),
        .testTarget(name: "TensorCoreTests", dependencies: ["TensorCore"]),
        .testTarget(name: "SafeTensorsTests", dependencies: ["TensorCore", "SafeTensors"]),
        .testTarget(name: "BackendsTests", dependencies: ["TensorCore", "Backends", "CKernels"]),
        .testTarget(name: "LayersTests", dependencies: ["TensorCore", "Backends", "Layers"]),
        .testTarget(name: "BitNetTests", dependencies: ["TensorCore", "SafeTensors", "Backends", "Layers", "BitNet"]),
        .testTarget(name: "CLITests", dependencies: ["TernaryCLI"]),
        .testTarget(name: "TokenizersTests", dependencies: ["Tokenizers"]),
    ]
)
