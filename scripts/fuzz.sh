#!/usr/bin/env bash
# Builds the libFuzzer target of the untrusted-input parsers (safetensors header and file
# validation, config.json decoding: Fuzz/FuzzEntry.swift) with AddressSanitizer and runs it
# for SECONDS seconds (default 30) on a seed corpus from Tests/Fixtures.
#
#   bash scripts/fuzz.sh [SECONDS] [extra libFuzzer flags...]
#
# The sources are compiled as one module: TensorCore, SafeTensors, the two BitNetConfig files,
# LMHeadFormat and a one-constant stub of Layers, with their imports of each other removed
# (CKernels stays a C module, compiled with clang). Exits non-zero when the fuzzer finds a crash;
# the input is kept as .build/fuzz/crash-*.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds="${1:-30}"
shift || true
out=.build/fuzz
rm -rf "$out/src" "$out/obj"
mkdir -p "$out/src" "$out/obj" "$out/corpus"

for f in Sources/TensorCore/*.swift Sources/SafeTensors/*.swift Sources/BitNet/BitNetConfig.swift \
         Sources/BitNet/BitNetConfig+HuggingFace.swift Sources/Layers/LMHeadFormat.swift Fuzz/*.swift; do
    sed -E '/^import (TensorCore|SafeTensors|Layers|Backends|BitNet)$/d' "$f" > "$out/src/$(echo "$f" | tr '/' '_')"
done
for c in Sources/CKernels/*.c; do
    clang -O1 -g -fPIC -I Sources/CKernels/include -c "$c" -o "$out/obj/$(basename "$c" .c).o"
done
# SwiftPM generates CKernels' module map; here it is written by hand.
mkdir -p "$out/include"
printf 'module CKernels {\n    umbrella header "%s/Sources/CKernels/include/CKernels.h"\n    export *\n}\n' "$PWD" > "$out/include/module.modulemap"
swiftc -O -g -parse-as-library -module-name FuzzTarget -sanitize=fuzzer,address \
    -I "$out/include" -I Sources/CKernels/include "$out"/src/*.swift "$out"/obj/*.o -o "$out/fuzz-parsers"

# Seed corpus: the fixtures (safetensors files, configs, hostile cases) and each safetensors
# file's header alone (the second reading of every input frames it as a header).
for f in $(find Tests/Fixtures -type f \( -name '*.safetensors' -o -name '*.json' \) -size -2M); do
    cp "$f" "$out/corpus/seed-$(echo "$f" | tr '/' '_')"
done
i=0
for f in $(find Tests/Fixtures -type f -name '*.safetensors' -size -2M); do
    python3 - "$f" "$out/corpus/header-$i" <<'PY' || true
import struct, sys
data = open(sys.argv[1], 'rb').read()
if len(data) >= 8:
    n = struct.unpack('<Q', data[:8])[0]
    open(sys.argv[2], 'wb').write(data[8:8 + n])
PY
    i=$((i + 1))
done

mkdir -p "$out/artifacts"
exec "$out/fuzz-parsers" "$out/corpus" -max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 \
    -artifact_prefix="$out/artifacts/" -print_final_stats=1 "$@"
