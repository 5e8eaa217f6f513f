#!/usr/bin/env python3
"""Checks a checkpoint directory written by TernaryKit (`ternary export`) against the independent
numpy reference of make_bitnet_fixture.py: the direction opposite to the fixture test (there
TernaryKit reads a file numpy wrote; here numpy reads a file TernaryKit wrote).

Usage:
  ternary export --preset tiny --seed 7 --out /tmp/tiny-export
  ternary logits --model /tmp/tiny-export --tokens 1,17,42,200,99,255 --json > /tmp/tiny-logits.json
  python3 Tests/Fixtures/check_export.py /tmp/tiny-export /tmp/tiny-logits.json

It reads model.safetensors with its own reader (F32 / BF16 / U8 only), unpacks the projections
with the fixture's unpack_ternary, runs the fixture's float64 forward pass with the config read
from config.json (weight_scale divides, as in transformers' BitLinear), and prints the largest
logit difference. Unlike the fixture, an exported random model was not chosen to keep every
activation away from a rounding tie, so a rare activation may round differently in float32 than
in float64; the script reports how many logits differ by more than the tolerance.
"""

import json
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import make_bitnet_fixture as ref  # noqa: E402


def read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n])
    start = 8 + n
    out = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        b, e = entry["data_offsets"]
        raw = data[start + b:start + e]
        shape = entry["shape"]
        if entry["dtype"] == "F32":
            out[name] = np.frombuffer(raw, dtype="<f4").astype(np.float64).reshape(shape)
        elif entry["dtype"] == "BF16":
            out[name] = ref.from_bf16_bits(np.frombuffer(raw, dtype="<u2")).reshape(shape)
        elif entry["dtype"] == "U8":
            out[name] = np.frombuffer(raw, dtype=np.uint8).reshape(shape)
        else:
            raise SystemExit(f"{name}: dtype {entry['dtype']} not handled by this checker")
    return out


def main():
    if len(sys.argv) != 3:
        raise SystemExit(__doc__)
    directory, logits_path = sys.argv[1], sys.argv[2]
    with open(os.path.join(directory, "config.json")) as f:
        config = json.load(f)
    if not config.get("tie_word_embeddings", False):
        raise SystemExit("this checker handles tied embeddings only (the reference has no lm_head)")
    tensors = read_safetensors(os.path.join(directory, "model.safetensors"))
    params = {}
    for name, value in tensors.items():
        if value.dtype == np.uint8:
            params[name] = ref.unpack_ternary(value).astype(np.float64)
        else:
            params[name] = value
    ref.CONFIG = config
    ref.MARGIN = -1.0  # no margin bookkeeping: report differences instead of refusing
    with open(logits_path) as f:
        ours = json.load(f)
    tokens = ours["tokens"]
    expected, margins = ref.forward(params, tokens)
    closest, where = min(margins)
    got = np.array(ours["logits"], dtype=np.float64)
    diff = np.abs(got - expected)
    tolerance = 1e-4
    print(f"{len(tokens)} positions x {got.shape[1]} logits; max |difference| {diff.max():.3e}; "
          f"{int((diff > tolerance).sum())} above {tolerance}; logits range [{expected.min():.3f}, {expected.max():.3f}]; "
          f"closest activation x*s to a .5 rounding tie: {closest:.2e} ({where})")
    sys.exit(0 if diff.max() <= tolerance else 1)


if __name__ == "__main__":
    main()
