#!/usr/bin/env bash
# Builds a libFuzzer target with AddressSanitizer and runs it for SECONDS seconds (default 30)
# on a seed corpus from Tests/Fixtures.
#
#   bash scripts/fuzz.sh [TARGET] [SECONDS] [extra libFuzzer flags...]
#
# TARGET (default parsers):
#   parsers     the safetensors header parser and file validation, and the config.json decoder
#               (Fuzz/FuzzEntry.swift). The sources are compiled as one module: TensorCore,
#               SafeTensors, the two BitNetConfig files, LMHeadFormat and a one-constant stub of
#               Layers, with their imports of each other removed (CKernels stays a C module,
#               compiled with clang).
#   tokenizers  tokenizer.json loading, encode/decode (whole and streaming, with a round trip
#               through the fixture tokenizers) and chat-template detection
#               (Fuzz/Tokenizers/FuzzEntry.swift with Sources/Tokenizers).
# Exits non-zero when the fuzzer finds a crash; the input is kept as .build/fuzz/TARGET/artifacts/.
set -euo pipefail
cd "$(dirname "$0")/.."
target=parsers
case "${1:-}" in
    parsers|tokenizers) target="$1"; shift ;;
    ''|[0-9]*) ;;
    *) echo "fuzz.sh: unknown target '$1' (parsers or tokenizers)" >&2; exit 2 ;;
esac
seconds="${1:-30}"
shift || true
out=.build/fuzz/$target
rm -rf "$out/src" "$out/obj"
mkdir -p "$out/src" "$out/obj" "$out/corpus" "$out/artifacts"
# On a crash, libFuzzer prints the stack; Swift's own backtracer would only delay the exit.
export SWIFT_BACKTRACE=enable=no
limits=(-max_total_time="$seconds" -max_len=65536 -rss_limit_mb=2048 -artifact_prefix="$out/artifacts/" -print_final_stats=1)

if [ "$target" = tokenizers ]; then
    swiftc -O -g -parse-as-library -module-name FuzzTokenizers -sanitize=fuzzer,address \
        Sources/Tokenizers/*.swift Fuzz/Tokenizers/*.swift -o "$out/fuzz-tokenizers"
    # Seeds: the fixture tokenizers, their variants and configs, and a few texts.
    for f in Tests/Fixtures/tokenizers/*.json; do cp "$f" "$out/corpus/seed-$(basename "$f")"; done
    python3 - "$out/corpus" <<'PY'
import json, os, sys
out = sys.argv[1]
variants = json.load(open("Tests/Fixtures/tokenizers/variants.json"))
base = json.load(open("Tests/Fixtures/tokenizers/" + variants["base"]))
for name, v in variants["variants"].items():
    open(os.path.join(out, f"variant-{name}"), "w").write(json.dumps({**base, **v["patch"]}))
for text in variants["strings"][:40]:
    open(os.path.join(out, f"string-{abs(hash(text))}"), "w").write(text)
texts = ["Hello, world!", "  leading spaces\n\ttabs", "caf\u00e9 \u2603 \U0001F600 \u4e2d\u6587",
         "<|begin_of_text|>User: hi<|eot_id|>", "x" * 300]
for i, t in enumerate(texts):
    open(os.path.join(out, f"text-{i}"), "w").write(t)
open(os.path.join(out, "config-llama3"), "w").write(json.dumps({"chat_template": "{% for message in messages %}{{ message['content'] }}{% endfor %}", "bos_token": "<s>"}))
PY
    # The fixture tokenizer.json files are up to 88 KB: long enough inputs to load one whole.
    exec "$out/fuzz-tokenizers" "$out/corpus" "${limits[@]}" -max_len=131072 \
        -dict=Fuzz/Tokenizers/tokenizer.dict "$@"
fi

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

exec "$out/fuzz-parsers" "$out/corpus" "${limits[@]}" "$@"
