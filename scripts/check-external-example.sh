#!/usr/bin/env bash
# Proves that the CustomModel example uses the public API only: copies Examples/CustomModel/*.swift
# into a fresh package (in a temporary directory) that depends on this repository by path, builds
# it and runs it once. Exits non-zero if the build or the run fails; the directory is removed.
#
#   bash scripts/check-external-example.sh
#
# The first build compiles TernaryKit again inside the temporary package: give it a few minutes.
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
# SwiftPM names a path dependency after its directory's last component.
identity="$(basename "$root" | tr '[:upper:]' '[:lower:]')"
work="$(mktemp -d "${TMPDIR:-/tmp}/ternarykit-external.XXXXXX")"
trap 'rm -rf "$work"' EXIT

mkdir -p "$work/Sources/CustomModel"
cp "$root"/Examples/CustomModel/*.swift "$work/Sources/CustomModel/"
cat >"$work/Package.swift" <<EOF
// swift-tools-version:6.1
import PackageDescription

let package = Package(
    name: "ExternalCustomModel",
    dependencies: [
        .package(path: "$root"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .executableTarget(
            name: "CustomModel",
            dependencies: [
                .product(name: "TensorCore", package: "$identity"),
                .product(name: "Backends", package: "$identity"),
                .product(name: "Layers", package: "$identity"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
    ]
)
EOF

echo "== external package in $work (depends on $root)"
swift build --package-path "$work" 2>&1 | tail -3
echo "== run"
"$(swift build --package-path "$work" --show-bin-path)/CustomModel" --max-new-tokens 4 | tail -6
echo "== external CustomModel: built and ran with the public API only"
